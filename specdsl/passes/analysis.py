"""Static analysis: the shape, receptive-field, figures and alignment passes chained, and their report.

Problems are collected, not raised, so one run reports them all: each node's
shape diagnostics, then its alignment warning, in topological order.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

from specdsl.errors import Diagnostic
from specdsl.ir import Graph
from specdsl.ops.rule import RF
from specdsl.passes.alignment import misaligned
from specdsl.passes.diagnostics import dedupe, located
from specdsl.passes.figures import NodeFigures, Numbers, Totals, figures_of, node_figures, numbers_of, totals, totals_of
from specdsl.passes.layout import linear_on_spatial_axes
from specdsl.passes.receptive import receptive_fields
from specdsl.passes.shapes import NodeShape, infer_shapes

__all__ = ["Analysis", "FigureCache", "NodeFigures", "Totals", "analyze"]

@dataclass
class FigureCache:
    """A sweep's node figures by shape-pass result. A NodeShape is shared between graphs only by the
    sweep's memo (specdsl.blocks.memo), which replays it for the same op, arguments and inputs' shapes,
    so a replayed node's figures but its receptive field (which follows its inputs') are the first's.
    Only the results in ``shared`` (ids of those the memo holds, so no id is reused) are kept."""

    shared: Container[int]
    figures: dict[int, tuple[NodeShape, str, bool, NodeFigures]] = field(default_factory=dict)
    numbers: dict[int, tuple[NodeShape, str, bool, Numbers]] = field(default_factory=dict)  # for totals alone


@dataclass
class Analysis:
    figures: list[NodeFigures]
    totals: Totals
    diagnostics: list[Diagnostic]


def analyze(graph: Graph, batch: int = 1, shapes: list[NodeShape] | None = None,
            rfs: list[RF] | None = None, warnings: bool = True, cache: FigureCache | None = None,
            per_node: bool = True) -> Analysis:
    """Every node's figures, the totals and the diagnostics.

    ``shapes`` and ``rfs``: the shape and receptive-field passes' results for this graph (the
    expander's, as it built it); without them those passes run here first. ``warnings=False``
    skips the passes that only warn (alignment, layout): a sweep keeps errors alone, and passes a
    ``cache`` its points share. ``per_node=False`` (with ``warnings=False``): the totals and
    diagnostics alone, ``Analysis.figures`` empty (a sweep point whose figures are its totals).
    """
    if shapes is None:
        shapes = infer_shapes(graph)
        rfs = None
    if rfs is None:
        rfs = receptive_fields(graph, shapes)
    if per_node or warnings:
        figures = node_figures(graph, shapes, rfs) if cache is None else _figures(graph, shapes, rfs, cache)
        total = totals(graph, figures, batch)
    else:
        figures = []
        total = totals_of(graph, _numbers(graph, shapes, cache), rfs, batch)
    found = misaligned(graph, figures) if warnings else {}
    diags: list[Diagnostic] = []
    for node, s in zip(graph.nodes, shapes):
        if s.diagnostics:
            diags.extend(s.diagnostics)
        if found and node.index in found:
            diags.append(found[node.index])
    if warnings:
        diags.extend(linear_on_spatial_axes(graph, figures))
    for index in graph.output_nodes:
        output = graph.nodes[index]
        if shapes[index].parts is not None:
            diags.append(located(output, "E345", f"the model ends in a {output.op} with "
                                 f"{len(shapes[index].parts or ())} parts; each output is one tensor",
                                 "end with one part (`@s.0`) or merge the parts (`[@s.0, @s.1] -> concat`)", None))
    return Analysis(figures, total, dedupe(diags))


def _numbers(graph: Graph, shapes: list[NodeShape], cache: FigureCache | None) -> list[Numbers]:
    """Each node's numbers for the totals; a shape-pass result the sweep's memo shares is computed once."""
    if cache is None:
        return [numbers_of(figures_of(node, s, None, shapes)) for node, s in zip(graph.nodes, shapes, strict=True)]
    out = []
    known = cache.numbers
    for node, s in zip(graph.nodes, shapes, strict=True):
        hit = known.get(id(s))
        if hit is not None and hit[0] is s and hit[1] == node.op and hit[2] == node.frozen:
            out.append(hit[3])
            continue
        n = numbers_of(figures_of(node, s, None, shapes))  # the field is no figure these numbers hold
        if id(s) in cache.shared:
            known[id(s)] = (s, node.op, node.frozen, n)
        out.append(n)
    return out


def _figures(graph: Graph, shapes: list[NodeShape], rfs: list[RF], cache: FigureCache) -> list[NodeFigures]:
    out = []
    for node, s, rf in zip(graph.nodes, shapes, rfs, strict=True):
        hit = cache.figures.get(id(s))
        if hit is not None and hit[0] is s and hit[1] == node.op and hit[2] == node.frozen:
            f = hit[3]
            if f.rf is not rf:  # the same fields (from the memo's) share the figures, never changed after
                f = NodeFigures(f.shape, f.attrs, f.weights, f.trainable, f.frozen, f.buffers, f.int64_buffers,
                                f.macs, f.extra_ops, rf, f.failed)
            out.append(f)
            continue
        f = figures_of(node, s, rf, shapes)
        if id(s) in cache.shared:
            cache.figures[id(s)] = (s, node.op, node.frozen, f)
        out.append(f)
    return out
