"""Containers that are one of specdsl's built-in blocks, written as one call of it.

A DenseNet dense block (each layer reading the concatenation of all before it) has no other
spelling: a user block cannot take a growing number of inputs. Transitions and squeeze-and-
excitation are recognised too, so a model reads as the zoo's do. Each recogniser reads the
container's items by their module names (torchvision's, which the built-ins reproduce) and proposes
a call; the whole recovered spec is then checked against the model, and recovery falls back to
plain blocks where a proposal was wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from specdsl.blocks.transition import LAYERS as TRANSITION
from specdsl.lift.args import full_args
from specdsl.lift.graph import LiftedGraph
from specdsl.lift.tree import Box
from specdsl.lift.write import NUMBERED

Call = tuple[str, dict[str, Any]]
GATES = ("sigmoid", "hardsigmoid")


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


def _chain(graph: LiftedGraph, box: Box) -> bool:
    """Whether each item reads the one before it (the first, the container's input)."""
    prev = box.inputs[0]
    for it in box.items:
        if isinstance(it, Box) or graph.nodes[it].inputs != (prev,):
            return False
        prev = it
    return True


def transition(graph: LiftedGraph, box: Box) -> Call | None:
    leaves = _leaves(graph, box)
    if leaves is None or list(leaves) != [name for name, _ in TRANSITION] or not _chain(graph, box):
        return None
    conv, pool = leaves["conv"][1], leaves["pool"][1]
    if [op for op, _ in leaves.values()] != [op for _, op in TRANSITION] or leaves["norm"][1] != \
            full_args(TRANSITION[0][1], {}) or conv != full_args("conv", {"out": conv["out"], "k": 1, "bias": False}) \
            or pool != full_args("avgpool", {"k": 2, "stride": 2}):
        return None
    return "transition", {"out": conv["out"]}


def se(graph: LiftedGraph, box: Box) -> Call | None:
    leaves = _leaves(graph, box)
    names = ["avgpool", "fc1", "activation", "fc2", "scale_activation"]
    if leaves is None or list(leaves)[:5] != names or len(leaves) != 6:
        return None
    ops = [op for op, _ in leaves.values()]
    if ops[0] != "gap" or ops[1] != "conv" or ops[3] != "conv" or ops[4] not in GATES or ops[5] != "mul":
        return None
    fc1, fc2 = leaves["fc1"][1], leaves["fc2"][1]
    if fc1 != full_args("conv", {"out": fc1["out"], "k": 1}) or fc2 != full_args("conv", {"out": fc2["out"], "k": 1}):
        return None
    *chain, scale = box.items
    if not isinstance(scale, int) or graph.nodes[scale].inputs != (box.inputs[0], chain[-1]) \
            or not _chain(graph, Box(box.path, chain, box.inputs)):
        return None
    args: dict[str, Any] = {"channels": fc2["out"], "squeeze": fc1["out"], "act": ops[2]}
    return "se", {**args, "gate": ops[4]} if ops[4] != "sigmoid" else args


def dense(graph: LiftedGraph, box: Box) -> Call | None:
    """Layers (containers) each fed the concatenation of the block input and all earlier layers'
    outputs, then the concatenation of them all: torchvision's _DenseBlock, or the zoo's `dense`."""
    if len(box.items) < 2 or isinstance(box.items[-1], Box):
        return None
    holder = box.items[0]
    named = not (len(box.items) == 2 and isinstance(holder, Box) and holder.name == "dense")
    layers = box.items[:-1] if named else holder.items  # type: ignore[union-attr]
    cat = box.items[-1]
    if graph.nodes[cat].op != "concat" or not all(isinstance(x, Box) for x in layers):
        return None
    boxes = [x for x in layers if isinstance(x, Box)]
    if graph.nodes[cat].inputs != (box.inputs[0], *(x.output for x in boxes)) \
            or full_args("concat", graph.nodes[cat].args)["dim"] != 1:
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
    args: dict[str, Any] = {"n": len(boxes), "growth": growth}
    if bottleneck != 4:
        args["bottleneck"] = bottleneck
    drops = [a["p"] for op, a in first.values() if op == "dropout"]
    if drops:
        args["drop"] = drops[0]
    if template is not None:
        args["layer_names"] = template
    return "dense", args


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
