"""The module tree of a lifted graph: which container each node sits in, in the order a spec writes it.

A module node ``layer1.0.conv1`` is the child ``conv1`` of the container ``layer1.0``; a function
node (``torch.add`` called in ``layer1.0``'s forward) sits in ``layer1.0`` itself, as a layer with
no module of its own. Each container becomes one layer of its parent's body (a stage or a block
call), so its nodes must come out contiguous and in an order that respects the data flow; a
model whose forward interleaves two containers' calls is refused here, never reordered silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specdsl.lift.args import PART
from specdsl.lift.graph import LiftedGraph


class RecoveryError(Exception):
    """The lifted graph has a structure no spec can write (the message says which node and why)."""


class Unwritable(RecoveryError):
    """A container that cannot be one layer (a positional member read by name): recovery tries again
    with it flattened into its parent, its members named `convs.4.3`."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


# Classes that only hold layers; ModuleList and ModuleDict have no forward of their own: their
# members are called from their parent's, in any order, so they are written as the parent's
# layers named `convs.1` (a list of modules), never as one layer.
GENERIC = frozenset({"", "Sequential", "ModuleList", "ModuleDict", "stage"})
LISTS = frozenset({"ModuleList", "ModuleDict"})


@dataclass
class Box:
    """A container module: its path, and its items in order (node indices and child boxes)."""

    path: str
    items: list[int | Box] = field(default_factory=list)
    # Filled by ``finish``: the nodes outside the box its nodes read (in order of first use), the one
    # node of the box read outside it, and every node of the box's subtree in order.
    inputs: list[int] = field(default_factory=list)
    output: int = -1
    nodes: list[int] = field(default_factory=list)
    # A built-in block's call this container is (specdsl.lift.builtins): (block, arguments).
    builtin: tuple[str, dict[str, Any]] | None = None
    # Why no spec can write the box as one layer (read at more than its output), if it cannot.
    problem: str | None = None
    # The nodes read outside, in order, where that is not just its last node: a module whose forward
    # returns several tensors (HRNet's modules, DPN's dual-path blocks), written as a block with
    # `outputs [...]`; None: its output is its last node.
    outputs: list[int] | None = None
    key: str = ""                  # its name in the box it is written in (`layer1`, `convs.1`)
    parent: Box | None = None

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]


def parent_and_key(path: str) -> tuple[str, str]:
    parent, _, key = path.rpartition(".")
    return parent, key


def relative(path: str, base: str) -> str:
    return path[len(base) + 1:] if base else path


class _Flatten(Exception):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(why)
        self.path = path


def build_tree(graph: LiftedGraph, flatten: set[str] | None = None, several: bool = True) -> Box:
    """The root box, every node placed in the container its path names. Lists of modules, and plain
    containers whose members the forward calls out of turn (or reads inside), are flattened into
    their parent (`convs.1`); each such decision rebuilds the tree, at most once per container.
    ``flatten``: containers to flatten besides (those recovery found it cannot write whole).
    ``several``: a module read at several nodes stays one container with those outputs (else it is
    flattened too)."""
    flat = {path for path, klass in graph.classes.items() if path and klass in LISTS} | (flatten or set())
    while True:
        try:
            return _build(graph, flat, several)
        except _Flatten as exc:
            if exc.path in flat or not exc.path:
                raise RecoveryError(str(exc)) from None
            flat.add(exc.path)


def _build(graph: LiftedGraph, flat: set[str], several: bool) -> Box:
    root = Box("")
    boxes: dict[str, Box] = {"": root}

    def anchor(path: str) -> str:
        while path in flat:
            path = parent_and_key(path)[0]
        return path

    def box(path: str) -> Box:
        found = boxes.get(path)
        if found is None:
            parent = box(anchor(parent_and_key(path)[0]))
            found = boxes[path] = Box(path, key=relative(path, parent.path), parent=parent)
            parent.items.append(found)
        return found

    for i, node in enumerate(graph.nodes):
        if i == 0:
            continue
        container = parent_and_key(node.path)[0] if node.is_module else node.path
        box(anchor(container)).items.append(i)
    finish(root, graph, several)
    return root


def has_several(box: Box) -> bool:
    """Whether a container of the subtree returns several outputs (or one that is not its last node)."""
    return box.outputs is not None or any(has_several(it) for it in box.items if isinstance(it, Box))


def walk(box: Box) -> list[int]:
    """The subtree's nodes in the order the spec writes them."""
    out: list[int] = []
    for item in box.items:
        out.extend(walk(item) if isinstance(item, Box) else (item,))
    return out


def finish(root: Box, graph: LiftedGraph, several: bool = False) -> None:
    """Each box's inputs, output and nodes; RecoveryError where the writing order breaks the data flow
    or a box is read at more than one node."""
    order = walk(root)
    position = {n: k for k, n in enumerate(order)}
    owner = _owners(root)
    for n in order:
        for i in graph.nodes[n].inputs:
            if i != 0 and position[i] > position[n]:
                raise _Flatten(_apart(owner[n], owner[i]),
                               f"node {n} ({graph.nodes[n].path or '<root>'}: {graph.nodes[n].op}) reads node {i} "
                               f"({graph.nodes[i].path}), which its container's order puts after it: the "
                               "forward interleaves the calls of two modules")
    readers: list[list[int]] = [[] for _ in graph.nodes]
    for n, node in enumerate(graph.nodes):
        for i in node.inputs:
            readers[i].append(n)
    outputs = set(graph.outputs)
    _fill(root, graph, readers, outputs, several)
    if several:
        _order_outputs(root, graph)


