"""Indexed repeats: `mbconv(c, p=0.2 * j / 16) x(n, j)`, YAML `repeat: n` with `index: j`.

Each copy is expanded as a layer of its own with the index bound to its number (0, 1, ...), so
its arguments, and its `if`, may depend on its place: EfficientNet's and ConvNeXt's stochastic
depth rises block by block. The count is evaluated once, before any copy; the copies chain as
a plain repeat's do (the first takes the layer's `inputs`) and `as name` names the last one.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any, Protocol

from specdsl.blocks import several
from specdsl.blocks.base import BlockExpander, Frame
from specdsl.blocks.expr import FUNCTIONS, KEYWORDS, ExprError
from specdsl.blocks.names import child, fill_template, is_template
from specdsl.budgets import over, raise_hint
from specdsl.errors import Diagnostic, SourceLoc
from specdsl.schema.names import NAME_PATTERN
from specdsl.schema.validation import show_value
from specdsl.source import PathKey


class IndexingExpander(BlockExpander, Protocol):
    """What an indexed repeat needs of the expander (specdsl.blocks.engine.Expander) besides what
    built-in blocks use; a protocol, so this module does not import the engine that imports it."""

    diags: list[Diagnostic]
    size: int
    max_nodes: int
    switched_off: dict[str, SourceLoc | None]
    pending: several.Pending | None  # the last layer built was a call with several outputs
    feed: tuple[int, ...] | None

    def loc(self, src: PathKey) -> SourceLoc | None: ...

    def substitute(self, raw: Any, src: PathKey, frame: Frame) -> Any: ...

    def estimate(self, raw: Any, depth: int = 0) -> int: ...

    def bind_name(self, name: str, y: int | None, scope: dict[str, int], frame: Frame, loc: SourceLoc | None,
                  out: str) -> None: ...


# Words an expression gives a meaning of its own.
_TAKEN = KEYWORDS | set(FUNCTIONS)


def expand(ex: IndexingExpander, raw: dict[str, Any], src: PathKey, out: str, x: int | None, scope: dict[str, int],
           frame: Frame, at: str | None = None) -> int | None:
    """The copies as children of container ``out``: numbered on in it, or inside a container of the
    repeat's name (``at``: at exactly that path), or each named by a template (`"denselayer{j + 1}"`)."""
    index = raw["index"]
    where = (*src, "index")
    if not isinstance(index, str) or not re.fullmatch(NAME_PATTERN, index) or index in _TAKEN:
        ex.error("E369", f"a repeat index is a name such as `j`; received {show_value(index)}", where, frame,
                 path=out, hint="write `x(n, j)` (YAML: `repeat: n` and `index: j`)")
        return None
    if index in frame.env:
        ex.error("E369", f"the repeat index '{index}' would hide the parameter '{index}'", where, frame, path=out,
                 hint="give the index another name")
        return None
    if "repeat" not in raw:
        ex.error("E369", "`index` numbers the copies of a repeated layer, and this layer has no `repeat`", where,
                 frame, path=out, hint="add the count: `x(n, j)` (YAML: `repeat: n`)")
        return None
    n_errors = len(ex.diags)
    count = ex.substitute(raw["repeat"], (*src, "repeat"), frame)
    if len(ex.diags) > n_errors:
        return None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        ex.error("E369", f"a repeat count is a whole number, 0 or more; received {show_value(count)}",
                 (*src, "repeat"), frame, path=out, hint="round it: `x(ceil(n * depth), j)`")
        return None
    layer = {k: v for k, v in raw.items() if k not in ("index", "repeat", "name")}
    # Bounded before the first copy: a copy switched off by its `if` adds no node, but costs a loop turn.
    size = count * max(1, ex.estimate(layer, len(frame.calls)))
    if count > ex.max_nodes or ex.size + size > ex.max_nodes:
        ex.error("E330", f"this layer would expand to about {size:,} nodes; {over('max_nodes', ex.max_nodes)}",
                 (*src, "repeat"), frame, path=out, hint="reduce the repeat count; " + raise_hint("max_nodes"))
        return None
    name = raw.get("name")
    template = isinstance(name, str) and is_template(name)
    base = at
    if base is None and isinstance(name, str) and not template and count:
        base = ex.claim(out, name, ex.loc((*src, "name")), frame)
        if base is None:
            return None
    y = x
    for r in range(count):
        copy = layer if r == 0 else {k: v for k, v in layer.items() if k != "inputs"}
        inner = frame._replace(env=MappingProxyType({**frame.env, index: r}))
        if template and isinstance(name, str):
            try:
                copy = {**copy, "name": fill_template(name, inner.env)}
            except ExprError as exc:
                ex.error("E380", f"cannot fill the name template '{name}': {exc}", (*src, "name"), frame, path=out,
                         hint=f"use the index in braces: `as \"block{{{index}}}\"`")
                return None
        y = ex.layer(copy, src, out, y, scope, inner, at=None if base is None else child(base, r))
        ex.feed = None
        if y is None:
            return None
        if ex.pending is not None and r + 1 < count:
            # A call with several outputs: the next copy reads them all (HRNet's modules in a stage).
            ex.feed, ex.pending = ex.pending.outputs, None
    if isinstance(name, str) and not template:
        if y == x:  # no copy was built (a count of 0, or every copy's `if` false)
            ex.switched_off[name] = ex.loc((*src, "repeat"))
        elif ex.pending is not None:  # the last copy's outputs, `@name.0`, `@name.1`, ...
            several.bind(ex, name, ex.pending.outputs, scope, frame, ex.loc((*src, "name")), out)
        else:
            ex.bind_name(name, y, scope, frame, ex.loc((*src, "name")), out)
    return y
