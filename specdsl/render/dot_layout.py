"""Which boxes the diagram draws: block calls as clusters, expanded or collapsed to a given depth.

A block is *collapsed* into one box with a summary or *expanded* into its primitive ops, to a given
nesting depth: ``expand=0`` collapses every outermost block, ``expand=1`` opens those and
collapses the blocks inside them, ``expand=None`` opens everything. A repeat of a block
(``basic(64) x2``) is one level, like the block itself: collapsed, it is one box
``basic ×2``; expanded, each copy is its own cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from specdsl.ops.channels import PART
from specdsl.render.figures import path_segments

if TYPE_CHECKING:
    from specdsl.ir import Graph


@dataclass
class Unit:
    """A block call, or a repeat of block calls, and what it contains."""

    key: str
    kind: str
    level: int
    is_repeat: bool = False
    nodes: list[int] = field(default_factory=list)  # every graph node inside, in order
    copies: set[str] = field(default_factory=set)
    # Items drawn directly inside when expanded: ("node", index) or ("unit", Unit), in order.
    items: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.kind} ×{len(self.copies)}" if self.is_repeat else self.kind


def unit_chain(path: str, blocks: dict[str, str]) -> list[tuple[str, str, bool]]:
    """(key, block name, is_repeat) of the block calls and repeats enclosing a node, outermost first.

    A repeat and its copy share one nesting level; a repeat key is followed by its copy's key.
    """
    chain: list[tuple[str, str, bool]] = []
    prefix = ""
    segs = path_segments(path)
    for i, seg in enumerate(segs):
        prefix = prefix + seg if seg.startswith("[") or not prefix else prefix + "." + seg
        if prefix in blocks:
            chain.append((prefix, blocks[prefix], False))
        elif i + 1 < len(segs) and segs[i + 1].startswith("[") and prefix + segs[i + 1] in blocks:
            chain.append((prefix, blocks[prefix + segs[i + 1]], True))
    return chain


@dataclass
class Layout:
    """What is drawn: top-level items, and for each graph node the item that stands for it."""

    items: list[tuple[str, Any]]
    owner: list[tuple[str, Any]]  # per node: ("node", index) or ("box", Unit)


def _opened(graph: Graph, name: str) -> set[str]:
    """The block calls ``--expand NAME`` opens: those called NAME (or at path NAME), the blocks inside
    them, and the calls around them (to reach them)."""
    def within(key: str, outer: str) -> bool:
        return key == outer or (key.startswith(outer) and key[len(outer)] in ".[")

    targets = [k for k, kind in graph.blocks.items() if name in (k, kind) or within(k, name)]
    return {k for k in graph.blocks if any(within(k, t) or within(t, k) for t in targets)} | \
        {k for t in targets for k in _prefixes(t)}


def _prefixes(key: str) -> list[str]:
    out, prefix = [], ""
    for seg in path_segments(key):
        prefix = prefix + seg if seg.startswith("[") or not prefix else prefix + "." + seg
        out.append(prefix)
    return out


def layout(graph: Graph, expand: int | str | None) -> Layout:
    """Group nodes into block clusters; blocks at nesting level >= expand collapse into boxes.

    ``expand`` may also name a block (or give a block call's path): only those calls are opened.
    """
    if isinstance(expand, str):
        opened = _opened(graph, expand)

        def collapsed(unit: Unit) -> bool:
            return unit.key not in opened
    else:
        def collapsed(unit: Unit) -> bool:
            return expand is not None and unit.level >= expand
    units: dict[str, Unit] = {}
    top: list[tuple[str, Any]] = []
    owner: list[tuple[str, Any]] = []
    for node in graph.nodes:
        if node.op == PART:
            # `@s.k` is drawn as an edge out of the split's box, labelled with k, not as a box of its own.
            owner.append(owner[node.inputs[0]])
            continue
        parent_items = top
        level = 0
        placed: tuple[str, Any] | None = None
        for key, kind, is_repeat in unit_chain(node.path, graph.blocks):
            unit = units.get(key)
            if unit is None:
                unit = Unit(key, kind, level, is_repeat)
                units[key] = unit
                # A repeat that is expanded is not drawn itself: its copies are the clusters.
                if collapsed(unit):
                    parent_items.append(("box", unit))
                elif not is_repeat:
                    parent_items.append(("unit", unit))
            unit.nodes.append(node.index)
            if is_repeat:
                unit.copies.add(path_segments(node.path[len(key):])[0])
            if collapsed(unit):
                placed = ("box", unit)
                break
            if not is_repeat:
                parent_items = unit.items
                level += 1
        if placed is None:
            placed = ("node", node.index)
            parent_items.append(placed)
        owner.append(placed)
    return Layout(top, owner)


def parse_expand(text: str) -> int | None:
    """``all`` -> None (no limit), ``none`` -> 0, ``N`` -> N; ValueError otherwise."""
    t = text.strip().lower()
    if t == "all":
        return None
    if t == "none":
        return 0
    if t.isdigit():
        return int(t)
    raise ValueError(f"expected all, none or a block depth such as 1; received '{text}'")
