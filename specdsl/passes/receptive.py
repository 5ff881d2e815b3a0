"""The receptive-field pass: each node's size, effective stride and padding per spatial axis.

Computed from the shape pass's attrs by each op's ``rf`` rule. The expander runs
it node by node as it builds, next to the shape pass (a projection shortcut
matches the body's effective stride), and hands the results on to the figures
and alignment passes.
"""

from __future__ import annotations

from collections.abc import Sequence

from specdsl.ir import Graph, Node
from specdsl.ops import OPS
from specdsl.ops.rule import RF, AxisRF, Shape
from specdsl.passes.shapes import NodeShape


def input_rf(shape: Shape) -> RF:
    """The model input: every element sees itself."""
    if len(shape) < 2:
        return None
    return tuple(AxisRF(1, 1, 0) for _ in shape[1:])


def node_rf(node: Node, shape: NodeShape, rfs: Sequence[RF]) -> RF:
    """One node's receptive field from its inputs' (already computed); None where its shape failed."""
    if shape.shape is None:
        return None
    if node.is_input:
        return input_rf(shape.shape)
    return OPS[node.op].rf(shape.attrs, [rfs[i] for i in node.inputs])


def receptive_fields(graph: Graph, shapes: Sequence[NodeShape]) -> list[RF]:
    """The receptive-field pass over a whole graph."""
    rfs: list[RF] = []
    for node, s in zip(graph.nodes, shapes, strict=True):
        rfs.append(node_rf(node, s, rfs))
    return rfs
