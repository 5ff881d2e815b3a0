"""How one container's items are written: each item's name (`as NAME`) and where it reads from.

An item reads the item before it by the chain (`a -> b`, or the next line); any other input is a
reference (`[@x, @y] -> add`), so the item it names gets a name. A module's name is its attribute
(`conv1`), fixed by the model; a positional module (`features.3`) is written unnamed at that very
position, since unnamed layers are numbered as nn.Sequential's. Function calls (`torch.add`) have
no module, so they are named only when something refers to them, by their op (`add`, `add_1`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specdsl.blocks.names import IDENTIFIER
from specdsl.blocks.names import name_problem as module_name_problem
from specdsl.lift.args import PART, owns_tensors
from specdsl.lift.graph import LiftedGraph
from specdsl.lift.tree import Box, RecoveryError, Unwritable, relative

INPUT_NAMES = ("x", "y", "z")


@dataclass
class Entry:
    """One item of a container as written: a node or a child box, its name and its references."""

    item: int | Box
    name: str | None
    reads: tuple[str, ...] | None  # None: the chain (the previous item's output)
    output: int
    # Set where the item reads several tensors by the chain: the references its run's first copy reads
    # (the container's inputs), or () where the item can only be a later copy of a run.
    feed: tuple[str, ...] | None = None


@dataclass
class Layout:
    entries: list[Entry]
    input_names: tuple[str, ...]          # the block's inputs (`inputs(x, y)`), one per box input
    refs: dict[int, str] = field(default_factory=dict)  # node -> how this scope refers to it


def _key(graph: LiftedGraph, box: Box, item: int | Box) -> str | None:
    """The module name an item has in its container (`conv1`, `convs.1` in a list), or None for a
    function call."""
    if isinstance(item, Box):
        return item.key
    node = graph.nodes[item]
    return relative(node.path, box.path) if node.is_module else None


def name_problem(key: str) -> str | None:
    """Why ``key`` cannot name a layer: a module name, or a list's member (`convs.1`, `fuse_layers.0.1`)."""
    first, *rest = key.split(".")
    if any(not r.isdigit() for r in rest):
        return f"a member of a list is NAME.k with k a number, and '{key}' is none"
    return module_name_problem(first)


def _input_names(box: Box, taken: set[str]) -> tuple[str, ...]:
    names: list[str] = []
    for k in range(len(box.inputs)):
        name = INPUT_NAMES[k] if k < len(INPUT_NAMES) else f"x{k}"
        while name in taken:
            name += "_"
        names.append(name)
    return tuple(names)


def layout(graph: LiftedGraph, box: Box, used_paths: set[str]) -> Layout:
    """Names and references of ``box``'s items. ``used_paths``: module paths already written (a module
    called twice, as torchvision's shared `relu`, is written again unnamed: it owns no tensors)."""
    items = [it for it in box.items if isinstance(it, Box) or graph.nodes[it].op != PART]
    for it in items:
        if isinstance(it, Box) and it.problem is not None and it.builtin is None:
            raise RecoveryError(it.problem)
    keys: list[str | None] = []
    for it in items:
        key = _key(graph, box, it)
        path = it.path if isinstance(it, Box) else graph.nodes[it].path
        if key is not None and path in used_paths:
            if not isinstance(it, Box) and graph.weights and any(k.startswith(path + ".") for k in graph.weights):
                raise RecoveryError(f"module '{path}' is called twice and holds weights: a spec's layers "
                                    "share none")
            key = None
        elif key is not None:
            used_paths.add(path)
        keys.append(key)
    taken = {k for k in keys if k is not None}
    lay = Layout([], _input_names(box, taken))
    for k, i in enumerate(box.inputs):
        lay.refs.setdefault(i, "input" if k == 0 else lay.input_names[k])
    chains = _chains(graph, box, items, keys)
    referred = _referred(graph, box, items, keys, chains)
    for position, (it, key, chain) in enumerate(zip(items, keys, chains)):
        outs = outputs_of(it)
        reads = tuple(it.inputs) if isinstance(it, Box) else graph.nodes[it].inputs
        name = _name(graph, it, key, position, any(o in referred for o in outs), taken)
        if name is not None:
            for k, o in enumerate(outs):
                if o in referred:
                    lay.refs[o] = name if len(outs) == 1 else f"{name}.{k}"
        feed = tuple(lay.refs[i] for i in reads) if chain == INPUTS else () if chain == PREVIOUS else None
        lay.entries.append(Entry(it, name, None if chain else tuple(reads_as(lay, graph, reads)), outs[-1], feed))
    return lay


