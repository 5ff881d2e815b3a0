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
# Words with a meaning of their own in an expression: never a parameter's name.
KEYWORDS = frozenset({"and", "or", "not", "if", "else", "true", "false"})

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


# round(x, -10**12) would compute 10**(10**12); no size a spec can hold needs more digits than this.
MAX_ROUND_DIGITS = 30


def _round(value: float, digits: int | None = None) -> Value:
    if digits is None:
        return round(value)
    if isinstance(digits, bool) or not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
        raise ExprError(f"round's digits must be a whole number from {-MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}; "
                        f"received {digits}")
    return round(value, digits)


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
            tokens.append(("kw" if name in KEYWORDS else "name", name))
        else:
            tokens.append(("op", op))
        pos = m.end()
    return tuple(tokens)


@functools.lru_cache(maxsize=4096)
def _outline(text: str) -> tuple[tuple[str, ...], bool] | None:
    """The parameter names an expression mentions and whether it has an operator (or calls a function);
    None when the text is not expression-shaped. Cached: the same texts come back for every layer."""
    if len(text) > MAX_LENGTH or not _LOOKS_LIKE.match(text):
        return None
    try:
        tokens = _tokens(text)
    except ExprError:
        return None
    idents = tuple(v for k, (kind, v) in enumerate(tokens) if kind == "name" and not _is_call(tokens, k))
    has_operator = any(kind in ("op", "kw") for kind, _ in tokens) or len(idents) < sum(
        kind == "name" for kind, _ in tokens)
    return idents, has_operator


def identifiers(text: str) -> list[str]:
    """Parameter names an expression mentions (not functions or keywords), or [] when it is not
    expression-shaped."""
    outline = _outline(text)
    return list(outline[0]) if outline else []


def _is_call(tokens: tuple[tuple[str, str], ...], k: int) -> bool:
    return tokens[k][1] in FUNCTIONS and k + 1 < len(tokens) and tokens[k + 1] == ("op", "(")


def is_expression(text: str, names: Mapping[str, object]) -> bool:
    """True when ``text`` should be evaluated rather than kept as a string.

    A string is an expression when every identifier in it is a parameter (or a function called)
    and it has an identifier or an operator; so ``same`` or ``nearest-exact`` stay strings.
    """
    outline = _outline(text)
    if outline is None:
        return False
    idents, has_operator = outline
    return (bool(idents) or has_operator) and all(i in names for i in idents)


def evaluate(text: str, env: Mapping[str, object]) -> object:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    tokens = _tokens(text)
    if len(tokens) == 1 and tokens[0][0] == "name":
        name = tokens[0][1]
        if name not in env:
            raise ExprError(f"unknown parameter '{name}'")
        return env[name]  # a parameter's value as given: a number, a string, a list ...
    return compiled(text)(env)


Compiled = Callable[[Mapping[str, object]], Value]


@functools.lru_cache(maxsize=4096)
def compiled(text: str) -> Compiled:
    """The expression as a function of the parameters; syntax errors are raised here, once per text.

    A family evaluates the same few texts for every layer of every member (and a sweep for every
    point), so each text is parsed once into closures and only evaluated after that.
    """
    tokens = _tokens(text)
    parser = _Parser(tokens)
    function = parser.ternary()
    if parser.pos != len(tokens):
        raise ExprError(f"unexpected '{tokens[parser.pos][1]}'")
    return function


_BINARY = {"+": 4, "-": 4, "*": 5, "/": 5, "//": 5, "%": 5}  # precedence; comparisons are 3
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}
_APPLY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod}


def _constant(value: Value) -> Compiled:
    return lambda env: value


