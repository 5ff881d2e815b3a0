"""What a capture records that a spec has no node for: a merge of one tensor, a part taken twice.

torchvision's DenseNet concatenates a list of one tensor in each block's first layer
(`torch.cat([x], 1)`); a spec's merges take two inputs or more (OPS' min_inputs), and a merge of one
is its input. timm's Res2Net indexes a split's part 0 twice (`spx[0]`); a spec has one node per part
(`@s.0`). Such nodes are taken out, their readers reading the input (the first such part) instead,
before recovery.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from specdsl.lift.args import PART
from specdsl.lift.graph import LiftedGraph
from specdsl.ops import OPS


def without_identities(graph: LiftedGraph) -> LiftedGraph:
    """The graph with every merge of a single input removed (the same graph where there is none)."""
    keep: list[int] = []
    source: dict[int, int] = {}  # removed node -> the node it passes on
    parts: dict[tuple[tuple[int, ...], Any], int] = {}
    for i, node in enumerate(graph.nodes):
        rule = OPS.get(node.op)
        if i and rule is not None and rule.max_inputs is None and len(node.inputs) == 1 < rule.min_inputs:
            source[i] = source.get(node.inputs[0], node.inputs[0])
        elif node.op == PART and (node.inputs, node.args.get("index")) in parts:
            source[i] = parts[(node.inputs, node.args.get("index"))]
        else:
            if node.op == PART:
                parts[(node.inputs, node.args.get("index"))] = i
            keep.append(i)
    if not source:
        return graph
    index = {old: new for new, old in enumerate(keep)}

    def moved(i: int) -> int:
        return index[source.get(i, i)]

    nodes = [replace(graph.nodes[i], inputs=tuple(moved(j) for j in graph.nodes[i].inputs)) for i in keep]
    return replace(graph, nodes=nodes, outputs=tuple(moved(i) for i in graph.outputs))