def _fill(box: Box, graph: LiftedGraph, readers: list[list[int]], outputs: set[int], several: bool) -> None:
    for item in box.items:
        if isinstance(item, Box):
            _fill(item, graph, readers, outputs, several)
    _parts_at_readers(box, graph)
    box.nodes = walk(box)
    inside = set(box.nodes)
    seen: set[int] = set()
    for n in box.nodes:
        for i in graph.nodes[n].inputs:
            if i not in inside and i not in seen:
                seen.add(i)
                box.inputs.append(i)
    read_outside = [n for n in box.nodes if n in outputs or any(r not in inside for r in readers[n])]
    if box.path and (len(read_outside) > 1 or (read_outside and read_outside[0] != box.nodes[-1])):
        # Raised where the box is written as a layer: a built-in block around it may take it whole.
        shown = ", ".join(graph.nodes[n].path or str(n) for n in read_outside)
        box.problem = f"container '{box.path}' is read at more than its last node ({shown})"
        if not several or not _returns(graph, box, read_outside, outputs):
            raise _Flatten(box.path, box.problem)  # its members become its parent's
        box.outputs, box.problem = read_outside, None
    box.output = box.nodes[-1] if box.nodes else -1
    if box.outputs is not None and len(box.outputs) == 1:
        box.output = box.outputs[0]  # `outputs [@a]`: the call's one output is not its last node


def _parts_at_readers(box: Box, graph: LiftedGraph) -> None:
    """Each part of a split just before the first item that reads it, in the order that item reads: a
    spec makes part k of `s` where `@s.k` is first referred to (DPN slices one tensor twice, each slice
    a split and its part, before it reads either)."""
    parts = {it for it in box.items if isinstance(it, int) and graph.nodes[it].op == PART}
    if not parts:
        return
    read_here = {i for it in box.items for i in (it.inputs if isinstance(it, Box) else graph.nodes[it].inputs)}
    placed: set[int] = set()
    order: list[int | Box] = []
    for it in box.items:
        if isinstance(it, int) and it in parts:
            if it not in read_here:  # read outside the box only: where the capture had it
                order.append(it)
            continue
        for i in (it.inputs if isinstance(it, Box) else graph.nodes[it].inputs):
            if i in parts and i not in placed:
                placed.add(i)
                order.append(i)
        order.append(it)
    box.items = order


def _order_outputs(root: Box, graph: LiftedGraph) -> None:
    """Several outputs in the order the module returns them, where the graph shows it: the order in which
    the next module of its container reads them all (HRNet's next module, branch by branch), taken for
    every module of that class, so the copies of a run agree; else the order they are computed in. A
    container passing on its last member's outputs keeps that member's order."""
    orders: dict[str, list[int]] = {}  # class -> its outputs' positions (in computing order), as returned

    def learn(box: Box) -> None:
        for a, b in zip(box.items, box.items[1:]):
            if isinstance(a, Box) and isinstance(b, Box) and a.outputs is not None and len(a.outputs) > 1 \
                    and b.inputs != a.outputs and sorted(b.inputs) == sorted(a.outputs):
                # A module of unknown class (ONNX) is its own class: its order tells of no other.
                orders.setdefault(graph.classes.get(a.path, f"<{a.path}>"), [a.outputs.index(i) for i in b.inputs])
        for it in box.items:
            if isinstance(it, Box):
                learn(it)

    def apply(box: Box) -> None:
        for it in box.items:
            if isinstance(it, Box):
                apply(it)
        if box.outputs is None or len(box.outputs) < 2:
            return
        order = orders.get(graph.classes.get(box.path, f"<{box.path}>"))
        last = box.items[-1]
        if isinstance(last, Box) and last.outputs is not None and sorted(last.outputs) == sorted(box.outputs):
            box.outputs = list(last.outputs)
        elif order is not None and len(order) == len(box.outputs):
            box.outputs = [box.outputs[k] for k in order]

    learn(root)
    if orders:
        apply(root)


def _returns(graph: LiftedGraph, box: Box, read_outside: list[int], outputs: set[int]) -> bool:
    """Whether the box's forward returns the nodes read outside it (a block with `outputs [...]`): a module
    class of its own, or a plain container (nn.Sequential of HRNet's modules) passing on the outputs of
    its last member, which returns several (a container of unknown class, as ONNX files give, may be
    either). A plain container read in the middle is flattened instead, as are outputs of the model
    itself (the model names no block outputs)."""
    if any(n in outputs for n in read_outside):
        return False
    if graph.classes.get(box.path) not in GENERIC:  # None: a capture that records no classes (ONNX)
        return True
    last = box.items[-1] if box.items else None
    return isinstance(last, Box) and last.outputs is not None and last.outputs == read_outside


def _owners(root: Box) -> dict[int, Box]:
    out: dict[int, Box] = {}
    stack = [root]
    while stack:
        box = stack.pop()
        for it in box.items:
            if isinstance(it, Box):
                stack.append(it)
            else:
                out[it] = box
    return out


def _apart(a: Box, b: Box) -> str:
    """The outermost container of ``a`` that does not hold ``b`` (the one to flatten), else b's."""
    above_b: set[int] = set()
    x: Box | None = b
    while x is not None:
        above_b.add(id(x))
        x = x.parent
    chain: list[Box] = []
    x = a
    while x is not None and id(x) not in above_b:
        chain.append(x)
        x = x.parent
    if chain:
        return chain[-1].path
    y = b
    while y.parent is not None and y.parent is not a:
        y = y.parent
    return y.path
