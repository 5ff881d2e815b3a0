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


# The optional dependencies and the line that installs each: pyproject's extras (onnxruntime, which
# only `export --verify` needs, and onnxscript, which only `export --via torch` needs, are in none of
# them). Names as ModuleNotFoundError.name gives them.
EXTRAS = {
    "torch": "torch", "safetensors": "torch",
    "onnx": "onnx",
    "pygls": "lsp", "lsprotocol": "lsp",
    "optuna": "search", "ray": "search", "ray.tune": "search",
}
INSTALL = {name: f"pip install 'specdsl[{extra}]'" for name, extra in EXTRAS.items()} | {
    "onnxruntime": "pip install onnxruntime", "onnxscript": "pip install onnxscript"}


def missing_extra(exc: ImportError) -> str | None:
    """The install line for the optional dependency whose absence ``exc`` reports, or None when it is
    no such thing (a submodule of an installed package that fails, or one of ours, is a bug)."""
    return INSTALL.get(exc.name or "") if isinstance(exc, ModuleNotFoundError) else None


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


class PrintableStream:
    """A text stream that writes through :func:`printable` (newlines and tabs pass): the commands'
    stderr, where file names and values from untrusted input are quoted."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text.translate(_UNPRINTABLE))

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, ... as the stream has them
        return getattr(self._stream, name)


# What one report may print: a hostile spec can make thousands of errors, or a name of megabytes
# (names are shortened by specdsl.errors.shorten, for every renderer).
MAX_SHOWN = 100


def _shown(diag: Diagnostic, lines: dict[str, list[str]], full: bool) -> str:
    """One diagnostic as render_all draws it (long names shortened, a long source line windowed around
    the caret: specdsl.errors), given only its own source line."""
    from specdsl.errors import render_concise, shortened

    if not full:
        return render_concise(shortened(diag))
    loc, source = diag.loc, {}
    if loc is not None and loc.file in lines and 1 <= loc.line <= len(lines[loc.file]):
        source = {loc.file: "\n" * (loc.line - 1) + lines[loc.file][loc.line - 1]}
    return render_all([diag], source, full=True)


def print_diagnostics(exc_or_diags: SpecError | list[Diagnostic], sources: dict[str, str], concise: bool) -> None:
    """Diagnostics on stderr, with source excerpts (or one line each when ``concise``) and a count.

    At most MAX_SHOWN are printed (then how many more, by code); names and source lines are shortened.
    """
    from collections import Counter

    diags = exc_or_diags.diagnostics if isinstance(exc_or_diags, SpecError) else exc_or_diags
    if not diags:
        return
    lines = {f: t.splitlines() for f, t in sources.items()}
    shown = [_shown(d, lines, not concise) for d in diags[:MAX_SHOWN]]
    rest = diags[MAX_SHOWN:]
    if rest:
        codes = ", ".join(f"{c} ×{n}" if n > 1 else c for c, n in Counter(d.code for d in rest).most_common())
        shown.append(f"... and {len(rest):,} more diagnostic(s) not shown ({codes})")
    print(printable(("\n" if concise else "\n\n").join(shown)), file=sys.stderr)
    n_err = sum(d.is_error for d in diags)
    n_warn = sum(d.severity == "warning" for d in diags)
    if not concise:
        parts = [f"{n_err:,} error(s)"] if n_err else []
        if n_warn:
            parts.append(f"{n_warn:,} warning(s)")
        first = next((d for d in diags if d.is_error), diags[0])  # the error to fix first, else the warning
        print(f"\nfor more on a code: specdsl explain {first.code}\n" + ", ".join(parts), file=sys.stderr)


def add_budget_flags(parser: argparse.ArgumentParser, command: str | None = None) -> None:
    """--max-file-bytes, --max-depth, ...: one flag per field of specdsl.budgets.Budgets, whose help gives
    the default of ``command``."""
    from dataclasses import fields, replace

    from specdsl.budgets import HELP, defaults_for, flag

    DEFAULT = defaults_for(command)

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

    from specdsl.budgets import defaults_for

    default = defaults_for(getattr(args, "command", None))
    given = {f.name: getattr(args, f.name, None) for f in fields(default)}
    return replace(default, **{k: v for k, v in given.items() if v is not None})
