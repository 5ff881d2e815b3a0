"""Python values that print as source: a function lowering run on them yields its expression text.

A function lowering (``lowerings.py``) is ordinary Python over its inputs, such as
``(a + b) / 2`` or ``torch.cat([a, b], dim=1)``. ``to_torch`` runs it on fx proxies to
add graph nodes; the emitter runs it on :class:`SourceExpr` names and the
:data:`TORCH_SOURCE` stand-in for ``torch``, and gets the text of the same expression,
parenthesised where Python's precedence needs it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Binding strength of what an expression's text ends up as (higher binds tighter).
_SUM, _PRODUCT, _ATOM = 1, 2, 3


class SourceExpr:
    """The text of one expression in the emitted forward, and how tightly it binds."""

    __slots__ = ("precedence", "text")

    def __init__(self, text: str, precedence: int = _ATOM) -> None:
        self.text = text
        self.precedence = precedence

    def __repr__(self) -> str:
        return f"SourceExpr({self.text!r})"

    def _binary(self, symbol: str, precedence: int, left: Any, right: Any) -> SourceExpr:
        # Left-associative: a left operand of equal strength needs no parentheses, a right one does.
        lhs, rhs = as_source(left), as_source(right)
        ltext = lhs.text if lhs.precedence >= precedence else f"({lhs.text})"
        rtext = rhs.text if rhs.precedence > precedence else f"({rhs.text})"
        return SourceExpr(f"{ltext} {symbol} {rtext}", precedence)

    def __add__(self, other: Any) -> SourceExpr:
        return self._binary("+", _SUM, self, other)

    def __radd__(self, other: Any) -> SourceExpr:
        return self._binary("+", _SUM, other, self)

    def __sub__(self, other: Any) -> SourceExpr:
        return self._binary("-", _SUM, self, other)

    def __rsub__(self, other: Any) -> SourceExpr:
        return self._binary("-", _SUM, other, self)

    def __mul__(self, other: Any) -> SourceExpr:
        return self._binary("*", _PRODUCT, self, other)

    def __rmul__(self, other: Any) -> SourceExpr:
        return self._binary("*", _PRODUCT, other, self)

    def __getitem__(self, index: int) -> SourceExpr:
        return SourceExpr(f"{self.text if self.precedence == _ATOM else f'({self.text})'}[{index!r}]")

    def __truediv__(self, other: Any) -> SourceExpr:
        return self._binary("/", _PRODUCT, self, other)

    def __rtruediv__(self, other: Any) -> SourceExpr:
        return self._binary("/", _PRODUCT, other, self)


def as_source(value: Any) -> SourceExpr:
    """An expression, a list or tuple of them, or a constant (through ``repr``)."""
    if isinstance(value, SourceExpr):
        return value
    if isinstance(value, list):
        return SourceExpr(f"[{_joined(value)}]")
    if isinstance(value, tuple):
        return SourceExpr(f"({_joined(value)}{',' if len(value) == 1 else ''})")
    if value is None or isinstance(value, (bool, int, float, str)):
        # A negative number needs no parentheses next to + - * /: unary minus binds tighter.
        return SourceExpr(repr(value))
    raise TypeError(f"no source text for a {type(value).__name__} in a function lowering")


def _joined(values: Sequence[Any]) -> str:
    return ", ".join(as_source(v).text for v in values)


class _TorchSource:
    """Stands in for ``torch``: ``TORCH_SOURCE.cat([a, b], dim=1)`` is the text ``torch.cat([a, b], dim=1)``."""

    def __getattr__(self, name: str) -> Any:
        if not _IDENT.match(name) or name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> SourceExpr:
            parts = [as_source(a).text for a in args]
            parts += [f"{k}={as_source(v).text}" for k, v in kwargs.items()]
            return SourceExpr(f"torch.{name}({', '.join(parts)})")

        return call


TORCH_SOURCE: Any = _TorchSource()
