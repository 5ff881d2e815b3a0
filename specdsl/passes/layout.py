"""W302: a linear layer on a tensor with spatial axes, where the user most likely forgot `flatten`.

nn.Linear acts on the last axis, so on [C, H, W] it mixes the W positions, not the channels.
That is what a channels-last block means to do after `permute([0, 2, 3, 1])` (ConvNeXt), and a
mistake anywhere else. Whether a permute came first is a fact of the graph, not of one op's
shapes, so it is checked here: walking back from the linear through ops that keep the layout
(activations, dropout, layer norm, other linears), a permute must be found.
"""

from __future__ import annotations

from specdsl.errors import Diagnostic
from specdsl.ir import Graph
from specdsl.ops import OPS
from specdsl.ops.rule import Trait, fmt_shape
from specdsl.passes.diagnostics import located
from specdsl.passes.figures import NodeFigures


def linear_on_spatial_axes(graph: Graph, figures: list[NodeFigures]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for node in graph.nodes:
        if node.is_input or not OPS[node.op].has(Trait.LAST_AXIS) or figures[node.index].shape is None:
            continue
        x = figures[node.inputs[0]].shape
        if x is None or len(x) < 2 or _permuted(graph, node.inputs[0]):
            continue
        out.append(located(node, "W302", f"{node.op} acts on the last axis only: input {fmt_shape(x)} gives "
                           f"{fmt_shape(figures[node.index].shape or ())}",
                           "add `flatten` (or a global pool) before it to use every feature; for a "
                           "channels-last block, `permute([0, 2, 3, 1])` first", None, severity="warning"))
    return out


def _permuted(graph: Graph, index: int) -> bool:
    while True:
        node = graph.nodes[index]
        if node.is_input or not node.inputs:
            return False
        if OPS[node.op].has(Trait.REORDERS_AXES):
            return True
        if not OPS[node.op].has(Trait.KEEPS_LAYOUT):
            return False
        index = node.inputs[0]
