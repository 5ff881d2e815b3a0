"""The arithmetic of a block's body that emitted block classes may write as Python.

`specdsl build` gives a block one class when its calls differ only in numbers that the class can
compute from its parameters: `c * 4`, `(c + 1) // 2`, `0.1 * i / 17` (a model parameter written as
its value; the emitted file is one member of a family). Collected while the graph is expanded, for
the emitter to try against each call's values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from specdsl.blocks.expr import ExprError, evaluate, tokenize


def block_expressions(raw: Any, params: set[str], constants: Mapping[str, int | float]) -> tuple[str, ...]:
    """Every such expression in a block's body. No calls; the text is rebuilt from the expression's
    tokens, so nothing of the spec's own text reaches the source but parameter names and numbers."""
    found: set[str] = set()
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and item not in params:
            text = _python_arithmetic(item, params, constants)
            if text is not None:
                found.add(text)
        elif isinstance(item, dict):
            stack.extend(v for k, v in item.items() if k not in ("name", "inputs"))
        elif isinstance(item, list):
            stack.extend(item)
    return tuple(sorted(found))


_ARITHMETIC = frozenset({"+", "-", "*", "/", "//", "%", "(", ")"})


def _python_arithmetic(text: str, params: set[str], constants: Mapping[str, int | float]) -> str | None:
    try:
        tokens = tokenize(text)
    except ExprError:
        return None
    names = [v for kind, v in tokens if kind == "name"]
    if not any(n in params for n in names) or not all(n in params or n in constants for n in names):
        return None
    if not all(kind in ("name", "num", "real") or (kind == "op" and v in _ARITHMETIC) for kind, v in tokens):
        return None
    out: list[str] = []
    for kind, v in tokens:
        if kind == "name":
            word = v if v in params else repr(constants[v])
            out.append(f"({word})" if word.startswith("-") else word)
        elif kind == "num":
            if len(v) > 19:  # beyond int64: the expression is refused where it is used, not shared here
                return None
            out.append(str(int(v)))
        elif kind == "real":
            out.append(repr(float(v)))
        else:
            out.append(v)
    rendered = " ".join(out).replace("( ", "(").replace(" )", ")")
    try:  # the rebuilt text must mean what the spec's did
        probe = {**constants, **dict.fromkeys(params, 3)}
        if evaluate(rendered, probe) != evaluate(text, probe):
            return None
    except ExprError:
        return None
    return rendered
