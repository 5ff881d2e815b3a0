"""The values of specdsl's expressions and what may be done to them: numbers, booleans and lists,
each operation checked and bounded (magnitude, list length, exponent) before it is computed.

The half of :mod:`specdsl.blocks.expr` that computes; that module tokenizes and parses. Python's
semantics throughout: booleans count as 1 and 0 in arithmetic (`True + 1 == 2`), `/` divides
exactly, `//` floors, a negative index counts from the end.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

MAX_MAGNITUDE = 10**12
MAX_LIST = 256
# round(x, -10**12) would compute 10**(10**12); no size a spec can hold needs more digits than this.
MAX_ROUND_DIGITS = 30
MAX_ARGS = 8
_MAX_DIGITS = 40

# A value: int, float, bool, or a list of values.
Value = Any


class ExprError(Exception):
    pass


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision's ``_make_divisible``: the nearest multiple of divisor, never below 90 % of value."""
    if divisor <= 0:
        raise ExprError("make_divisible needs a positive divisor")
    floor = divisor if min_value is None else min_value
    new = max(floor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def _round(value: float, digits: int | None = None) -> Value:
    if digits is None:
        return round(value)
    if isinstance(digits, bool) or not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
        raise ExprError(f"round's digits must be a whole number from {-MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}; "
                        f"received {digits}")
    return round(value, digits)


# name -> (function, least and most arguments); each argument a number (booleans count as 0 and 1).
FUNCTIONS: dict[str, tuple[Callable[..., Value], int, int]] = {
    "min": (min, 2, MAX_ARGS),
    "max": (max, 2, MAX_ARGS),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "int": (int, 1, 1),
    "abs": (abs, 1, 1),
    "make_divisible": (make_divisible, 2, 3),
}
# Functions of a list.
LIST_FUNCTIONS: dict[str, Callable[[list[Value]], Value]] = {"len": len}
ALL_FUNCTIONS = (*FUNCTIONS, *LIST_FUNCTIONS)


def shown(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        inner = ", ".join(shown(v) for v in value[:8])
        return f"[{inner}{', ...' if len(value) > 8 else ''}]"
    return repr(value)


def number(value: Value, what: str) -> int | float:
    """A number for arithmetic: booleans are 1 and 0, as in Python; lists are refused."""
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, (int, float)):
        raise ExprError(f"{what} needs a number; received {shown(value)}")
    return value


def truth(value: Value, what: str) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"{what} needs true or false; received {shown(value)} (compare it, e.g. `n > 0`)")
    return value


def check(value: Value) -> Value:
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            raise ExprError(f"a list of {len(value):,} items is too long (at most {MAX_LIST})")
        for v in value:
            check(v)
        return value
    if isinstance(value, complex):
        raise ExprError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError("the result is not a finite number")
    if not isinstance(value, (bool, int, float)):
        raise ExprError(f"{shown(value)} is not a number, true/false or a list")
    if not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"value {value} is out of range (|value| <= {MAX_MAGNITUDE:.0e})")
    return value


def literal(text: str) -> int:
    if len(text) > _MAX_DIGITS:  # int() refuses past 4,300 digits; far beyond any size anyway
        raise ExprError(f"the number {text[:12]}... ({len(text):,} digits) is out of range "
                        f"(|value| <= {MAX_MAGNITUDE:.0e})")
    return check(int(text))


_APPLY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod}
COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
           ">=": operator.ge}


def apply(op: str, a: Value, b: Value) -> Value:
    x, y = number(a, f"'{op}'"), number(b, f"'{op}'")
    if op == "**":
        return check(power(x, y))
    if op in ("/", "//", "%") and y == 0:
        raise ExprError("division by zero")
    return check(_APPLY[op](x, y))


def power(base: int | float, exponent: int | float) -> int | float:
    """``base ** exponent``, refused before it is computed when the result would leave MAX_MAGNITUDE."""
    if base == 0 and exponent < 0:
        raise ExprError("division by zero (0 to a negative power)")
    if base < 0 and isinstance(exponent, float) and not exponent.is_integer():
        raise ExprError(f"{shown(base)} ** {shown(exponent)} is not a real number")
    if abs(base) > 1 and exponent > 0 and exponent * math.log2(abs(base)) > math.log2(MAX_MAGNITUDE) + 1:
        raise ExprError(f"{shown(base)} ** {shown(exponent)} is out of range (|value| <= {MAX_MAGNITUDE:.0e})")
    if 0 < abs(base) < 1 and exponent < 0 and -exponent * -math.log2(abs(base)) > math.log2(MAX_MAGNITUDE) + 1:
        raise ExprError(f"{shown(base)} ** {shown(exponent)} is out of range (|value| <= {MAX_MAGNITUDE:.0e})")
    try:
        result = base ** exponent
    except (OverflowError, ZeroDivisionError) as exc:
        raise ExprError(f"{shown(base)} ** {shown(exponent)}: {exc}") from None
    return result


def compare(op: str, a: Value, b: Value) -> bool:
    try:
        return bool(COMPARE[op](a, b))
    except TypeError:
        raise ExprError(f"'{op}' cannot compare {shown(a)} with {shown(b)}") from None


def index(items: Value, at: Value) -> Value:
    if not isinstance(items, list):
        raise ExprError(f"only a list can be indexed; received {shown(items)}")
    if isinstance(at, float) or not isinstance(at, int):
        raise ExprError(f"a list index is a whole number; received {shown(at)}")
    if not -len(items) <= at < len(items):
        raise ExprError(f"index {at} is out of range for a list of {len(items)} item(s) "
                        f"(0 to {len(items) - 1}, or from the end -1 to -{len(items)})")
    return items[at]


def call(name: str, values: list[Value]) -> Value:
    if name in LIST_FUNCTIONS:
        if not isinstance(values[0], list):
            raise ExprError(f"{name} needs a list; received {shown(values[0])}")
        return check(LIST_FUNCTIONS[name](values[0]))
    function = FUNCTIONS[name][0]
    args = [number(v, name) for v in values]
    try:
        return check(function(*args))
    except (ValueError, OverflowError, TypeError) as exc:
        raise ExprError(f"{name}: {exc}") from None


def arity(name: str) -> tuple[int, int]:
    return (1, 1) if name in LIST_FUNCTIONS else FUNCTIONS[name][1:]
