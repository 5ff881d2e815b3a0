"""Parameter names and expressions in a layer's raw arguments replaced by their values.

A plain word (`relu`, `same`) stays as written; a parameter or an expression over parameters is
evaluated in the frame's environment; a misspelt parameter inside arithmetic is said as such
(E320 with a did-you-mean) instead of failing later as a string where a number was wanted.
"""

from __future__ import annotations

from typing import Any, Protocol

from specdsl.blocks.base import Frame
from specdsl.blocks.expr import ExprError, evaluate, identifiers, is_expression
from specdsl.errors import SourceLoc, did_you_mean, listing
from specdsl.source import PathKey

_OPERATOR_CHARS = frozenset("+-*/%()<>=! []")
_ARITHMETIC = frozenset("*/+%0123456789")  # what a word such as `nearest-exact` never holds


class Substituting(Protocol):
    """What substitution needs of the expander: a place to report errors."""

    def error(self, code: str, message: str, src: PathKey | SourceLoc | None, frame: Frame,
              hint: str | None = None, path: str | None = None) -> None: ...


def substitute(ex: Substituting, raw: Any, src: PathKey, frame: Frame) -> Any:
    """Replace parameter names and integer expressions by their values."""
    env = frame.env
    if isinstance(raw, str):
        if raw not in env and not _OPERATOR_CHARS.intersection(raw):
            return raw  # a plain word such as `relu` or `same`: the common case, kept fast
        names = identifiers(raw)
        if raw in env or is_expression(raw, env):
            try:
                return evaluate(raw, env)
            except ExprError as exc:
                ex.error("E320", f"cannot evaluate '{raw}': {exc}", src, frame,
                           hint="expressions use parameters, numbers, lists, + - * / // % **, comparisons, "
                           "and/or/not, a if c else b, x[i], len, min, max, round, floor, ceil, int, abs and "
                           "make_divisible")
        elif any(n in env for n in names):
            unknown = [n for n in names if n not in env]
            guess = did_you_mean(unknown[0], env)
            ex.error("E320", f"cannot evaluate '{raw}': unknown parameter '{unknown[0]}'", src, frame,
                       hint=f"did you mean '{guess}'?" if guess else "parameters in scope: " + listing(env))
        elif names and _ARITHMETIC.intersection(raw):
            # `widht * 32`: no name is known, so it would stay a string (as `nearest-exact` does) and
            # fail as one; arithmetic on a misspelt parameter is said as such.
            guess = next((g for n in names if (g := did_you_mean(n, env))), None)
            if guess is not None:
                wrong = next(n for n in names if did_you_mean(n, env) == guess)
                ex.error("E320", f"cannot evaluate '{raw}': unknown parameter '{wrong}'", src, frame,
                           hint=f"did you mean '{guess}'?")
        return raw
    if isinstance(raw, list):
        return [substitute(ex, v, (*src, i), frame) for i, v in enumerate(raw)]
    if isinstance(raw, dict):
        return {k: v if k in ("name", "inputs") else substitute(ex, v, (*src, k), frame)
                for k, v in raw.items()}
    return raw
