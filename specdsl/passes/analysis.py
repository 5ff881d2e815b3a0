"""Static analysis: the shape, receptive-field, figures and alignment passes chained, and their report.

Problems are collected, not raised, so one run reports them all: each node's
shape diagnostics, then its alignment warning, in topological order.
"""

from __future__ import annotations

from dataclasses import dataclass

from specdsl.errors import Diagnostic
from specdsl.ir import Graph
from specdsl.ops.rule import RF
from specdsl.passes.alignment import misaligned
from specdsl.passes.diagnostics import dedupe, located
from specdsl.passes.figures import NodeFigures, Totals, node_figures, totals
from specdsl.passes.layout import linear_on_spatial_axes
from specdsl.passes.receptive import receptive_fields
from specdsl.passes.shapes import NodeShape, infer_shapes

__all__ = ["Analysis", "NodeFigures", "Totals", "analyze"]


@dataclass
class Analysis:
    figures: list[NodeFigures]
    totals: Totals
    diagnostics: list[Diagnostic]


def analyze(graph: Graph, batch: int = 1, shapes: list[NodeShape] | None = None,
            rfs: list[RF] | None = None, warnings: bool = True) -> Analysis:
    """Every node's figures, the totals and the diagnostics.

    ``shapes`` and ``rfs``: the shape and receptive-field passes' results for this graph (the
    expander's, as it built it); without them those passes run here first. ``warnings=False``
    skips the passes that only warn (alignment, layout): a sweep keeps errors alone.
    """
    if shapes is None:
        shapes = infer_shapes(graph)
        rfs = None
    if rfs is None:
        rfs = receptive_fields(graph, shapes)
    figures = node_figures(graph, shapes, rfs)
    found = misaligned(graph, figures) if warnings else {}
    diags: list[Diagnostic] = []
    for node, s in zip(graph.nodes, shapes):
        diags.extend(s.diagnostics)
        if node.index in found:
            diags.append(found[node.index])
    if warnings:
        diags.extend(linear_on_spatial_axes(graph, figures))
    for index in graph.output_nodes:
        output = graph.nodes[index]
        if shapes[index].parts is not None:
            diags.append(located(output, "E345", f"the model ends in a {output.op} with "
                                 f"{len(shapes[index].parts or ())} parts; each output is one tensor",
                                 "end with one part (`@s.0`) or merge the parts (`[@s.0, @s.1] -> concat`)", None))
    return Analysis(figures, totals(graph, figures, batch), dedupe(diags))
