"""Expressions over block and model parameters: ``c * 4``, ``(c + 1) // 2``,
``make_divisible(c * width, 8)``, ``max(1, c // 4)``, ``depth > 1 and use_se``.

A tiny tokenizer and precedence-climbing parser; never ``eval``. Values are integers, floats
and booleans with Python's semantics (``/`` is true division, ``//`` floors, ``round`` rounds
half to even), so a width rule copied from a PyTorch model gives the same number here. Inputs
are bounded (length, nesting, magnitude, arguments) so no spec can make this slow; there are
no loops and no recursion beyond the expression's own nesting.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping

MAX_LENGTH = 400
MAX_MAGNITUDE = 10**12
MAX_DEPTH = 32
MAX_ARGS = 8

_TOKEN = re.compile(
    r"\s*(?:((?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)|(\d+)|([A-Za-z_][A-Za-z0-9_]*)"
    r"|(//|==|!=|<=|>=|[-+*/%(),<>]))")
_LOOKS_LIKE = re.compile(r"^[\sA-Za-z0-9_.+\-*/%(),<>=!]+$")
_KEYWORDS = frozenset({"and", "or", "not", "if", "else", "true", "false"})

Value = int | float | bool


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
    return round(value) if digits is None else round(value, digits)


# name -> (function, least and most arguments)
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


def tokenize(text: str) -> list[tuple[str, str]]:
    return list(_tokens(text))


@functools.lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[tuple[str, str], ...]:
    """The tokens of an expression (cached: a family's layers repeat the same few texts)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExprError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos + 1}")
        real, number, name, op = m.groups()
        if real:
            tokens.append(("real", real))
        elif number:
            tokens.append(("num", number))
        elif name:
            tokens.append(("kw" if name in _KEYWORDS else "name", name))
        else:
            tokens.append(("op", op))
        pos = m.end()
    return tuple(tokens)


def identifiers(text: str) -> list[str]:
    """Parameter names an expression mentions (not functions or keywords), or [] when it is not
    expression-shaped."""
    if len(text) > MAX_LENGTH or not _LOOKS_LIKE.match(text):
        return []
    try:
        tokens = tokenize(text)
    except ExprError:
        return []
    return [v for k, (kind, v) in enumerate(tokens) if kind == "name" and not _is_call(tokens, k)]


def _is_call(tokens: list[tuple[str, str]], k: int) -> bool:
    return tokens[k][1] in FUNCTIONS and k + 1 < len(tokens) and tokens[k + 1] == ("op", "(")


def is_expression(text: str, names: Mapping[str, object]) -> bool:
    """True when ``text`` should be evaluated rather than kept as a string.

    A string is an expression when every identifier in it is a parameter (or a function called)
    and it has an identifier or an operator; so ``same`` or ``nearest-exact`` stay strings.
    """
    if len(text) > MAX_LENGTH or not _LOOKS_LIKE.match(text):
        return False
    try:
        tokens = tokenize(text)
    except ExprError:
        return False
    idents = [v for k, (kind, v) in enumerate(tokens) if kind == "name" and not _is_call(tokens, k)]
    has_operator = any(kind in ("op", "kw") for kind, _ in tokens) or len(idents) < sum(
        kind == "name" for kind, _ in tokens)
    return (bool(idents) or has_operator) and all(i in names for i in idents)


def evaluate(text: str, env: Mapping[str, object]) -> Value | str:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    tokens = tokenize(text)
    if len(tokens) == 1 and tokens[0][0] == "name":
        name = tokens[0][1]
        if name not in env:
            raise ExprError(f"unknown parameter '{name}'")
        return env[name]  # type: ignore[return-value]
    parser = _Parser(tokens, env)
    value = parser.ternary()
    if parser.pos != len(tokens):
        raise ExprError(f"unexpected '{tokens[parser.pos][1]}'")
    return value


_BINARY = {"+": 4, "-": 4, "*": 5, "/": 5, "//": 5, "%": 5}  # precedence; comparisons are 3
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}
_APPLY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod}


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], env: Mapping[str, object]):
        self.tokens = tokens
        self.env = env
        self.pos = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def accept(self, kind: str, text: str) -> bool:
        if self.peek() == (kind, text):
            self.pos += 1
            return True
        return False

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError("expression nested too deeply")

    # ternary: or_expr ["if" or_expr "else" ternary]
    def ternary(self) -> Value:
        self.nested()
        value = self.or_expr()
        if self.accept("kw", "if"):
            condition = _truth(self.or_expr(), "the condition of `if`")
            if not self.accept("kw", "else"):
                raise ExprError("`a if condition` needs `else b`")
            other = self.ternary()
            value = value if condition else other
        self.depth -= 1
        return value

    def or_expr(self) -> Value:
        value = self.and_expr()
        while self.accept("kw", "or"):
            right = self.and_expr()
            value = _truth(value, "`or`") or _truth(right, "`or`")
        return value

    def and_expr(self) -> Value:
        value = self.not_expr()
        while self.accept("kw", "and"):
            right = self.not_expr()
            value = _truth(value, "`and`") and _truth(right, "`and`")
        return value

    def not_expr(self) -> Value:
        if self.accept("kw", "not"):
            self.nested()
            value = not _truth(self.not_expr(), "`not`")
            self.depth -= 1
            return value
        return self.comparison()

    def comparison(self) -> Value:
        left = self.arith(0)
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in _COMPARE:
            self.pos += 1
            right = self.arith(0)
            return _COMPARE[tok[1]](left, right)
        return left

    def arith(self, min_prec: int) -> Value:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op" or tok[1] not in _BINARY or _BINARY[tok[1]] <= min_prec:
                return left
            self.pos += 1
            right = self.arith(_BINARY[tok[1]])
            left = _check(_apply(tok[1], left, right))

    def unary(self) -> Value:
        if self.accept("op", "-"):
            self.nested()
            value = _check(-_number(self.unary(), "-"))
            self.depth -= 1
            return value
        if self.accept("op", "+"):
            return _number(self.unary(), "+")
        return self.atom()

    def atom(self) -> Value:
        tok = self.peek()
        if tok is None:
            raise ExprError("expression ends too early")
        self.pos += 1
        kind, text = tok
        if kind == "num":
            return _check(int(text))
        if kind == "real":
            return _check(float(text))
        if kind == "kw" and text in ("true", "false"):
            return text == "true"
        if kind == "name":
            if self.peek() == ("op", "("):
                return self.call(text)
            if text not in self.env:
                raise ExprError(f"unknown parameter '{text}'")
            value = self.env[text]
            if not isinstance(value, (int, float, bool)):
                raise ExprError(f"parameter '{text}' is {value!r}, not a number")
            return value
        if text == "(":
            value = self.ternary()
            if not self.accept("op", ")"):
                raise ExprError("missing ')'")
            return value
        raise ExprError(f"unexpected '{text}'")

    def call(self, name: str) -> Value:
        if name not in FUNCTIONS:
            known = ", ".join(FUNCTIONS)
            raise ExprError(f"unknown function '{name}' (functions: {known})")
        function, least, most = FUNCTIONS[name]
        self.pos += 1  # "("
        args: list[Value] = []
        if not self.accept("op", ")"):
            while True:
                args.append(_number(self.ternary(), name))
                if len(args) > most:
                    break
                if self.accept("op", ")"):
                    break
                if not self.accept("op", ","):
                    raise ExprError(f"missing ',' or ')' in {name}(...)")
        if not least <= len(args) <= most:
            wanted = str(least) if least == most else f"{least} to {most}"
            raise ExprError(f"{name} takes {wanted} arguments; received {len(args)}")
        try:
            return _check(function(*args))
        except (ValueError, OverflowError, TypeError) as exc:
            raise ExprError(f"{name}: {exc}") from None


def _number(value: Value, what: str) -> int | float:
    if isinstance(value, bool):
        raise ExprError(f"{what} needs a number; received {'true' if value else 'false'}")
    return value


def _truth(value: Value, what: str) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"{what} needs true or false; received {value!r} (compare it, e.g. `n > 0`)")
    return value


def _apply(op: str, a: Value, b: Value) -> Value:
    a, b = _number(a, f"'{op}'"), _number(b, f"'{op}'")
    if op in ("/", "//", "%") and b == 0:
        raise ExprError("division by zero")
    return _APPLY[op](a, b)


def _check(value: Value) -> Value:
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError("the result is not a finite number")
    if not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"value {value} is out of range (|value| <= {MAX_MAGNITUDE:.0e})")
    return value
