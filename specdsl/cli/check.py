"""`specdsl check`, and the commands that list what the language knows: `schema`, `zoo`, `ops`.

None of them imports torch, Graphviz or a backend.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from specdsl.cli.common import (
    EXIT_OK,
    EXIT_SPEC,
    EXIT_USAGE,
    add_budget_flags,
    budgets_of,
    positive_arg,
    shape_arg,
)
from specdsl.cli.params import choice_of
from specdsl.cli.report import report
from specdsl.cli.train import (
    add_train_flags,
    args_error,
    train_json,
    train_lines,
    training,
    usage_error,
    wants_training,
)
from specdsl.errors import SpecError


def cmd_check(args: argparse.Namespace) -> int:
    from specdsl.api import load
    from specdsl.render.json import model_json
    from specdsl.render.table import table

    status = EXIT_OK
    results: list[dict[str, Any]] = []
    if (problem := args_error(args)) is not None:
        usage_error(problem)
        return EXIT_USAGE
    for i, source in enumerate(args.specs):
        try:
            model = load(source, input=args.input, batch=args.batch, budgets=budgets_of(args), warn=False,
                         **choice_of(args))
        except SpecError as exc:
            status = EXIT_SPEC
            if args.json:
                results.append({"file": str(source), "ok": False,
                                "diagnostics": [d.to_json() for d in exc.diagnostics]})
            else:
                report(args, exc.diagnostics, exc.sources)
            continue
        trained = training(model, args) if wants_training(args) else None
        if isinstance(trained, str):
            usage_error(trained)
            return EXIT_USAGE
        if args.json:
            args.warned = getattr(args, "warned", 0) + len(model.warnings)  # for --strict
            results.append({"ok": True, **model_json(model)})
            if trained is not None:
                results[-1]["totals"].update(train_json(*trained, args.fit))
            continue
        if i:
            print()
        print(table(model, depth=args.depth, full_ops=args.all_ops,
                    saved=trained[0].per_node if trained is not None else None))
        if trained is not None:
            print("\n".join(train_lines(model, *trained, args.fit)))
        if model.diagnostics and not (args.quiet and not any(d.is_error for d in model.diagnostics)):
            print()
        report(args, model.diagnostics, model.sources)
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    return status


def cmd_schema(args: argparse.Namespace) -> int:
    from specdsl.schema.jsonschema import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_zoo(args: argparse.Namespace) -> int:
    """One line per zoo file; a family's variants follow it, indented (every listed name loads)."""
    from specdsl import zoo

    members: dict[str, list[str]] = {}
    for name, (stem, _) in zoo.variants().items():
        members.setdefault(stem, []).append(name)
    if not args.verbose:
        for stem in zoo.names():
            print("\n".join([stem, *(f"  {v}" for v in members.get(stem, []))]))
        return EXIT_OK
    from specdsl.api import load
    from specdsl.ops.rule import fmt_shape

    def figures(label: str, name: str) -> tuple[str, str, str, str]:
        m = load(name, warn=False)
        return label, fmt_shape(m.graph.input_shape), f"{m.totals.params:,}", f"{m.totals.macs:,}"

    rows = [("model", "input", "params", "MACs")]
    for stem in zoo.names():
        variants = members.get(stem, [])
        if not variants:
            rows.append(figures(stem, stem))
            continue
        # A family's own row would repeat one member's figures (its defaults): it names the family.
        rows.append((stem, f"family of {len(variants)}", "", ""))
        rows.extend(figures(f"  {v}", v) for v in variants)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))).rstrip())
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


# One function per command, so that `specdsl --help` lists the commands in the order main gives.

def add_check(sub: Any) -> None:
    check = sub.add_parser("check", help="validate specs and print their figures",
                           description="Validate spec files (or zoo names) and print a per-layer table.")
    check.add_argument("specs", nargs="+", metavar="FILE|ZOO-NAME")
    check.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    check.add_argument("--batch", type=positive_arg, default=1, help="batch size for memory figures (default 1)")
    check.add_argument("--input", type=shape_arg, help="override the input shape, e.g. 3,299,299")
    check.add_argument("--depth", type=positive_arg, help="fold rows deeper than N into their block")
    check.add_argument("--all-ops", action="store_true",
                       help="also count bias, norm, activation and pooling ops (torchinfo-like)")
    check.add_argument("--concise", action="store_true", help="one line per diagnostic")
    add_train_flags(check)
    add_budget_flags(check)
    check.set_defaults(func=cmd_check)


def add_schema(sub: Any) -> None:
    schema = sub.add_parser("schema", help="print the JSON Schema of spec files (for editors)")
    schema.set_defaults(func=cmd_schema)


def add_zoo(sub: Any) -> None:
    zoo = sub.add_parser("zoo", help="list the bundled models")
    zoo.add_argument("-v", "--verbose", action="store_true", help="with input shape, params and MACs")
    zoo.set_defaults(func=cmd_zoo)


def add_ops(sub: Any) -> None:
    ops = sub.add_parser("ops", help="list the layers the language knows")
    ops.set_defaults(func=cmd_ops)
