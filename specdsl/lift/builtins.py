"""Containers that are one of specdsl's built-in blocks, written as one call of it.

A DenseNet dense block (each layer reading the concatenation of all before it) has no other
spelling: a user block cannot take a growing number of inputs. Transitions and squeeze-and-
excitation are recognised too, so a model reads as the zoo's do. Each recogniser reads the
arguments of a call off the container's items by their module names (torchvision's, which the
built-ins reproduce), and the call is taken only where the block's own rule expands it to the
container's nodes: the same ops, arguments, data flow and module names. So what a built-in is
(which ops, in which order, with which fixed arguments) is written once, in its rule under
specdsl.blocks; the whole recovered spec is checked against the model afterwards as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from specdsl.blocks.engine import expand
from specdsl.blocks.registry import BLOCKS
from specdsl.blocks.transition import LAYERS as TRANSITION
from specdsl.errors import SpecError
from specdsl.lift.args import full_args, same_value
from specdsl.lift.compare import first_difference
from specdsl.lift.graph import LiftedGraph, LiftedNode
from specdsl.lift.tree import Box, relative
from specdsl.lift.write import NUMBERED
from specdsl.schema.document import validate_document

Call = tuple[str, dict[str, Any]]
CALL_NAME = "block"  # the call's layer name in the spec its rule is expanded in


def recognise(graph: LiftedGraph, root: Box) -> None:
    """Mark each container that is a built-in block's call (``box.builtin``), outermost first."""
    stack = [root]
    while stack:
        box = stack.pop()
        for recogniser in RECOGNISERS:
            call = recogniser(graph, box) if box.path and len(box.inputs) == 1 else None
            if call is not None:
                box.builtin = call
                break
        else:
            stack.extend(it for it in box.items if isinstance(it, Box))


def _leaves(graph: LiftedGraph, box: Box) -> dict[str, tuple[str, dict[str, Any]]] | None:
    """The container's items as {module name: (op, all arguments)}, or None where one is a container."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for it in box.items:
        if isinstance(it, Box):
            return None
        node = graph.nodes[it]
        key = node.path.rpartition(".")[2] if node.is_module else f"<{len(out)}>"
        out[key] = (node.op, full_args(node.op, node.args))
    return out


def expands_to(graph: LiftedGraph, box: Box, call: Call, channels: int = 8) -> bool:
    """Whether the built-in's rule expands ``call``, on an input of ``channels`` channels, to the
    container's nodes: the same ops, arguments (defaults filled in), data flow and names of the
    modules that hold tensors, relative to the container."""
    index = {box.inputs[0]: 0}
    nodes = [LiftedNode("input", {}, (), "", False)]
    for n in box.nodes:
        node = graph.nodes[n]
        if any(i not in index for i in node.inputs):
            return False  # reads a tensor from outside other than the container's input
        index[n] = len(nodes)
        path = CALL_NAME if node.path == box.path else f"{CALL_NAME}.{relative(node.path, box.path)}"
        nodes.append(replace(node, inputs=tuple(index[i] for i in node.inputs), path=path))
    op, args = call
    shape = (channels, *[8] * (len(graph.input_shape) - 1))  # any size: a block holds no shape math
    sub = LiftedGraph(CALL_NAME, shape, nodes, (len(nodes) - 1,))
    try:
        built = expand(validate_document({"model": CALL_NAME, "input": list(shape),
                                          "layers": [{op: args, "name": CALL_NAME}]}, None))
    except SpecError:
        return False  # arguments the rule refuses (an act that is no activation, a gate it has not)
    return first_difference(sub, built) is None


def _written(block: str, args: dict[str, Any]) -> Call:
    """The call as written: the arguments its rule's defaults fill in left out."""
    fields = BLOCKS[block].args.model_fields
    return block, {k: v for k, v in args.items()
                   if fields[k].is_required() or not same_value(v, fields[k].get_default(call_default_factory=True))}


def transition(graph: LiftedGraph, box: Box) -> Call | None:
    leaves = _leaves(graph, box)
    if leaves is None or list(leaves) != [name for name, _ in TRANSITION]:
        return None
    call: Call = ("transition", {"out": leaves["conv"][1]["out"]})
    return call if expands_to(graph, box, call) else None


def se(graph: LiftedGraph, box: Box) -> Call | None:
    """torchvision's SqueezeExcitation (and the zoo's `se`): its modules by name, then the product."""
    leaves = _leaves(graph, box)
    names = ["avgpool", "fc1", "activation", "fc2", "scale_activation"]
    if leaves is None or list(leaves)[:5] != names or len(leaves) != 6:
        return None
    fc1, fc2 = leaves["fc1"][1], leaves["fc2"][1]
    args: dict[str, Any] = {"channels": fc2["out"], "squeeze": fc1["out"], "act": leaves["activation"][0]}
    call = _written("se", {**args, "gate": leaves["scale_activation"][0]})
    return call if expands_to(graph, box, call, channels=fc2["out"]) else None


def dense(graph: LiftedGraph, box: Box) -> Call | None:
    """Layers (containers) each fed the concatenation of the block input and all earlier layers'
    outputs, then the concatenation of them all: torchvision's _DenseBlock, or the zoo's `dense`."""
    if len(box.items) < 2 or isinstance(box.items[-1], Box):
        return None
    holder = box.items[0]
    named = not (len(box.items) == 2 and isinstance(holder, Box) and holder.name == "dense")
    layers = box.items[:-1] if named else holder.items  # type: ignore[union-attr]
    cat = box.items[-1]
    if not all(isinstance(x, Box) for x in layers):
        return None
    boxes = [x for x in layers if isinstance(x, Box)]
    if graph.nodes[cat].inputs != (box.inputs[0], *(x.output for x in boxes)):
        return None
    keys = [x.key for x in boxes]
    if all(k == f"dense.{i}" for i, k in enumerate(keys)):  # the zoo's default names, dense.0, dense.1, ...
        named = False
    template = _template(keys) if named else None
    first = _leaves(graph, boxes[0])
    if first is None or (named and template is None):
        return None
    if "conv2" in first:
        growth = first["conv2"][1]["out"]
        bottleneck = first["conv1"][1]["out"] // growth if "conv1" in first else None
    elif "conv" in first:
        growth, bottleneck = first["conv"][1]["out"], None
    else:
        return None
    # A rate is the one float argument named p in a layer (the rule's dropout; checked by expanding).
    drops = [a["p"] for _, a in first.values() if isinstance(a.get("p"), float)]
    call = _written("dense", {"n": len(boxes), "growth": growth, "bottleneck": bottleneck,
                              "drop": drops[0] if len(drops) == 1 else 0.0, "layer_names": template})
    return call if expands_to(graph, box, call) else None


def _template(names: list[str]) -> str | None:
    """`denselayer{i + 1}` for denselayer1, denselayer2, ...; None where the names are not so numbered."""
    matches = [NUMBERED.fullmatch(n) for n in names]
    if any(m is None for m in matches):
        return None
    prefix, start = matches[0].group(1), int(matches[0].group(2))  # type: ignore[union-attr]
    if any(m.group(1) != prefix or m.group(2) != str(start + i) for i, m in enumerate(matches)):  # type: ignore[union-attr]
        return None
    return prefix + ("{i + " + str(start) + "}" if start else "{i}")


RECOGNISERS: tuple[Callable[[LiftedGraph, Box], Call | None], ...] = (dense, transition, se)
