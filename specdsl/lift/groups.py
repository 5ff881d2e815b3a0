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
    """A container's key and slot values, and what its layout says of its items.

    Its items are taken in *segments*: a named or referenced item alone, and a run of equal unnamed
    chained items (`unit(256) x5`) as one, whose slots are its count, the first copy's values and each
    value's step from copy to copy (`p=0.1 + 0.0125 * j`; None where there is one copy)."""

    box: Box
    klass: str
    lay: Layout
    key: int                            # interned: equal keys, equal structure
    values: tuple[Value | None, ...]
    slot_names: tuple[str, ...]
    offsets: list[int]                  # each segment's first slot
    entry_keys: list[int] = field(default_factory=list)   # each segment's key, interned
    first: list[int] = field(default_factory=list)        # each segment's first item
    copy_width: list[int | None] = field(default_factory=list)  # a run's slots per copy; None: no run
    _entries: list[Any] = field(default_factory=list, repr=False)

    @property
    def entries(self) -> list[Any]:
        """Each segment's first item (built once: the writer asks for it at every segment)."""
        if len(self._entries) != len(self.first):
            self._entries = [self.lay.entries[k] for k in self.first]
        return self._entries


def _slot(v: Any) -> bool:
    return isinstance(v, (int, float))


def _numbers(v: Any) -> bool:
    """A list of numbers (a split's sizes, a per-axis kernel): each number is a slot of its own."""
    return isinstance(v, (list, tuple)) and bool(v) and all(_slot(x) for x in v)


def _item(graph: LiftedGraph, entry: Any, out: dict[int, Shape],
          merge: bool) -> tuple[Any, list[Value | None], list[str]]:
    """An item's key, slot values and slot names."""
    values: list[Value | None] = []
    names: list[str] = []
    if isinstance(entry.item, Box) and entry.item.builtin is None:
        child = out[id(entry.item)]
        return ("box", child.klass, child.key, entry.name, entry.reads), list(child.values), list(child.slot_names)
    if isinstance(entry.item, Box) and entry.item.builtin is not None:
        op, args = entry.item.builtin
        head: tuple[Any, ...] = ("builtin", op)
    else:
        assert isinstance(entry.item, int)
        op, head = graph.nodes[entry.item].op, ()
        args = full_args(op, graph.nodes[entry.item].args)
    fixed = tuple(sorted((k, repr(v) if not (merge and _numbers(v)) else len(v))
                         for k, v in args.items() if not (merge and _slot(v))))
    # Which arguments are slots is structure too: a built-in call leaves out the arguments equal to
    # its rule's defaults, so `dense(n, growth, drop)` and `dense(n, growth)` hold different slots
    # and are no copies of one another (nor instances of one block).
    slots = tuple(k for k, v in args.items() if merge and _slot(v))
    for k, v in args.items():  # the op's own order: `conv(c, k=k, stride=stride)`
        if merge and _slot(v):
            values.append((type(v).__name__, v))
            names.append(PARAM_NAMES.get(k, k))
        elif merge and _numbers(v):
            values.extend((type(x).__name__, x) for x in v)
            names.extend([PARAM_NAMES.get(k, k)] * len(v))
    return (*head, op, entry.name, entry.reads, fixed, slots), values, names


def _step(copies: list[list[Value | None]]) -> list[Value | None] | None:
    """Each slot's step where the copies differ only in floats that rise evenly (stochastic depth's
    rate, block by block), else None."""
    steps: list[Value | None] = []
    for slot in zip(*copies):
        if all(v is None for v in slot):
            steps.append(None)
            continue
        if any(v is None for v in slot):
            return None
        kinds = {kind for kind, _ in slot}
        if len(kinds) != 1:
            return None
        kind = kinds.pop()
        values = [v for _, v in slot]
        if kind != "float":  # widths, kernels, strides: equal in every copy (two convs are no progression)
            if len(set(values)) != 1:
                return None
            steps.append(None)
            continue
        d = float(f"{values[1] - values[0]:.12g}")
        if any(abs(v - (values[0] + k * d)) > 1e-9 * max(1.0, abs(v)) for k, v in enumerate(values)):
            return None
        steps.append((kind, d))
    return steps


def shapes(graph: LiftedGraph, root: Box, merge: bool) -> dict[int, Shape]:
    """Every container's shape, by id(box), bottom-up."""
    out: dict[int, Shape] = {}
    used: set[str] = set()
    interned: dict[tuple[Any, ...], int] = {}  # keys nest: each is hashed once, then an int

    def visit(box: Box) -> None:
        for it in box.items:
            if isinstance(it, Box) and it.builtin is None:
                visit(it)
        lay = layout(graph, box, used)
        items = [_item(graph, entry, out, merge) for entry in lay.entries]
        shape = Shape(box, graph.classes.get(box.path, ""), lay, 0, (), (), [])
        values: list[Value | None] = []
        names: list[str] = []
        i = 0
        while i < len(items):
            key, first_values, first_names = items[i]
            shape.offsets.append(len(values))
            shape.first.append(i)
            runnable = merge and lay.entries[i].name is None and lay.entries[i].reads is None
            m, steps = 1, None
            while runnable and i + m < len(items) and items[i + m][0] == key and lay.entries[i + m].name is None \
                    and lay.entries[i + m].reads is None:
                found = _step([items[k][1] for k in range(i, i + m + 1)])
                if found is None:
                    break
                m, steps = m + 1, found
            if runnable:
                shape.copy_width.append(len(first_values))
                values.extend([("int", m), *first_values, *(steps or [None] * len(first_values))])
                names.extend(["n", *first_names, *(f"{n}_step" for n in first_names)])
            else:
                shape.copy_width.append(None)
                values.extend(first_values)
                names.extend(first_names)
            shape.entry_keys.append(interned.setdefault(("run" if runnable else "entry", key), len(interned)))
            i += m
        shape.key = interned.setdefault((shape.klass, len(box.inputs), tuple(shape.entry_keys)), len(interned))
        shape.values, shape.slot_names = tuple(values), tuple(names)
        out[id(box)] = shape

    visit(root)
    return out
