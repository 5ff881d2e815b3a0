"""`--variant NAME` and `--param NAME=VALUE`: choosing a member of a model family on the command line."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from specdsl.schema.params import TextValue


def param_arg(text: str) -> tuple[str, TextValue]:
    # Imported when a --param is parsed: every command's parser gets these flags, and the schema brings
    # pydantic and the op table, which `explain`, `lsp` or `--help` never need.
    from specdsl.schema.params import TextValue

    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. width=1.2); received '{text}'")
    return name.strip(), TextValue(value.strip())


def add_param_flags(parser: argparse.ArgumentParser) -> None:
    if any("--param" in a.option_strings for a in parser._actions):
        return  # the command has its own (sweep)
    parser.add_argument("--variant", metavar="NAME", help="a named member of the spec's family (e.g. b3)")
    parser.add_argument("--param", type=param_arg, action="append", default=[], metavar="NAME=VALUE",
                        help="set a model parameter (repeatable), e.g. --param width=1.2")


def choice_of(args: argparse.Namespace) -> dict[str, Any]:
    """The load() keywords the flags ask for (none when the command has no such flags)."""
    out: dict[str, Any] = {}
    if getattr(args, "variant", None):
        out["variant"] = args.variant
    if getattr(args, "param", None):
        out["params"] = dict(args.param)
    return out


def register(sub: Any) -> None:
    cmd = sub.add_parser("params", help="a model family's parameters, defaults and variants",
                         description="List what `--param` and `--variant` may set for a spec or zoo family, and the "
                                     "figures `sweep --where` and `--objective` may name.")
    cmd.add_argument("spec", metavar="FILE|ZOO-NAME")
    cmd.add_argument("--json", action="store_true", help="as one JSON object")
    cmd.set_defaults(func=cmd_params)


def cmd_params(args: argparse.Namespace) -> int:
    import json
    import sys

    from specdsl.api import load
    from specdsl.cli.common import EXIT_OK
    from specdsl.search.space import family
    from specdsl.search.where import FIGURES

    load(args.spec, warn=False, **choice_of(args))  # a broken or missing spec: its located errors (exit 1)
    found = family(args.spec)
    if args.json:
        json.dump({**found, "figures": FIGURES}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    print(f"{found['file']}: {len(found['params'])} parameters, {len(found['variants'])} variants")
    width = max((len(n) for n in found["params"]), default=0)
    for name, p in found["params"].items():
        default = "(required)" if p["default"] is None else json.dumps(p["default"])
        print(f"  {name.ljust(width)}  {p['kind']:<5}  {default}")
    if found["variants"]:
        print("variants:")
        for name, values in found["variants"].items():
            print(f"  {name}: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items()))
    print("figures for sweep --where and --objective:")
    for name, text in FIGURES.items():
        print(f"  {name:<16} {text}")
    print("  train_peak(batch=N, amp='bf16'|'fp16', optimizer='sgd'|'momentum'|'adam'|'adamw'): training peak, bytes")
    return EXIT_OK
