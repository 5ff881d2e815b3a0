"""Integer expressions over block parameters: ``c * 4``, ``(c + 1) // 2``.

A tiny tokenizer and precedence-climbing parser; never ``eval``. Inputs are
bounded (length, nesting, magnitude) so no spec can make this slow.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping

MAX_LENGTH = 200
MAX_MAGNITUDE = 10**12

_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(//|[-+*()]))")
_LOOKS_LIKE = re.compile(r"^[\sA-Za-z0-9_+\-*/()]+$")


class ExprError(Exception):
    pass


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExprError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos + 1}")
        number, name, op = m.groups()
        tokens.append(("num", number) if number else ("name", name) if name else ("op", op))
        pos = m.end()
    return tokens


def identifiers(text: str) -> list[str]:
    """Names an expression mentions, or [] when it is not expression-shaped."""
    if len(text) > MAX_LENGTH or not _LOOKS_LIKE.match(text):
        return []
    try:
        return [v for k, v in tokenize(text) if k == "name"]
    except ExprError:
        return []


def is_expression(text: str, names: Mapping[str, object]) -> bool:
    """True when ``text`` should be evaluated rather than kept as a string.

    A string is an expression when every identifier in it is a parameter and
    it has at least one; so ``same`` or ``nearest-exact`` stay strings.
    """
    if len(text) > MAX_LENGTH or not _LOOKS_LIKE.match(text):
        return False
    try:
        tokens = tokenize(text)
    except ExprError:
        return False
    idents = [v for k, v in tokens if k == "name"]
    has_operator = any(k == "op" for k, _ in tokens)
    return (bool(idents) or has_operator) and all(i in names for i in idents)


def evaluate(text: str, env: Mapping[str, object]) -> int | float | bool | str:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    tokens = tokenize(text)
    if len(tokens) == 1 and tokens[0][0] == "name":
        name = tokens[0][1]
        if name not in env:
            raise ExprError(f"unknown parameter '{name}'")
        return env[name]  # type: ignore[return-value]
    parser = _Parser(tokens, env)
    value = parser.expr(0)
    if parser.pos != len(tokens):
        raise ExprError(f"unexpected '{tokens[parser.pos][1]}'")
    return value


_BINARY = {"+": 1, "-": 1, "*": 2, "//": 2}  # precedence
_APPLY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv}


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], env: Mapping[str, object]):
        self.tokens = tokens
        self.env = env
        self.pos = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def atom(self) -> int:
        tok = self.peek()
        if tok is None:
            raise ExprError("expression ends too early")
        self.pos += 1
        kind, text = tok
        if kind == "num":
            return self.check(int(text))
        if kind == "name":
            if text not in self.env:
                raise ExprError(f"unknown parameter '{text}'")
            value = self.env[text]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ExprError(f"parameter '{text}' is {value!r}, not an integer")
            return value
        if text == "(":
            self.depth += 1
            if self.depth > 32:
                raise ExprError("parentheses nested too deeply")
            value = self.expr(0)
            if self.peek() != ("op", ")"):
                raise ExprError("missing ')'")
            self.pos += 1
            self.depth -= 1
            return value
        if text == "-":
            return self.check(-self.atom())
        if text == "+":
            return self.atom()
        raise ExprError(f"unexpected '{text}'")

    def expr(self, min_prec: int) -> int:
        left = self.atom()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op" or tok[1] not in _BINARY or _BINARY[tok[1]] < min_prec + 1:
                return left
            op = tok[1]
            self.pos += 1
            right = self.expr(_BINARY[op])
            left = self.check(self.apply(op, left, right))

    @staticmethod
    def apply(op: str, a: int, b: int) -> int:
        if op == "//" and b == 0:
            raise ExprError("division by zero")
        return _APPLY[op](a, b)

    @staticmethod
    def check(value: int) -> int:
        if abs(value) > MAX_MAGNITUDE:
            raise ExprError(f"value {value} is out of range (|value| <= {MAX_MAGNITUDE:.0e})")
        return value
