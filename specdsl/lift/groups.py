"""Containers that are one block: the same module class, the same subgraph up to argument values.

Each container gets a canonical key, computed bottom-up from its items (op, name, references and
the arguments that shape the structure) and its children's keys, so finding every instance of a
block is one hash per container, never a graph-isomorphism search. The numeric arguments are the
container's *slots*, flattened over its subtree in writing order; the slots that differ between a
block's instances become its parameters (one per distinct column of values, so a width used by
three convs is one parameter), typed, with the common value as the default.
"""

from __future__ import annotations

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
    entry_keys: list[int] = field(default_factory=list)  # each entry's key, interned


def _slot(v: Any) -> bool:
    return isinstance(v, (int, float)) or isinstance(v, bool)


def shapes(graph: LiftedGraph, root: Box, merge: bool) -> dict[int, Shape]:
    """Every container's shape, by id(box), bottom-up."""
    out: dict[int, Shape] = {}
    used: set[str] = set()
    interned: dict[tuple[Any, ...], int] = {}  # keys nest: each is hashed once, then an int

    def visit(box: Box) -> Shape:
        for it in box.items:
            if isinstance(it, Box) and it.builtin is None:
                visit(it)
        lay = layout(graph, box, used)
        keys: list[Any] = []
        values: list[Value] = []
        names: list[str] = []
        offsets: list[int] = []
        for entry in lay.entries:
            offsets.append(len(values))
            if isinstance(entry.item, Box) and entry.item.builtin is not None:
                op, args = entry.item.builtin
                fixed = tuple(sorted((k, repr(v)) for k, v in args.items() if not (merge and _slot(v))))
                keys.append(("builtin", op, entry.name, entry.reads, fixed))
                for k, v in args.items():
                    if merge and _slot(v):
                        values.append((type(v).__name__, v))
                        names.append(PARAM_NAMES.get(k, k))
                continue
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
            for k in args:  # the op's own order: `conv(c, k=k, stride=stride)`
                if merge and _slot(args[k]):
                    values.append((type(args[k]).__name__, args[k]))
                    names.append(PARAM_NAMES.get(k, k))
        klass = graph.classes.get(box.path, "")
        entry_keys = [interned.setdefault(("entry", k), len(interned)) for k in keys]
        key = interned.setdefault((klass, len(box.inputs), tuple(entry_keys)), len(interned))
        shape = Shape(box, klass, lay, key, tuple(values), tuple(names), offsets, entry_keys)
        out[id(box)] = shape
        return shape

    visit(root)
    return out


