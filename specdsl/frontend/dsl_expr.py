"""Expressions in DSL values (``c * 2``, ``-1``, ``make_divisible(c * width, 8)``, ``n > 1 and se``,
``a if c else b``, ``2 ** k``, ``widths[i]``):
numbers fold, anything else becomes its canonical text, which the expander evaluates
(:mod:`specdsl.blocks.expr`) exactly as it evaluates the same text written in YAML."""

from __future__ import annotations

from typing import Any

# Binding strength, as in Python: a if c else b < or < and < not < comparisons < + - < * / // % < unary -
# < ** < indexing.
_PREC = {"ternary": 0, "or_": 1, "and_": 2, "not_": 3, "compare": 4, "add": 5, "sub": 5, "mul": 6, "floordiv": 6,
         "truediv": 6, "mod": 6, "pow": 8}
_SYM = {"or_": "or", "and_": "and", "add": "+", "sub": "-", "mul": "*", "floordiv": "//", "truediv": "/", "mod": "%",
        "pow": "**"}
_NEG = 7
_INDEX = 9
_CONSTANTS = {"true": True, "false": False}


def expr_shape(node: Any) -> tuple[int, list[Any]]:
    """Depth of an expression tree and its INT tokens, without recursion."""
    depth = 0
    ints: list[Any] = []
    stack = [(node, 1)]
    while stack:
        item, d = stack.pop()
        depth = max(depth, d)
        if not hasattr(item, "data"):
            continue
        if item.data == "int":
            ints.append(item.children[0])
            continue
        stack.extend((c, d + 1) for c in item.children if hasattr(c, "data"))
    return depth, ints


def expr_value(node: Any) -> Any:
    """Numbers and names become values; anything else its canonical text."""
    kind = node.data
    if kind == "int":
        return int(node.children[0].value)
    if kind == "float":
        return float(node.children[0].value)
    if kind == "name":
        return node.children[0].value
    if kind in _CONSTANTS:
        return _CONSTANTS[kind]
    if kind == "neg":
        inner = expr_value(node.children[0])
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner
        return "-" + _expr_text(node.children[0], _NEG)
    return _expr_text(node, 0)


def _expr_text(node: Any, parent_prec: int) -> str:
    kind = node.data
    if kind in ("int", "float", "name", "string"):
        return node.children[0].value
    if kind in _CONSTANTS or kind == "null":
        return kind
    if kind == "neg":
        text = "-" + _expr_text(node.children[0], _NEG)
        return f"({text})" if _NEG < parent_prec else text
    if kind == "call":
        name, *args = node.children
        return f"{name.value}({', '.join(_expr_text(a, 0) for a in args)})"
    if kind == "list":
        return "[" + ", ".join(_expr_text(a, 0) for a in node.children) + "]"
    if kind == "dict":  # not an expression: the evaluator says so, quoting it
        return "{" + ", ".join(f"{k.value}: {_expr_text(v, 0)}" for k, v in (p.children for p in node.children)) + "}"
    if kind == "index":
        return f"{_expr_text(node.children[0], _INDEX)}[{_expr_text(node.children[1], 0)}]"
    prec = _PREC[kind]
    if kind == "ternary":
        value, condition, other = node.children
        # Both operands before `else` bind tighter; the one after it may be a ternary again.
        text = f"{_expr_text(value, 1)} if {_expr_text(condition, 1)} else {_expr_text(other, 0)}"
    elif kind == "pow":
        # Right to left: the left operand in brackets unless an atom; the right one may be `-x`.
        text = f"{_expr_text(node.children[0], _INDEX)} ** {_expr_text(node.children[1], _NEG)}"
    elif kind == "not_":
        text = "not " + _expr_text(node.children[0], prec)
    elif kind == "compare":
        left, op, right = node.children
        # Comparisons do not chain here: both sides bind tighter.
        text = f"{_expr_text(left, prec + 1)} {op.value} {_expr_text(right, prec + 1)}"
    else:
        left = _expr_text(node.children[0], prec)
        right = _expr_text(node.children[1], prec + 1)
        text = f"{left} {_SYM[kind]} {right}"
    return f"({text})" if prec < parent_prec else text
