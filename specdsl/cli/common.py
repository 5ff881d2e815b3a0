"""What every command shares: exit codes, argument types, budget flags and printing diagnostics.

Command modules import this module only (never cli.main), so main can import them.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from specdsl.errors import Diagnostic, SpecError, render_all

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3


def shape_arg(text: str) -> tuple[int, ...]:
    """An input shape without the batch: ``3,224,224``, ``[3, 224, 224]``, ``3x224x224``."""
    parts = [p for p in re.split(r"[\s,x×\[\]()]+", text.strip()) if p]
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected a shape without the batch such as 3,224,224 or [3,224,224]; received '{text}'")
    return tuple(int(p) for p in parts)


def positive_arg(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received '{text}'")
    return int(text)


# Control characters (ANSI escapes, NUL, ...) and bidi overrides quoted from an untrusted spec
# must not reach the terminal; each becomes U+FFFD, one column wide, so carets stay aligned.
_UNPRINTABLE = {c: "\ufffd" for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0),
                                      *range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def printable(text: str) -> str:
    return text.translate(_UNPRINTABLE)


def print_diagnostics(exc_or_diags: SpecError | list[Diagnostic], sources: dict[str, str], concise: bool) -> None:
    """Diagnostics on stderr, with source excerpts (or one line each when ``concise``) and a count."""
    diags = exc_or_diags.diagnostics if isinstance(exc_or_diags, SpecError) else exc_or_diags
    if not diags:
        return
    print(printable(render_all(diags, sources, full=not concise)), file=sys.stderr)
    n_err = sum(d.is_error for d in diags)
    n_warn = sum(d.severity == "warning" for d in diags)
    if not concise:
        parts = [f"{n_err} error(s)"] if n_err else []
        if n_warn:
            parts.append(f"{n_warn} warning(s)")
        print("\n" + ", ".join(parts), file=sys.stderr)


def add_budget_flags(parser: argparse.ArgumentParser) -> None:
    """--max-file-bytes, --max-depth, ...: one flag per field of specdsl.budgets.Budgets."""
    from dataclasses import fields, replace

    from specdsl.budgets import DEFAULT, HELP, flag

    group = parser.add_argument_group("budgets", "limits for untrusted specs (a spec over one is an error)")

    def budget_type(name: str) -> Callable[[str], int]:
        def parse(text: str) -> int:
            value = positive_arg(text)
            try:
                replace(DEFAULT, **{name: value})  # the ceiling on max_depth
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
            return value

        return parse

    for f in fields(DEFAULT):
        group.add_argument(flag(f.name), type=budget_type(f.name), metavar="N", dest=f.name,
                           help=f"{HELP[f.name]} (default {getattr(DEFAULT, f.name):,})")


def budgets_of(args: argparse.Namespace) -> Any:
    """The Budgets the budget flags ask for (the defaults where none is given)."""
    from dataclasses import fields, replace

    from specdsl.budgets import DEFAULT

    given = {f.name: getattr(args, f.name, None) for f in fields(DEFAULT)}
    return replace(DEFAULT, **{k: v for k, v in given.items() if v is not None})
