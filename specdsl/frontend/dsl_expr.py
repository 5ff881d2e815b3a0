"""Arithmetic in DSL values (``c * 2``, ``-1``): numbers fold, anything else keeps its canonical text."""

from __future__ import annotations

from typing import Any

_PREC = {"add": 1, "sub": 1, "mul": 2, "floordiv": 2}
_SYM = {"add": "+", "sub": "-", "mul": "*", "floordiv": "//"}


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
        return "-" + _expr_text(node.children[0], 3)
    return _expr_text(node, 0)


def _expr_text(node: Any, parent_prec: int) -> str:
    kind = node.data
    if kind in ("int", "float", "name"):
        return node.children[0].value
    if kind == "neg":
        return "-" + _expr_text(node.children[0], 3)
    prec = _PREC[kind]
    left = _expr_text(node.children[0], prec)
    right = _expr_text(node.children[1], prec + 1)
    text = f"{left} {_SYM[kind]} {right}"
    return f"({text})" if prec < parent_prec else text
