"""Containers that are one block: the same module class, the same subgraph up to argument values.

Each container gets a canonical key, computed bottom-up from its items (op, name, references and
the arguments that shape the structure) and its children's keys, so finding every instance of a
block is one hash per container, never a graph-isomorphism search. The numeric arguments are the
container's *slots*, flattened over its subtree in writing order; the slots that differ between a
block's instances become its parameters (one per distinct column of values, so a width used by
three convs is one parameter), typed, with the common value as the default.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from specdsl.lift.args import full_args
from specdsl.lift.graph import LiftedGraph
from specdsl.lift.layout import Layout, layout
from specdsl.lift.tree import Box

# Slot names that read better as parameters under another name.
PARAM_NAMES = {"out": "c", "in": "cin", "p": "p"}
Value = tuple[str, Any]  # (kind, value): 1, 1.0 and True are three different values


@dataclass
class Shape:
    """A container's key and slot values, and what its layout says of its items."""

    box: Box
    klass: str
    lay: Layout
    key: int                            # interned: equal keys, equal structure
    values: tuple[Value, ...]
    slot_names: tuple[str, ...]
    offsets: list[int]                  # each entry's first slot


@dataclass
class Group:
    """A block: every container with one key, and its parameters."""

    klass: str
    shapes: list[Shape]
    # slot -> the parameter's expression (a name, or `c * 4`); slots not here are constants
    exprs: dict[int, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # name -> default, or its type ("int")
    columns: dict[str, tuple[Value, ...]] = field(default_factory=dict)
    block: str | None = None  # its block's name, once a call of it is written

    def value(self, shape: Shape, slot: int) -> Any:
        return shape.values[slot][1]


def _slot(v: Any) -> bool:
    return isinstance(v, (int, float)) or isinstance(v, bool)


def shapes(graph: LiftedGraph, root: Box, merge: bool) -> dict[int, Shape]:
    """Every container's shape, by id(box), bottom-up."""
    out: dict[int, Shape] = {}
    used: set[str] = set()
    interned: dict[tuple[Any, ...], int] = {}  # keys nest: each is hashed once, then an int

    def visit(box: Box) -> Shape:
        for it in box.items:
            if isinstance(it, Box):
                visit(it)
        lay = layout(graph, box, used)
        keys: list[Any] = []
        values: list[Value] = []
        names: list[str] = []
        offsets: list[int] = []
        for entry in lay.entries:
            offsets.append(len(values))
            if isinstance(entry.item, Box):
                child = out[id(entry.item)]
                keys.append(("box", child.klass, child.key, entry.name, entry.reads))
                values.extend(child.values)
                names.extend(child.slot_names)
                continue
            node = graph.nodes[entry.item]
            args = full_args(node.op, node.args)
            fixed = tuple(sorted((k, repr(v)) for k, v in args.items() if not (merge and _slot(v))))
            keys.append((node.op, entry.name, entry.reads, fixed))
            for k in sorted(args):
                if merge and _slot(args[k]):
                    values.append((type(args[k]).__name__, args[k]))
                    names.append(PARAM_NAMES.get(k, k))
        klass = graph.classes.get(box.path, "")
        key = interned.setdefault((klass, len(box.inputs), tuple(keys)), len(interned))
        shape = Shape(box, klass, lay, key, tuple(values), tuple(names), offsets)
        out[id(box)] = shape
        return shape

    visit(root)
    return out


def groups(all_shapes: dict[int, Shape]) -> dict[int, Group]:
    found: dict[int, Group] = {}
    for shape in all_shapes.values():
        found.setdefault(shape.key, Group(shape.klass, [])).shapes.append(shape)
    for group in found.values():
        parameterise(group)
    return found


def parameterise(group: Group) -> None:
    """The varying slots become parameters: one per distinct column, a multiple of another where
    one column is (`c * 4`), typed and defaulted by the values the instances pass."""
    first = group.shapes[0]
    by_column: dict[tuple[Value, ...], str] = {}
    taken: Counter[str] = Counter()
    for slot in range(len(first.values)):
        column = tuple(s.values[slot] for s in group.shapes)
        if len(set(column)) == 1:
            continue
        if column in by_column:
            group.exprs[slot] = by_column[column]
            continue
        multiple = _multiple(column, group.columns)
        if multiple is not None:
            group.exprs[slot] = by_column[column] = multiple
            continue
        base = first.slot_names[slot]
        taken[base] += 1
        name = base if taken[base] == 1 else f"{base}{taken[base]}"
        by_column[column] = group.exprs[slot] = name
        group.columns[name] = column
        group.params[name] = _default(column)


def _multiple(column: tuple[Value, ...], columns: dict[str, tuple[Value, ...]]) -> str | None:
    """`c * m` where every value of ``column`` is m times the parameter c's (whole numbers)."""
    if any(kind != "int" for kind, _ in column):
        return None
    for name, other in columns.items():
        if any(kind != "int" or v == 0 for kind, v in other):
            continue
        if column[0][1] % other[0][1] == 0:
            m = column[0][1] // other[0][1]
            if m > 1 and all(v == m * w for (_, v), (_, w) in zip(column, other)):
                return f"{name} * {m}"
    return None


def _default(column: tuple[Value, ...]) -> Any:
    """The value most instances pass, where most do; else the parameter's type (it is required)."""
    (kind, value), count = Counter(column).most_common(1)[0]
    if count * 2 > len(column):
        return value
    return kind
