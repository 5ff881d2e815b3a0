"""The calls of user blocks as the code generator sees them, before any class is written.

A call becomes an :class:`Instance`: its own nodes, the calls nested in it, and both in
execution order. A value is referred to in the call's own terms (:func:`ref`: its k-th node,
a nested call, its k-th input), so two calls of one block can be compared item by item, and
a call's inputs get the names its class's constructor takes (:func:`channel_name`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from specdsl.backends.naming import module_path
from specdsl.backends.torch.emit_text import inside, safe_ident
from specdsl.ir import BlockCall, Graph, Node


@dataclass(eq=False)
class Instance:
    """One call of a user block, seen from the code generator."""

    path: str
    call: BlockCall
    nodes: list[Node]  # its own nodes, nested calls' nodes excluded
    nested: list[Instance]
    items: list[Any]  # nodes and nested instances in execution order

    @functools.cached_property
    def pos(self) -> dict[int, int]:
        """Node index -> position among this call's own nodes (how a variant refers to its nodes)."""
        return {n.index: k for k, n in enumerate(self.nodes)}


def instances(graph: Graph, parent: str, nodes: list[Node]) -> list[Instance]:
    """The outermost calls under ``parent`` ('' for the model) among ``nodes``, each with its nested calls."""
    calls = sorted((p for p in graph.calls if (not parent or inside(p, parent))
                    and not any(inside(p, q) for q in graph.calls if q != p and (not parent or
                                                                              inside(q, parent)))),
                   key=lambda p: min((n.index for n in nodes if inside(n.path, p)), default=0))
    out = []
    for path in calls:
        mine = [n for n in nodes if inside(n.path, path)]
        nested = instances(graph, path, mine)
        own = [n for n in mine if not any(inside(n.path, q.path) for q in nested)]
        items: list[Any] = []
        seen: set[str] = set()
        for n in mine:
            owner = next((q for q in nested if inside(n.path, q.path)), None)
            if owner is None:
                items.append(n)
            elif owner.path not in seen:
                seen.add(owner.path)
                items.append(owner)
        out.append(Instance(path, graph.calls[path], own, nested, items))
    return out


def refs(inputs: tuple[int, ...], inst: Instance) -> tuple[Any, ...]:
    return tuple(ref(i, inst) for i in inputs)


def ref(index: int, inst: Instance) -> Any:
    """Node ``index`` in ``inst``'s own terms: its k-th node, a nested call's output, or its k-th input."""
    if index in inst.pos:
        return ("node", inst.pos[index])
    for q in inst.nested:
        rel = module_path(q.path)[len(module_path(inst.path)) + 1:]
        if index in q.call.outputs and index not in q.call.inputs:
            return ("call", rel, q.call.outputs.index(index))  # output k of a call with several
        # A call whose layers are all switched off passes its input through: that node is the input's.
        if q.call.output == index and index not in q.call.inputs:
            return ("call", rel)
    if index in inst.call.inputs:
        return ("in", inst.call.inputs.index(index))
    return ("outside", index)  # pragma: no cover - names are scoped to their block


def channel_name(call: BlockCall, k: int) -> str:
    """The constructor parameter holding the channel count of the call's ``k``-th input."""
    name = call.input_names[k] if k < len(call.input_names) else f"input{k}"
    return "in_channels" if k == 0 else f"{name}_channels" if safe_ident(name) else f"in{k}_channels"


def nested_input_index(inst: Instance, key: str) -> int:
    """Which input of ``inst`` the constructor parameter ``key`` counts the channels of (0 if none)."""
    for k in range(len(inst.call.inputs)):
        if channel_name(inst.call, k) == key:
            return k
    return 0


def _parts(inst: Instance) -> set[str]:
    """The first path segments under a call (``body``, ``shortcut``, ``post``): what its class holds."""
    out = set()
    for item in inst.items:
        rest = item.path[len(inst.path):].lstrip(".")
        head = re.split(r"[.\[]", rest, maxsplit=1)[0]
        if head:
            out.add(head)
    return out


def difference(first: Instance, other: Instance) -> str:
    """A class-name suffix saying what a variant has that the first does not (``Shortcut``), or ''."""
    extra = sorted(_parts(other) - _parts(first))
    missing = sorted(_parts(first) - _parts(other))
    words = [f"With{w.title().replace('_', '')}" for w in extra] or [f"No{w.title().replace('_', '')}" for w in missing]
    text = "".join(words)
    return text if text.isidentifier() else ""


def fresh(used: set[str], preferred: str | None = None) -> str:
    """A new variable name for a forward: ``preferred`` (a name the spec gave) if free, else h1, h2, ...."""
    if preferred and safe_ident(preferred) and preferred not in used and not re.fullmatch(r"h\d+", preferred):
        used.add(preferred)
        return preferred
    k = 1
    while f"h{k}" in used:
        k += 1
    used.add(f"h{k}")
    return f"h{k}"
