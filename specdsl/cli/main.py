"""The `specdsl` command line: a thin layer over the Python API.

This module builds the parser from the command modules (only the one being run is imported),
holds `convert` and `fmt`, and runs a command, turning exceptions into exit codes: 0 ok, 1 spec
errors, 2 usage, 3 internal error (a bug). What commands share is in cli/common.py.
"""

from __future__ import annotations

import argparse
import errno
import gc
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any

from specdsl.cli.common import (
    EXIT_BUG,
    EXIT_OK,
    EXIT_SPEC,
    EXIT_USAGE,
    add_budget_flags,
    budgets_of,
    missing_extra,
)
from specdsl.cli.files import OutputError
from specdsl.errors import SpecError

__all__ = ["EXIT_BUG", "EXIT_OK", "EXIT_SPEC", "EXIT_USAGE", "build_parser", "entry", "main"]


def cmd_convert(args: argparse.Namespace) -> int:
    from specdsl.api import is_dsl, read_source
    from specdsl.cli.files import refuse_input, write_atomic
    from specdsl.render.reformat import convert_text

    refuse_input(args.output, [args.spec], "convert")
    budgets = budgets_of(args)
    file, text = read_source(args.spec, budgets)
    # A parseable file is enough (an unknown layer converts as written); the output is read back before
    # it is written, so a spec is converted faithfully, comments included, or not at all.
    out = convert_text(text, file, args.to, is_dsl(text, file), budgets)
    if args.output:
        write_atomic(args.output, out)
    else:
        sys.stdout.write(out)
    return EXIT_OK


def cmd_fmt(args: argparse.Namespace) -> int:
    from specdsl.api import is_dsl, read_source
    from specdsl.cli.files import write_atomic
    from specdsl.cli.report import report
    from specdsl.render.reformat import format_text

    budgets = budgets_of(args)
    status = EXIT_OK
    for path in args.files:  # every file is tried: one that cannot be formatted does not stop the batch
        try:
            file, text = read_source(path, budgets)
            if file != str(path):
                print(f"specdsl fmt: {path} is not a file (fmt rewrites files in place)", file=sys.stderr)
                status = max(status, EXIT_USAGE)
                continue
            if not is_dsl(text, file):
                print(f"specdsl fmt: {file} is not a DSL (.cnn) file; "
                      f"`specdsl convert {file} --to yaml` rewrites YAML", file=sys.stderr)
                status = max(status, EXIT_USAGE)
                continue
            # Only parsing is needed (an unknown layer is formatted as written); format_text reads its
            # output back and refuses unless it means the same, every comment kept.
            formatted = format_text(text, file, budgets)
        except SpecError as exc:
            report(args, exc.diagnostics, exc.sources)
            status = max(status, EXIT_SPEC)
            continue
        if formatted == text:
            continue
        if args.check:
            print(f"would reformat {file}", file=sys.stderr)
            status = max(status, EXIT_SPEC)
        else:
            write_atomic(file, formatted)
            print(f"reformatted {file}", file=sys.stderr)
    return status


def add_convert(sub: Any) -> None:
    convert = sub.add_parser("convert", help="rewrite a spec in the other syntax (YAML <-> DSL)")
    convert.add_argument("spec", metavar="FILE|ZOO-NAME")
    convert.add_argument("--to", choices=("yaml", "dsl"), required=True)
    convert.add_argument("-o", "--output", help="write here instead of stdout")
    convert.set_defaults(func=cmd_convert)


def add_fmt(sub: Any) -> None:
    fmt = sub.add_parser("fmt", help="format DSL files in place (canonical layout, comments kept)")
    fmt.add_argument("files", nargs="+", metavar="FILE")
    fmt.add_argument("--check", action="store_true",
                     help="only report files that would change, or cannot be formatted (exit 1)")
    fmt.set_defaults(func=cmd_fmt)


# Each command and the function (module, name) that adds it, in the order `specdsl --help` lists them.
# Only the command being run is imported (a whole process of `check` must not pay for the diagram,
# the backends or the language server); heavy imports stay inside the command functions. A function
# may add more than one command (torch_commands adds run and build).
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("specdsl.cli.check", "add_check"),
    "schema": ("specdsl.cli.check", "add_schema"),
    "zoo": ("specdsl.cli.check", "add_zoo"),
    "convert": (__name__, "add_convert"),
    "fmt": (__name__, "add_fmt"),
    "ops": ("specdsl.cli.check", "add_ops"),
    "explain": ("specdsl.cli.explain", "register"),
    "run": ("specdsl.cli.torch_commands", "register"),
    "build": ("specdsl.cli.torch_commands", "register"),
    "export": ("specdsl.cli.export", "register"),
    "diagram": ("specdsl.cli.diagram", "register"),
    "diff": ("specdsl.cli.diff", "register"),
    "sweep": ("specdsl.cli.sweep", "register"),
    "params": ("specdsl.cli.params", "register"),
    "search": ("specdsl.cli.search", "register"),
    "lsp": ("specdsl.lsp", "register"),
    "import": ("specdsl.cli.import_cmd", "register"),
}


# Commands with no spec diagnostics to report: the language server speaks to an editor, explain prints a
# catalogue entry; --quiet and --strict would mean nothing there.
REPORTS_NOTHING = ("lsp", "explain")

