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

    In a sweep (``ex.memo``), a layer object seen before (the same substituted layer,
    ``specdsl.blocks.memo.LayerCache``) at the same call depth and nesting has the same estimate: it reads
    nothing else of the expander but what is fixed per spec (its blocks; their sizes are remembered only
    where no cut shortened them), so it is looked up rather than walked again.
    """
    memo = getattr(ex, "memo", None)
    if memo is None or ex.estimating:
        return _estimate(ex, raw, depth)
    known = memo.estimates.get(id(raw))
    if known is None or known[0] is not raw:
        if len(memo.estimates) >= MAX_ESTIMATES:
            return _estimate(ex, raw, depth)
        known = memo.estimates[id(raw)] = (raw, {})  # the entry keeps raw alive: its id is not reused
    where = (depth, ex.nesting, ex.max_depth)
    size = known[1].get(where)
    if size is None:
        size = known[1][where] = _estimate(ex, raw, depth)
    return size


# Layers whose estimates a sweep remembers.
MAX_ESTIMATES = 8192


def _estimate(ex: Estimating, raw: Any, depth: int = 0) -> int:
    if ex.nesting > ex.max_depth:
        # Past max_depth expansion stops (E324); a size cut short here is not remembered.
        ex.estimate_cut = True
        return 1
    if isinstance(raw, list):
        ex.nesting += 1
        try:
            return sum(_estimate(ex, item, depth) for item in raw)
        finally:
            ex.nesting -= 1
    if isinstance(raw, dict) and ("then" in raw or "else" in raw):  # `if c { } else { }`: the larger body
        return max(_estimate(ex, raw.get("then") or [], depth), _estimate(ex, raw.get("else") or [], depth))
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
        size = user.estimate(ex, op, depth, lambda layers: _estimate(ex, layers, depth + 1))
    elif op in BLOCKS:
        args = raw.get(op) if isinstance(raw, dict) else None
        size = BLOCKS[op].estimate(args, lambda layers: _estimate(ex, layers, depth))
    return repeat * max(size, 1)
