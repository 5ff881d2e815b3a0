"""Expressions in DSL values (``c * 2``, ``-1``, ``make_divisible(c * width, 8)``, ``n > 1 and se``):
numbers fold, anything else becomes its canonical text, which the expander evaluates
(:mod:`specdsl.blocks.expr`) exactly as it evaluates the same text written in YAML."""

from __future__ import annotations

from typing import Any

# Binding strength, as in Python: or < and < not < comparisons < + - < * / // %.
_PREC = {"or_": 1, "and_": 2, "not_": 3, "compare": 4, "add": 5, "sub": 5, "mul": 6, "floordiv": 6,
         "truediv": 6, "mod": 6}
_SYM = {"or_": "or", "and_": "and", "add": "+", "sub": "-", "mul": "*", "floordiv": "//", "truediv": "/", "mod": "%"}
_NEG = 7


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
    if kind == "neg":
        inner = expr_value(node.children[0])
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner
        return "-" + _expr_text(node.children[0], _NEG)
    return _expr_text(node, 0)


def _expr_text(node: Any, parent_prec: int) -> str:
    kind = node.data
    if kind in ("int", "float", "name"):
        return node.children[0].value
    if kind == "neg":
        return "-" + _expr_text(node.children[0], _NEG)
    if kind == "call":
        name, *args = node.children
        return f"{name.value}({', '.join(_expr_text(a, 0) for a in args)})"
    prec = _PREC[kind]
    if kind == "not_":
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