# The commands that read a spec take the budget flags (check adds its own); defaults per command.
BUDGETED = ("check", "convert", "fmt", "run", "build", "export", "diagram", "diff")


def build_parser(command: str | None = None, every: bool = True) -> argparse.ArgumentParser:
    """The parser with every command, or with ``command``'s alone (what running it needs), or with none
    (``every=False`` and no command: what `specdsl --version` needs)."""
    from specdsl.cli.params import add_param_flags
    from specdsl.cli.report import add_report_flags
    from specdsl.version import __version__

    parser = argparse.ArgumentParser(
        prog="specdsl", description="Declarative CNN specs: check shapes, parameters, MACs and receptive fields.")
    parser.add_argument("--version", action="version", version=f"specdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = [COMMANDS[command]] if command in COMMANDS else list(COMMANDS.values()) if every else []
    for where in dict.fromkeys(wanted):  # each adding function once
        getattr(import_module(where[0]), where[1])(sub)
    for name, cmd in sub.choices.items():  # --quiet and --strict on every command that reports on a spec
        if name not in REPORTS_NOTHING:
            add_report_flags(cmd)
        if name in BUDGETED and not any("--max-nodes" in a.option_strings for a in cmd._actions):
            add_budget_flags(cmd, name)
        if {a.dest for a in cmd._actions} & {"spec", "specs"}:  # commands that load a model
            add_param_flags(cmd)
    return parser


# Failures of a write that had started: the disk or the quota is full, the file too large, the disk read-only.
_WRITE_FAILURES = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


def _command_of(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first word, as `specdsl` has no option taking a value)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. Everything it says on stderr passes through ``printable``:
    file names, spec names and values quoted from untrusted input cannot drive the terminal."""
    from specdsl.cli.common import PrintableStream

    stderr = sys.stderr
    sys.stderr = PrintableStream(stderr)
    try:
        return _main(argv)
    finally:
        sys.stderr = stderr


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # argparse acts on a leading --version before it reads anything else, so that needs no command's module.
    parser = build_parser(_command_of(argv), every=argv[:1] != ["--version"])
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from specdsl.cli.report import report, run_reporting

    _resume_gc()
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return run_reporting(func, args)
    except SpecError as exc:
        report(args, exc.diagnostics, exc.sources)
        return EXIT_SPEC
    except OutputError as exc:
        print(f"specdsl {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        if exc.filename is None:
            return _internal_error(args, exc)
        # A path the user named: a missing folder for -o, a read-only file for fmt, a full disk, ...
        verb = "could not write" if exc.errno in _WRITE_FAILURES else "cannot open"
        print(f"specdsl {args.command}: {verb} {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_SPEC
    except ImportError as exc:
        # An optional dependency the command needs (torch for run, onnx for export, ...) is not installed:
        # a fact about the environment, said with the line that installs it, not a bug.
        install = missing_extra(exc)
        if install is None:
            return _internal_error(args, exc)
        print(f"specdsl {args.command}: this needs {exc.name}, which is not installed; install it with:\n"
              f"  {install}", file=sys.stderr)
        return EXIT_SPEC
    except Exception as exc:
        return _internal_error(args, exc)


def _internal_error(args: argparse.Namespace, exc: BaseException) -> int:
    where = traceback.extract_tb(exc.__traceback__)[-1]
    inputs = next((getattr(args, k) for k in ("specs", "spec", "files") if getattr(args, k, None)), "")
    shown = str(inputs)
    print(
        f"specdsl: internal error — this is a bug: {type(exc).__name__}: {exc}\n"
        f"  while running `specdsl {args.command}`" + (f" on {shown}" if shown else "") + "\n"
        f"  at {os.path.basename(where.filename)}:{where.lineno} in {where.name}\n"
        "  please report it with the spec that triggered it"
        + ("" if os.environ.get("SPECDSL_DEBUG") else " (set SPECDSL_DEBUG=1 for the full traceback)"),
        file=sys.stderr,
    )
    if os.environ.get("SPECDSL_DEBUG"):
        traceback.print_exception(exc)
    return EXIT_BUG


_gc_paused = False


def _resume_gc() -> None:
    """The cycle collector back on for the command itself, once the console script's start-up is over:
    what start-up made (modules, classes, functions: no garbage) is frozen out of every later collection."""
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.freeze()
        gc.enable()


def entry() -> None:
    """The console script. What it sets up only for itself (the API, imported into a user's process,
    never does): the user's own settings win."""
    global _gc_paused
    # Looking for pydantic plugins (observability hooks nobody attaches to our argument models) reads
    # the metadata of every installed package, where a spec's error brings pydantic in.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    # lark imports interegular wherever it is importable (a tenth of lark's import), only to check a
    # grammar's terminals for collisions when it builds a parser from the grammar; the packaged parse
    # tables load without that check. A plain install has no interegular (a dev dependency): the
    # console script starts as one does (the tests that build the grammar strictly never run it).
    sys.modules.setdefault("interegular", None)  # type: ignore[arg-type]
    # Start-up makes tens of thousands of long-lived objects and no garbage: collecting them as they
    # come is 3% of `check`. The collector is off until the command runs (_resume_gc).
    if gc.isenabled():
        gc.disable()
        _gc_paused = True
    sys.exit(main())


if __name__ == "__main__":
    entry()
