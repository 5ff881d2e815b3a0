"""The expander's checks ahead of each layer: the depth and error limits, the layer's `if`, and the node
budget from the layer's estimate (specdsl.blocks.estimate). Split out of the engine, which calls them."""

from __future__ import annotations

from typing import Any, Protocol

from specdsl.blocks.base import Frame
from specdsl.budgets import MAX_ERRORS, over, raise_hint
from specdsl.errors import Diagnostic, SourceLoc
from specdsl.schema.layer import LayerSpec
from specdsl.schema.validation import show_value
from specdsl.source import PathKey


class Abort(Exception):
    """Expansion stops here (a budget passed); the diagnostics so far are the result."""


class Checked(Protocol):
    """The expander as the checks see it."""

    max_depth: int
    max_nodes: int
    size: int
    nesting: int
    diags: list[Diagnostic]
    memo: Any
    switched_off: dict[str, SourceLoc | None]

    def error(self, code: str, message: str, src: PathKey | SourceLoc | None, frame: Frame,
              hint: str | None = None, path: str | None = None) -> None: ...

    def loc(self, src: PathKey) -> SourceLoc | None: ...

    def substitute(self, raw: Any, src: PathKey, frame: Frame) -> Any: ...

    def estimate(self, raw: Any, depth: int = 0) -> int: ...


def limits(ex: Checked, src: PathKey, out: str, frame: Frame) -> None:
    """Stop expanding past max_depth (E324) or past MAX_ERRORS errors (E333)."""
    if frame.depth >= ex.max_depth:
        # Block calls nest layers beyond what the text shows; this also bounds Python's recursion.
        ex.error("E324", f"layers nest deeper than {ex.max_depth} levels, counting block calls "
                 "(the max_depth budget)", src, frame, path=out,
                 hint="flatten the blocks; " + raise_hint("max_depth"))
        raise Abort
    if len(ex.diags) >= MAX_ERRORS:
        ex.error("E333", f"more than {MAX_ERRORS:,} errors; the rest of the spec was not checked", src, frame,
                 hint="fix the first errors and check again", path=out)
        raise Abort


def condition(ex: Checked, raw: dict[str, Any], src: PathKey, out: str, frame: Frame) -> bool | None:
    """A layer's `if`: True to build it, False when switched off, None after an error. The condition
    is evaluated first: a switched-off layer's arguments are never evaluated."""
    # A sweep's condition met before with the same values of the names it mentions (specdsl.blocks.memo).
    hit = ex.memo.conditions.get(raw["if"], (*src, "if"), frame.env) if ex.memo is not None else None
    if hit is not None:
        value = hit[0]
    else:
        n_errors = len(ex.diags)
        value = ex.substitute(raw["if"], (*src, "if"), frame)
        if len(ex.diags) > n_errors:
            return None
        if not isinstance(value, bool):
            ex.error("E365", f"`if` needs true or false; received {show_value(value)}", (*src, "if"),
                     frame, path=out, hint="compare it (`if depth > 1`) or use a bool parameter")
            return None
        if ex.memo is not None:
            ex.memo.conditions.keep(value, None)
    if not value and isinstance(raw.get("name"), str):
        # Not built (its arguments may not even make sense); a later reference to its name says why.
        ex.switched_off[raw["name"]] = ex.loc((*src, "if"))
    return value


def size(ex: Checked, raw: Any, spec: LayerSpec, out: str, frame: Frame) -> None:
    """E330 before expanding, from the layer's estimate, so `repeat: 1000000000` costs nothing."""
    ex.nesting = frame.depth
    copies = ex.estimate(raw, len(frame.calls))
    if ex.size + copies > ex.max_nodes:
        ex.error("E330", f"this layer would expand to about {copies:,} nodes; "
                 f"{over('max_nodes', ex.max_nodes)}", spec.arg_locs.get("repeat", spec.loc), frame,
                 hint="reduce repeat counts, fractal columns or dense layers; " + raise_hint("max_nodes"),
                 path=out)
        raise Abort
