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


# --------------------------------------------------------------------------- folding a tall graph

FOLD_MIN_RANKS = 40  # a graph at most this many boxes deep stays one column
# Graphviz lays folded columns out far more slowly than one column (measured with dot 2.43 on 2 cores:
# 2,990 boxes take 3 s in one column, 81 s folded, past the 120 s timeout on a slower machine; 500
# folded take 1.9 s). --wrap auto folds at most this many boxes; the diagram command refuses an
# explicit --wrap N beyond it for a rendered format (DOT text is written at any size).
FOLD_MAX_BOXES = 500
RANK_HEIGHT = 0.7  # inches a rank takes, box and gap (Graphviz's ranksep 0.3 + a two-line box)
COLUMN_WIDTH = 2.4  # inches a box takes across, with nodesep and a cluster's margin


@dataclass
class Fold:
    """Where each drawn item goes when a long graph is folded into columns (rows, drawn left to right),
    the way text wraps: ``columns`` bands of consecutive ranks, side by side."""

    columns: int
    column_of: dict[str, int]  # item id -> its column
    heads: list[str]  # each column's first item, in order: what lines the columns up side by side

    def crosses(self, src: str, dst: str) -> bool:
        return self.column_of[src] != self.column_of[dst]


def item_ranks(order: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """The longest path from an input to each item, over the drawn edges (given in the graph's order)."""
    rank = dict.fromkeys(order, 0)
    for src, dst in edges:
        if src != dst:
            rank[dst] = max(rank[dst], rank[src] + 1)
    return rank


def auto_columns(rank: dict[str, int]) -> int:
    """As many columns as make the drawing about as wide as it is tall; one for a graph of modest depth."""
    depth = max(rank.values(), default=0) + 1
    if depth <= FOLD_MIN_RANKS:
        return 1
    width = max(sum(1 for r in rank.values() if r == level) for level in set(rank.values()))
    # depth / k ranks tall, k * width boxes wide: equal sizes when k^2 = depth * height / (width * box width).
    return max(2, round((depth * RANK_HEIGHT / (width * COLUMN_WIDTH)) ** 0.5))


def fold(order: list[str], edges: list[tuple[str, str]], clusters: list[list[str]], columns: int | None) -> Fold:
    """Cut the ranks into ``columns`` bands (None: :func:`auto_columns`) near equal heights.

    Each cut is placed, within a quarter of a band of its ideal rank, where the fewest drawn edges and
    clusters (lists of item ids) are cut, so a fold falls between blocks rather than inside one.
    """
    rank = item_ranks(order, edges)
    depth = max(rank.values(), default=0) + 1
    k = (1 if len(order) > FOLD_MAX_BOXES else auto_columns(rank)) if columns is None else columns
    k = max(1, min(k, depth // 2))
    spans = [(min(rank[i] for i in c), max(rank[i] for i in c)) for c in clusters if c]
    cuts: list[int] = []
    for n in range(1, k):
        ideal = round(n * depth / k)
        window = max(1, depth // (4 * k))
        low = max(ideal - window, (cuts[-1] + 1) if cuts else 1)

        def cost(r: int, ideal: int = ideal) -> tuple[int, int]:
            # A cut at r puts ranks >= r in the next column.
            cut_edges = sum(1 for s, d in edges if rank[s] < r <= rank[d])
            cut_clusters = sum(1 for lo, hi in spans if lo < r <= hi)
            return cut_edges + 2 * cut_clusters, abs(r - ideal)

        cuts.append(min(range(low, min(ideal + window, depth - 1) + 1), key=cost, default=low))
    column_of = {i: sum(1 for c in cuts if rank[i] >= c) for i in order}
    heads = [min((i for i in order if column_of[i] == c), key=lambda i: rank[i]) for c in range(k)]
    return Fold(k, column_of, heads)


def parse_wrap(text: str) -> int | None:
    """``auto`` -> None (fold a tall graph), ``none`` -> 1 column, ``N`` -> N columns; ValueError otherwise."""
    t = text.strip().lower()
    if t == "auto":
        return None
    if t == "none":
        return 1
    if t.isdigit() and int(t) >= 1:
        return int(t)
    raise ValueError(f"expected auto, none or a number of columns such as 3; received '{text}'")
