"""Does a spec's graph equal the lifted graph it was recovered from? Node by node: op, arguments,
data flow, and the module name of every node that is a module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from specdsl.ir import Graph, module_name
from specdsl.lift.args import canonical, owns_tensors
from specdsl.lift.graph import LiftedGraph


def first_difference(lifted: LiftedGraph, graph: Graph, order: Sequence[int] | None = None) -> str | None:
    """None when they agree, else what differs at the first node that does. ``order`` maps the spec's
    node k to the lifted node it writes (the identity when recovery kept the capture's order).
    Module names are compared where they are state_dict keys: for modules that hold tensors."""
    if len(graph.nodes) != len(lifted.nodes):
        return f"the spec has {len(graph.nodes)} nodes, the model {len(lifted.nodes)}"
    order = list(order) if order is not None else list(range(len(lifted.nodes)))
    back = {lifted_index: k for k, lifted_index in enumerate(order)}
    seen: set[str] = set()
    for k, node in enumerate(graph.nodes):
        if k == 0:
            continue
        want = lifted.nodes[order[k]]
        where = f"node {order[k]} ({want.path or '<root>'}: {want.op})"
        if node.op != want.op:
            return f"{where}: the spec has op {node.op}"
        got_args = canonical(node.op, _plain(node.args))
        if got_args != canonical(want.op, want.args):
            return f"{where}: the spec has arguments {got_args}, the model {canonical(want.op, want.args)}"
        inputs = tuple(back[i] for i in want.inputs)
        if node.inputs != inputs:
            return f"{where}: the spec reads nodes {node.inputs}, the model {inputs}"
        if want.is_module and want.path not in seen and owns_tensors(want.op, want.args):
            seen.add(want.path)
            if module_name(node.path) != want.path:
                return f"{where}: the spec names its module '{module_name(node.path)}'"
    outputs = tuple(back[i] for i in lifted.outputs)
    if graph.output_nodes != outputs:
        return f"the spec returns nodes {graph.output_nodes}, the model {outputs}"
    return None


def _plain(args: Any) -> dict[str, Any]:
    return {} if args is None else args.model_dump(by_alias=True)
