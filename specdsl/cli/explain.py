"""`specdsl explain [CODE]`: an entry of the error catalogue (specdsl/catalog/), as `rustc --explain`.

Without a code it lists every code with its title. An unknown code is a usage error (exit 2) with
the nearest catalogued code. Reads only the catalogue's data: no spec, no torch.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from specdsl.cli.common import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from specdsl.catalog import Entry

WIDTH = 88


def register(sub: Any) -> None:
    explain = sub.add_parser(
        "explain", help="explain an error or warning code (E303, W301, ...), or list them all",
        description="Print what a diagnostic code means, an example spec that provokes it and how to "
                    "fix it. Without a code, list every code with its title.")
    explain.add_argument("code", nargs="?", metavar="CODE", help="a code such as E303 (case does not matter)")
    explain.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from specdsl import catalog

    if args.code is None:
        for code, listed in catalog.entries().items():
            retired = "  (retired)" if listed.retired else ""
            print(f"{code}  {listed.title}{retired}")
        print("\nrun `specdsl explain CODE` for one of them")
        return EXIT_OK
    entry = catalog.lookup(args.code)
    if entry is None:
        guess = catalog.closest(args.code)
        hint = f"did you mean {guess}?" if guess else "run `specdsl explain` to list the codes"
        print(f"specdsl explain: no code '{args.code}' in the catalogue; {hint}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(render(entry))
    return EXIT_OK


def render(entry: Entry) -> str:
    """The entry as text: title, explanation, example (indented, with how to check it) and fix."""
    out = [f"{entry.code} ({entry.severity}): {entry.title}", ""]
    if entry.retired:
        out += [*_para(f"Retired: {entry.retired}"), ""]
    out += [*_para(entry.explanation), "", "Example:", ""]
    out += ["    " + line for line in entry.example.rstrip("\n").splitlines()]
    flags = _flags(entry.load)
    if flags:
        out += ["", f"    (checked with: specdsl check FILE {flags})"]
    out += ["", "Fix:", "", *_para(entry.fix, indent="    ")]
    return "\n".join(out) + "\n"


def _para(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent,
                         break_on_hyphens=False) or [""]


def _flags(options: Mapping[str, Any]) -> str:
    """The load options of an example as the command line says them."""
    words = []
    for name, value in dict(options.get("budgets", {})).items():
        words.append(f"--{name.replace('_', '-')} {value}")
    if options.get("variant"):
        words.append(f"--variant {options['variant']}")
    for name, value in dict(options.get("params", {})).items():
        words.append(f"--param {name}={value}")
    if options.get("input"):
        words.append("--input " + ",".join(str(n) for n in options["input"]))
    return " ".join(words)