class _Parser:
    """Precedence climbing over the tokens, building closures; every operand is evaluated (no short
    circuit), so `a or b` checks that both are booleans whatever a is."""

    def __init__(self, tokens: tuple[tuple[str, str], ...]):
        self.tokens = tokens
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
    def ternary(self) -> Compiled:
        self.nested()
        function = self.or_expr()
        if self.accept("kw", "if"):
            condition = self.or_expr()
            if not self.accept("kw", "else"):
                raise ExprError("`a if condition` needs `else b`")
            other = self.ternary()
            value = function

            def function(env: Mapping[str, object]) -> Value:
                a, c = value(env), _truth(condition(env), "the condition of `if`")
                b = other(env)
                return a if c else b
        self.depth -= 1
        return function

    def or_expr(self) -> Compiled:
        function = self.and_expr()
        while self.accept("kw", "or"):
            function = _logical(function, self.and_expr(), "`or`", operator.or_)
        return function

    def and_expr(self) -> Compiled:
        function = self.not_expr()
        while self.accept("kw", "and"):
            function = _logical(function, self.not_expr(), "`and`", operator.and_)
        return function

    def not_expr(self) -> Compiled:
        if self.accept("kw", "not"):
            self.nested()
            inner = self.not_expr()
            self.depth -= 1
            return lambda env: not _truth(inner(env), "`not`")
        return self.comparison()

    def comparison(self) -> Compiled:
        left = self.arith(0)
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in _COMPARE:
            self.pos += 1
            right, compare = self.arith(0), _COMPARE[tok[1]]
            return lambda env: compare(left(env), right(env))
        return left

    def arith(self, min_prec: int) -> Compiled:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op" or tok[1] not in _BINARY or _BINARY[tok[1]] <= min_prec:
                return left
            self.pos += 1
            left = _binary(tok[1], left, self.arith(_BINARY[tok[1]]))

    def unary(self) -> Compiled:
        if self.accept("op", "-"):
            self.nested()
            inner = self.unary()
            self.depth -= 1
            return lambda env: _check(-_number(inner(env), "-"))
        if self.accept("op", "+"):
            inner = self.unary()
            return lambda env: _number(inner(env), "+")
        return self.atom()

    def atom(self) -> Compiled:
        tok = self.peek()
        if tok is None:
            raise ExprError("expression ends too early")
        self.pos += 1
        kind, text = tok
        if kind == "num":
            if len(text) > _MAX_DIGITS:  # int() refuses past 4,300 digits; far beyond any size anyway
                raise ExprError(f"the number {text[:12]}... ({len(text):,} digits) is out of range "
                                f"(|value| <= {MAX_MAGNITUDE:.0e})")
            return _constant(_check(int(text)))
        if kind == "real":
            return _constant(_check(float(text)))
        if kind == "kw" and text in ("true", "false"):
            return _constant(text == "true")
        if kind == "name":
            if self.peek() == ("op", "("):
                return self.call(text)
            return _parameter(text)
        if text == "(":
            function = self.ternary()
            if not self.accept("op", ")"):
                raise ExprError("missing ')'")
            return function
        raise ExprError(f"unexpected '{text}'")

    def call(self, name: str) -> Compiled:
        if name not in FUNCTIONS:
            known = ", ".join(FUNCTIONS)
            raise ExprError(f"unknown function '{name}' (functions: {known})")
        function, least, most = FUNCTIONS[name]
        self.pos += 1  # "("
        args: list[Compiled] = []
        if not self.accept("op", ")"):
            while True:
                args.append(self.ternary())
                if len(args) > most:
                    break
                if self.accept("op", ")"):
                    break
                if not self.accept("op", ","):
                    raise ExprError(f"missing ',' or ')' in {name}(...)")
        if not least <= len(args) <= most:
            wanted = str(least) if least == most else f"{least} to {most}"
            raise ExprError(f"{name} takes {wanted} arguments; received {len(args)}")

        def apply(env: Mapping[str, object]) -> Value:
            values = [_number(a(env), name) for a in args]
            try:
                return _check(function(*values))
            except (ValueError, OverflowError, TypeError) as exc:
                raise ExprError(f"{name}: {exc}") from None
        return apply


def _parameter(name: str) -> Compiled:
    def value(env: Mapping[str, object]) -> Value:
        if name not in env:
            raise ExprError(f"unknown parameter '{name}'")
        found = env[name]
        if not isinstance(found, (int, float, bool)):
            raise ExprError(f"parameter '{name}' is {found!r}, not a number")
        return found
    return value


def _logical(left: Compiled, right: Compiled, what: str, combine: Callable[[bool, bool], bool]) -> Compiled:
    def function(env: Mapping[str, object]) -> Value:
        a, b = left(env), right(env)
        return combine(_truth(a, what), _truth(b, what))
    return function


def _binary(op: str, left: Compiled, right: Compiled) -> Compiled:
    return lambda env: _check(_apply(op, left(env), right(env)))


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


_MAX_DIGITS = 40


def _check(value: Value) -> Value:
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError("the result is not a finite number")
    if not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"value {value} is out of range (|value| <= {MAX_MAGNITUDE:.0e})")
    return value
