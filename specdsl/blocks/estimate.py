"""A layer's size before it is built: the expansion budget's check ahead of each layer.

Linear in the spec's text however block calls multiply: a call's size is remembered per block and
call depth. ``repeat: 1000000000`` is refused by its estimate before a single copy is made.
"""

from __future__ import annotations

from typing import Any, Protocol

from specdsl.blocks import user
from specdsl.blocks.registry import BLOCKS

# A layer's keys that are not its op.
LAYER_META = ("name", "frozen", "init", "inputs", "repeat", "if", "index")


class Estimating(user.CallingExpander, Protocol):
    """The expander as the estimate sees it: what a user-block call needs, and the nesting counter."""

    nesting: int
    max_depth: int


def estimate(ex: Estimating, raw: Any, depth: int = 0) -> int:
    """An upper-bound-ish node count of a raw layer, computed without building anything.

    ``depth`` counts the user-block calls around the layer. A call's size is remembered per block and
    depth, so the estimate is linear in the spec's text however the calls multiply.
    """
    if ex.nesting > ex.max_depth:
        # Past max_depth expansion stops (E324); a size cut short here is not remembered.
        ex.estimate_cut = True
        return 1
    if isinstance(raw, list):
        ex.nesting += 1
        try:
            return sum(estimate(ex, item, depth) for item in raw)
        finally:
            ex.nesting -= 1
    if isinstance(raw, dict) and ("then" in raw or "else" in raw):  # `if c { } else { }`: the larger body
        return max(estimate(ex, raw.get("then") or [], depth), estimate(ex, raw.get("else") or [], depth))
    op = raw if isinstance(raw, str) else next((k for k in raw if k not in LAYER_META), None) \
        if isinstance(raw, dict) else None
    if op is None:
        return 1
    repeat = raw.get("repeat", 1) if isinstance(raw, dict) else 1
    repeat = repeat if isinstance(repeat, int) and not isinstance(repeat, bool) and repeat > 0 else 1
    size = 1
    if op in ex.spec.blocks:
        # Past MAX_BLOCK_DEPTH a call expands to one error (E323), as a recursive call does.
        if op in ex.estimating or depth >= user.MAX_BLOCK_DEPTH:
            return 1
        size = user.estimate(ex, op, depth, lambda layers: estimate(ex, layers, depth + 1))
    elif op in BLOCKS:
        args = raw.get(op) if isinstance(raw, dict) else None
        size = BLOCKS[op].estimate(args, lambda layers: estimate(ex, layers, depth))
    return repeat * max(size, 1)
