"""The `specdsl` command line: a thin layer over the Python API.

This module builds the parser from the command modules (check, torch_commands, diagram, diff),
holds `convert` and `fmt`, and runs a command, turning exceptions into exit codes: 0 ok, 1 spec
errors, 2 usage, 3 internal error (a bug). What commands share is in cli/common.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from specdsl.cli import check, diagram, diff, torch_commands
from specdsl.cli.common import EXIT_BUG, EXIT_OK, EXIT_SPEC, EXIT_USAGE, print_diagnostics
from specdsl.errors import SpecError

__all__ = ["EXIT_BUG", "EXIT_OK", "EXIT_SPEC", "EXIT_USAGE", "build_parser", "entry", "main"]


def cmd_convert(args: argparse.Namespace) -> int:
    from specdsl.api import load, read_data, read_source
    from specdsl.render.printer import to_dsl, to_yaml

    file, text = read_source(args.spec)
    load(args.spec)  # convert only what checks: a broken spec gets its diagnostics, not a rewrite
    data, _ = read_data(text, file)
    out = to_yaml(data) if args.to == "yaml" else to_dsl(data)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(out)
    else:
        sys.stdout.write(out)
    return EXIT_OK


def cmd_fmt(args: argparse.Namespace) -> int:
    from specdsl.api import is_dsl, read_source
    from specdsl.frontend.dsl import parse_dsl
    from specdsl.render.printer import to_dsl

    status = EXIT_OK
    for path in args.files:
        file, text = read_source(path)
        if not is_dsl(text, file):
            print(f"specdsl fmt: {file} is not a DSL (.cnn) file; "
                  f"`specdsl convert {file} --to yaml` rewrites YAML (without its comments)", file=sys.stderr)
            return EXIT_USAGE
        parsed = parse_dsl(text, file)
        data, smap, comments = parsed.data, parsed.smap, parsed.comments
        # Format only what is structurally valid (schema and block expansion; shapes may still
        # be wrong), so the printer never sees data the language does not define.
        from copy import deepcopy

        from specdsl.blocks.engine import expand
        from specdsl.schema.document import validate_document

        expand(validate_document(deepcopy(data), smap))  # the SourceMap is immutable; the data is copied
        formatted = to_dsl(data, smap, comments)
        if formatted == text:
            continue
        if args.check:
            print(f"would reformat {file}", file=sys.stderr)
            status = EXIT_SPEC
        else:
            with open(file, "w", encoding="utf-8") as fh:
                fh.write(formatted)
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
    fmt.add_argument("--check", action="store_true", help="only report files that would change (exit 1)")
    fmt.set_defaults(func=cmd_fmt)


# Each adds its subcommands, in the order `specdsl --help` lists them; heavy imports (torch, the
# backends, running Graphviz) stay inside the command functions.
COMMANDS: tuple[Callable[[Any], None], ...] = (
    check.add_check, check.add_schema, check.add_zoo, add_convert, add_fmt, check.add_ops,
    torch_commands.register, diagram.register, diff.register,
)


def build_parser() -> argparse.ArgumentParser:
    from specdsl import __version__

    parser = argparse.ArgumentParser(
        prog="specdsl", description="Declarative CNN specs: check shapes, parameters, MACs and receptive fields.")
    parser.add_argument("--version", action="version", version=f"specdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except SpecError as exc:
        print_diagnostics(exc, exc.sources, getattr(args, "concise", False))
        return EXIT_SPEC
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        if exc.filename is None:
            return _internal_error(args, exc)
        # A path the user named: a missing folder for -o, a read-only file for fmt, ...
        print(f"specdsl {args.command}: cannot open {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
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


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
