"""The `specdsl` command line: a thin layer over the Python API.

Exit codes: 0 ok, 1 spec errors, 2 usage, 3 internal error (a bug).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from specdsl.errors import SpecError, render_all

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3

# Modules with a `register(subparsers)` function, one per family of commands.
COMMAND_MODULES: list[str] = ["specdsl.cli.torch_commands", "specdsl.render.dot", "specdsl.cli.diff"]


def _shape(text: str) -> tuple[int, ...]:
    parts = [p for p in re.split(r"[\s,x×\[\]()]+", text.strip()) if p]
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected a shape without the batch such as 3,224,224 or [3,224,224]; received '{text}'")
    return tuple(int(p) for p in parts)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received '{text}'")
    return int(text)


# Control characters (ANSI escapes, NUL, ...) and bidi overrides quoted from an untrusted spec
# must not reach the terminal; each becomes U+FFFD, one column wide, so carets stay aligned.
_UNPRINTABLE = {c: "\ufffd" for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0),
                                      *range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _printable(text: str) -> str:
    return text.translate(_UNPRINTABLE)


def _print_diagnostics(exc_or_diags: SpecError | list, sources: dict[str, str], concise: bool) -> None:
    diags = exc_or_diags.diagnostics if isinstance(exc_or_diags, SpecError) else exc_or_diags
    if not diags:
        return
    print(_printable(render_all(diags, sources, full=not concise)), file=sys.stderr)
    n_err = sum(d.is_error for d in diags)
    n_warn = sum(d.severity == "warning" for d in diags)
    if not concise:
        parts = [f"{n_err} error(s)"] if n_err else []
        if n_warn:
            parts.append(f"{n_warn} warning(s)")
        print("\n" + ", ".join(parts), file=sys.stderr)


def _add_budget_flags(parser: argparse.ArgumentParser) -> None:
    """--max-file-bytes, --max-depth, ...: one flag per field of specdsl.budgets.Budgets."""
    from dataclasses import fields, replace

    from specdsl.budgets import DEFAULT, HELP, flag

    group = parser.add_argument_group("budgets", "limits for untrusted specs (a spec over one is an error)")

    def budget_type(name: str) -> Callable[[str], int]:
        def parse(text: str) -> int:
            value = _positive(text)
            try:
                replace(DEFAULT, **{name: value})  # the ceiling on max_depth
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
            return value

        return parse

    for f in fields(DEFAULT):
        group.add_argument(flag(f.name), type=budget_type(f.name), metavar="N", dest=f.name,
                           help=f"{HELP[f.name]} (default {getattr(DEFAULT, f.name):,})")


def _budgets(args: argparse.Namespace) -> Any:
    from dataclasses import fields, replace

    from specdsl.budgets import DEFAULT

    given = {f.name: getattr(args, f.name, None) for f in fields(DEFAULT)}
    return replace(DEFAULT, **{k: v for k, v in given.items() if v is not None})


def cmd_check(args: argparse.Namespace) -> int:
    from specdsl.api import load
    from specdsl.render.table import model_json, table

    status = EXIT_OK
    results = []
    for i, source in enumerate(args.specs):
        try:
            model = load(source, input=args.input, batch=args.batch, budgets=_budgets(args))
        except SpecError as exc:
            status = EXIT_SPEC
            if args.json:
                results.append({"file": str(source), "ok": False,
                                "diagnostics": [d.to_json() for d in exc.diagnostics]})
            else:
                _print_diagnostics(exc, exc.sources, args.concise)
            continue
        if args.json:
            results.append({"ok": True, **model_json(model)})
            continue
        if i:
            print()
        print(table(model, depth=args.depth, full_ops=args.all_ops))
        if model.diagnostics:
            print()
            _print_diagnostics(model.diagnostics, model.sources, args.concise)
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    return status


def cmd_schema(args: argparse.Namespace) -> int:
    from specdsl.schema.document import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_zoo(args: argparse.Namespace) -> int:
    from specdsl import zoo

    if not args.verbose:
        print("\n".join(zoo.names()))
        return EXIT_OK
    from specdsl.api import load
    from specdsl.ops.rule import fmt_shape

    rows = [("model", "input", "params", "MACs")]
    for name in zoo.names():
        m = load(name)
        rows.append((name, fmt_shape(m.graph.input_shape), f"{m.totals.params:,}", f"{m.totals.macs:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    return EXIT_OK


def cmd_ops(args: argparse.Namespace) -> int:
    from specdsl.ops import OPS, POSITIONAL

    for name, rule in sorted(OPS.items()):
        fields = []
        for fname, f in rule.args.model_fields.items():
            key = f.alias or fname
            fields.append(key if f.is_required() else f"{key}={f.default!r}")
        pos = POSITIONAL.get(name)
        also = f"  (also: {', '.join(rule.aliases)})" if rule.aliases else ""
        print(f"{name:<17} {rule.doc}{also}")
        if fields:
            print(f"{'':<17}   args: {', '.join(fields)}" + (f"; positional: {', '.join(pos)}" if pos else ""))
    return EXIT_OK


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

        expand(validate_document(deepcopy(data), deepcopy(smap)))
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


def build_parser() -> argparse.ArgumentParser:
    from specdsl import __version__

    parser = argparse.ArgumentParser(
        prog="specdsl", description="Declarative CNN specs: check shapes, parameters, MACs and receptive fields.")
    parser.add_argument("--version", action="version", version=f"specdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="validate specs and print their figures",
                           description="Validate spec files (or zoo names) and print a per-layer table.")
    check.add_argument("specs", nargs="+", metavar="FILE|ZOO-NAME")
    check.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    check.add_argument("--batch", type=_positive, default=1, help="batch size for memory figures (default 1)")
    check.add_argument("--input", type=_shape, help="override the input shape, e.g. 3,299,299")
    check.add_argument("--depth", type=_positive, help="fold rows deeper than N into their block")
    check.add_argument("--all-ops", action="store_true",
                       help="also count bias, norm, activation and pooling ops (torchinfo-like)")
    check.add_argument("--concise", action="store_true", help="one line per diagnostic")
    _add_budget_flags(check)
    check.set_defaults(func=cmd_check)

    schema = sub.add_parser("schema", help="print the JSON Schema of spec files (for editors)")
    schema.set_defaults(func=cmd_schema)

    zoo = sub.add_parser("zoo", help="list the bundled models")
    zoo.add_argument("-v", "--verbose", action="store_true", help="with input shape, params and MACs")
    zoo.set_defaults(func=cmd_zoo)

    convert = sub.add_parser("convert", help="rewrite a spec in the other syntax (YAML <-> DSL)")
    convert.add_argument("spec", metavar="FILE|ZOO-NAME")
    convert.add_argument("--to", choices=("yaml", "dsl"), required=True)
    convert.add_argument("-o", "--output", help="write here instead of stdout")
    convert.set_defaults(func=cmd_convert)

    fmt = sub.add_parser("fmt", help="format DSL files in place (canonical layout, comments kept)")
    fmt.add_argument("files", nargs="+", metavar="FILE")
    fmt.add_argument("--check", action="store_true", help="only report files that would change (exit 1)")
    fmt.set_defaults(func=cmd_fmt)

    ops = sub.add_parser("ops", help="list the layers the language knows")
    ops.set_defaults(func=cmd_ops)
    for module in COMMAND_MODULES:
        # Each module adds its subcommands; heavy imports (torch, graphviz) stay inside the handlers.
        importlib.import_module(module).register(sub)
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
        _print_diagnostics(exc, exc.sources, getattr(args, "concise", False))
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
