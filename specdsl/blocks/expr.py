"""Expressions over block and model parameters: ``c * 4``, ``(c + 1) // 2``,
``make_divisible(c * width, 8)``, ``max(1, c // 4)``, ``depth > 1 and use_se``, ``4 if se else 2``,
``2 ** k``, ``widths[i]``, ``len(widths)``.

A tiny tokenizer and precedence-climbing parser; never ``eval``. Values are integers, floats,
booleans and lists with Python's semantics (``/`` is true division, ``//`` floors, ``round`` rounds
half to even, ``True + 1 == 2``, ``a if c else b`` evaluates only the operand it picks), so a width
rule copied from a PyTorch model gives the same number here. Inputs are bounded (length, nesting,
magnitude, list length, arguments; :mod:`specdsl.blocks.expr_values` checks every value) so no spec can
make this slow; there are no loops and no recursion beyond the expression's own nesting.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

from specdsl.blocks import expr_values as V
from specdsl.blocks.expr_values import (
    ALL_FUNCTIONS,
    FUNCTIONS,
    MAX_ARGS,
    MAX_LIST,
    MAX_MAGNITUDE,
    MAX_ROUND_DIGITS,
    ExprError,
    Value,
    make_divisible,
)

__all__ = ["FUNCTIONS", "KEYWORDS", "MAX_ARGS", "MAX_DEPTH", "MAX_LENGTH", "MAX_LIST", "MAX_MAGNITUDE",
           "MAX_ROUND_DIGITS", "ExprError", "Value", "compiled", "evaluate", "identifiers", "is_expression",
           "make_divisible", "tokenize"]

MAX_LENGTH = 400
MAX_DEPTH = 32

_TOKEN = re.compile(
    r"\s*(?:((?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)|(\d+)|([A-Za-z_][A-Za-z0-9_]*)"
    r"|(\*\*|//|==|!=|<=|>=|[-+*/%(),<>\[\]]))")
_LOOKS_LIKE = re.compile(r"^[\sA-Za-z0-9_.+\-*/%(),<>=!\[\]]+$")
# Words with a meaning of their own in an expression: never a parameter's name.
KEYWORDS = frozenset({"and", "or", "not", "if", "else", "true", "false", "let"})


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
    return tokens[k][1] in ALL_FUNCTIONS and k + 1 < len(tokens) and tokens[k + 1] == ("op", "(")


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


def _constant(value: Value) -> Compiled:
    return lambda env: value


class _Parser:
    """Precedence climbing over the tokens, building closures. `and` and `or` evaluate both operands
    (so both are checked to be booleans); `a if c else b` evaluates only the operand it picks, as Python
    does, so `widths[i] if i < len(widths) else 0` guards the index."""

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
                return value(env) if V.truth(condition(env), "the condition of `if`") else other(env)
        self.depth -= 1
        return function

    def or_expr(self) -> Compiled:
        function = self.and_expr()
        while self.accept("kw", "or"):
            function = _logical(function, self.and_expr(), "`or`", lambda a, b: a or b)
        return function

    def and_expr(self) -> Compiled:
        function = self.not_expr()
        while self.accept("kw", "and"):
            function = _logical(function, self.not_expr(), "`and`", lambda a, b: a and b)
        return function

    def not_expr(self) -> Compiled:
        if self.accept("kw", "not"):
            self.nested()
            inner = self.not_expr()
            self.depth -= 1
            return lambda env: not V.truth(inner(env), "`not`")
        return self.comparison()

    def comparison(self) -> Compiled:
        left = self.arith(0)
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in V.COMPARE:
            self.pos += 1
            right, op = self.arith(0), tok[1]
            return lambda env: V.compare(op, left(env), right(env))
        return left

    def arith(self, min_prec: int) -> Compiled:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op" or tok[1] not in _BINARY or _BINARY[tok[1]] <= min_prec:
                return left
            self.pos += 1
            left = _binary(tok[1], left, self.arith(_BINARY[tok[1]]))

    # unary: ("-" | "+") unary | power   (so -2 ** 2 is -(2 ** 2), as in Python)
    def unary(self) -> Compiled:
        for sign in ("-", "+"):
            if self.accept("op", sign):
                self.nested()
                inner = self.unary()
                self.depth -= 1
                if sign == "-":
                    return lambda env: V.check(-V.number(inner(env), "-"))
                return lambda env: V.number(inner(env), "+")
        return self.power()

    # power: primary ["**" unary]   (right to left: 2 ** 3 ** 2 is 2 ** 9)
    def power(self) -> Compiled:
        base = self.primary()
        if self.accept("op", "**"):
            self.nested()
            exponent = self.unary()
            self.depth -= 1
            return _binary("**", base, exponent)
        return base

    # primary: atom ("[" ternary "]")*
    def primary(self) -> Compiled:
        function = self.atom()
        while self.accept("op", "["):
            self.nested()
            items, at = function, self.ternary()
            self.depth -= 1
            if not self.accept("op", "]"):
                raise ExprError("missing ']'")
            function = _indexed(items, at)
        return function

    def atom(self) -> Compiled:
        tok = self.peek()
        if tok is None:
            raise ExprError("expression ends too early")
        self.pos += 1
        kind, text = tok
        if kind == "num":
            return _constant(V.literal(text))
        if kind == "real":
            return _constant(V.check(float(text)))
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
        if text == "[":
            return self.list_literal()
        raise ExprError(f"unexpected '{text}'")

    def items(self, closer: str, most: int, what: str) -> list[Compiled]:
        """Comma-separated expressions up to ``closer`` (already past the opening bracket)."""
        found: list[Compiled] = []
        if self.accept("op", closer):
            return found
        while True:
            found.append(self.ternary())
            if len(found) > most or self.accept("op", closer):
                return found
            if not self.accept("op", ","):
                raise ExprError(f"missing ',' or '{closer}' in {what}")

    def list_literal(self) -> Compiled:
        self.nested()
        elements = self.items("]", MAX_LIST, "a list")
        self.depth -= 1
        if len(elements) > MAX_LIST:
            raise ExprError(f"a list holds at most {MAX_LIST} items")
        return lambda env: [e(env) for e in elements]

    def call(self, name: str) -> Compiled:
        if name not in ALL_FUNCTIONS:
            raise ExprError(f"unknown function '{name}' (functions: {', '.join(ALL_FUNCTIONS)})")
        least, most = V.arity(name)
        self.pos += 1  # "("
        args = self.items(")", most, f"{name}(...)")
        if not least <= len(args) <= most:
            wanted = str(least) if least == most else f"{least} to {most}"
            raise ExprError(f"{name} takes {wanted} arguments; received {len(args)}")
        return lambda env: V.call(name, [a(env) for a in args])


def _parameter(name: str) -> Compiled:
    def value(env: Mapping[str, object]) -> Value:
        if name not in env:
            raise ExprError(f"unknown parameter '{name}'")
        found = env[name]
        if isinstance(found, (list, tuple)):
            return V.check(list(found))
        if not isinstance(found, (int, float, bool)):
            raise ExprError(f"parameter '{name}' is {found!r}, not a number")
        return found
    return value


def _logical(left: Compiled, right: Compiled, what: str, combine: Callable[[bool, bool], bool]) -> Compiled:
    def function(env: Mapping[str, object]) -> Value:
        a, b = left(env), right(env)
        return combine(V.truth(a, what), V.truth(b, what))
    return function


def _binary(op: str, left: Compiled, right: Compiled) -> Compiled:
    return lambda env: V.apply(op, left(env), right(env))


def _indexed(items: Compiled, at: Compiled) -> Compiled:
    return lambda env: V.index(items(env), at(env))
