"""A zoo model's graph as a capture would hand it over: the oracle for structure recovery.

``lifted(graph)`` turns an expanded specdsl Graph into a LiftedGraph the way a torch capture does:
plain argument dicts, a module node's path its module name, a function call's path the container
whose forward makes it, the module classes from the block each container is a call of. Recovering
a spec from it and loading that spec must give the graph back, node for node.
"""

from __future__ import annotations

from typing import Any

from specdsl.backends.torch.lowering_types import FunctionLowering
from specdsl.backends.torch.lowerings import LOWERINGS
from specdsl.ir import Graph, module_name
from specdsl.lift.graph import LiftedGraph, LiftedNode


def is_module(op: str) -> bool:
    """Whether to_torch gives the op a module (or a parameter of its container) of its own."""
    return op != "input" and not isinstance(LOWERINGS[op], FunctionLowering)


def lifted(graph: Graph) -> LiftedGraph:
    nodes: list[LiftedNode] = []
    for node in graph.nodes:
        if node.op == "input":
            nodes.append(LiftedNode("input", {}, (), "", False))
            continue
        args: dict[str, Any] = {} if node.args is None else node.args.model_dump(by_alias=True, exclude_defaults=True)
        name = module_name(node.path)
        module = is_module(node.op)
        if not module:
            # A function call sits in the container whose forward makes it; a split's part in its split's.
            source = graph.nodes[node.inputs[0]] if node.op == "part" else node
            name = module_name(source.path).rpartition(".")[0]
        nodes.append(LiftedNode(node.op, args, node.inputs, name, module, origin=f"specdsl {node.op}"))
    classes = {module_name(path): block for path, block in graph.blocks.items()}
    return LiftedGraph(graph.model, tuple(graph.input_shape), nodes, graph.output_nodes, classes, dtype=graph.dtype)
