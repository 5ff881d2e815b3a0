"""`--variant NAME` and `--param NAME=VALUE`: choosing a member of a model family on the command line."""

from __future__ import annotations

import argparse
from typing import Any

from specdsl.schema.params import TextValue


def param_arg(text: str) -> tuple[str, TextValue]:
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