# How an item reads by the chain (else it names what it reads): the one output of the item before it
# (or the container's first input); all the inputs of the container, as the first of a run of calls
# with several outputs (`[@x, @y] -> hr2(18) x3`); all the outputs of the item before it, as a later
# copy of such a run.
ONE, INPUTS, PREVIOUS = "one", "inputs", "previous"


def outputs_of(item: int | Box) -> tuple[int, ...]:
    """The nodes an item gives its container: one, or a call's several outputs in order."""
    if isinstance(item, Box):
        return tuple(item.outputs) if item.outputs is not None and len(item.outputs) > 1 else (item.output,)
    return (item,)


def _chains(graph: LiftedGraph, box: Box, items: list[int | Box], keys: list[str | None]) -> list[str | None]:
    out: list[str | None] = []
    prev: tuple[int, ...] = (box.inputs[0] if box.inputs else 0,)
    for position, (it, key) in enumerate(zip(items, keys)):
        reads = tuple(it.inputs) if isinstance(it, Box) else graph.nodes[it].inputs
        several = isinstance(it, Box) and len(reads) > 1 and key is not None and key.isdigit()
        if reads == prev and len(prev) == 1:
            out.append(ONE)
        elif several and position == 0 and reads == tuple(box.inputs):
            out.append(INPUTS)
        elif several and reads == prev:
            out.append(PREVIOUS)
        else:
            out.append(None)
        prev = outputs_of(it)
    return out


def reads_as(lay: Layout, graph: LiftedGraph, reads: tuple[int, ...]) -> list[str]:
    out: list[str] = []
    for i in reads:
        node = graph.nodes[i]
        if i in lay.refs:  # a part that is this box's input is named as one (`input`), not by its split
            out.append(lay.refs[i])
        elif node.op == PART:
            out.append(f"{lay.refs[node.inputs[0]]}.{node.args['index']}")
        elif i == 0:
            out.append("input")
        else:
            raise RecoveryError(f"node {i} ({node.path}: {node.op}) is read where the spec cannot name it")
    return out


def _referred(graph: LiftedGraph, box: Box, items: list[int | Box], keys: list[str | None],
              chains: list[str | None]) -> set[int]:
    """The items' outputs read other than by the chain, and the container's declared outputs (produced
    by a named item: a positional one ends a run of calls, written whole by the container's caller):
    they need names."""
    referred: set[int] = set()
    for it, chain in zip(items, chains):
        if chain is None:
            for i in (tuple(it.inputs) if isinstance(it, Box) else graph.nodes[it].inputs):
                node = graph.nodes[i]
                referred.add(node.inputs[0] if node.op == PART else i)
    if box.outputs is not None:
        for it, key in zip(items, keys):
            if not (key is not None and key.isdigit()):
                referred.update(o for o in outputs_of(it) if o in box.outputs)
    return referred


def _name(graph: LiftedGraph, it: int | Box, key: str | None, position: int, referred: bool,
          taken: set[str]) -> str | None:
    where = it.path if isinstance(it, Box) else graph.nodes[it].path
    if key is not None and key.isdigit():
        if int(key) != position and not isinstance(it, Box) and not referred \
                and not owns_tensors(graph.nodes[it].op, graph.nodes[it].args):
            return None  # numbered otherwise among its siblings: no tensor's key changes
        container = where.rpartition(".")[0]
        if int(key) != position:
            raise Unwritable(f"module '{where}' is child {key} of its container, but other calls in "
                             f"that container's forward put it at position {position}", container)
        if referred:
            raise Unwritable(f"module '{where}' is read by a later layer of its own container, which "
                             "cannot name a positional module", container)
        return None
    if key is not None and "." in key and key.partition(".")[0].isdigit():
        container = where[:len(where) - len(key) - 1]  # a list of lists (`fuse_layers.0.1`) flattened once
        raise Unwritable(f"module '{where}' is a member of a list inside '{container}', which a spec "
                         "writes as its container's list", container)
    if key is not None:
        problem = name_problem(key)
        if problem is not None or (referred and not all(IDENTIFIER.fullmatch(k) or k.isdigit()
                                                        for k in key.split("."))):
            raise RecoveryError(f"module '{where}' cannot keep its name in a spec: {problem or 'not an identifier'}")
        return key
    if not referred:
        return None
    op = "block" if isinstance(it, Box) else graph.nodes[it].op
    name, k = op, 1
    while name in taken or name_problem(name) is not None:
        name, k = f"{op}_{k}", k + 1
    taken.add(name)
    return name
