"""The figures pass: parameters, buffers, MACs and extra ops of every node from the shape
pass's shapes and attrs, gathered with its receptive field; then the model's totals and memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from specdsl.ir import DTYPES, INPUT, Graph, Node
from specdsl.ops import OPS
from specdsl.ops.rule import RF, Shape, TensorSpec, Trait, numel
from specdsl.passes.shapes import NodeShape


@dataclass(slots=True)
class NodeFigures:
    shape: Shape | None = None
    # The op's typed attrs (see specdsl.ops.rule.Inferred); None for the input and failed nodes.
    attrs: Any = None
    weights: tuple[TensorSpec, ...] = ()
    trainable: int = 0
    frozen: int = 0
    buffers: int = 0
    int64_buffers: int = 0  # elements of buffers stored as int64 whatever the model dtype
    macs: int = 0
    extra_ops: int = 0
    rf: RF = None
    failed: bool = False

    @property
    def params(self) -> int:
        return self.trainable + self.frozen


@dataclass
class Totals:
    params: int
    trainable: int
    frozen: int
    buffers: int
    macs: int
    flops: int
    extra_ops: int
    activation_elements: int
    activation_bytes: int
    param_bytes: int
    buffer_bytes: int
    input_bytes: int
    peak_bytes: int
    batch: int
    dtype: str
    rf_node: int | None


def node_figures(graph: Graph, shapes: Sequence[NodeShape], rfs: Sequence[RF]) -> list[NodeFigures]:
    """Every node's figures from the shape and receptive-field passes' results (one per node, same order)."""
    return [figures_of(node, s, rf, shapes) for node, s, rf in zip(graph.nodes, shapes, rfs, strict=True)]


def figures_of(node: Node, s: NodeShape, rf: RF, shapes: Sequence[NodeShape]) -> NodeFigures:
    """One node's figures (``shapes``: every node's, for its inputs')."""
    shape = s.shape
    if shape is None:
        return NodeFigures(failed=s.failed)
    if node.is_input:
        return NodeFigures(shape, rf=rf)
    rule = OPS[node.op]
    attrs = s.attrs
    # A node whose shape was inferred has inputs whose shapes were.
    in_shapes = cast(list[Shape], [shapes[i].shape for i in node.inputs])
    weights = rule.weights(attrs)
    trainable = buffers = int64_buffers = 0
    for w in weights:
        if w.role == "parameter":
            trainable += w.numel
        elif w.role == "buffer":
            buffers += w.numel
            if w.dtype == "int64":
                int64_buffers += w.numel
    return NodeFigures(
        shape, attrs, weights,
        trainable=0 if node.frozen else trainable,
        frozen=trainable if node.frozen else 0,
        buffers=buffers,
        int64_buffers=int64_buffers,
        macs=rule.macs(attrs, in_shapes, shape),
        extra_ops=rule.extra(attrs, in_shapes, shape),
        rf=rf,
    )


# A node's numbers the totals add up: trainable, frozen, buffers, int64 buffers, MACs, extra ops, the
# elements of its output (None where its shape failed).
Numbers = tuple[int, int, int, int, int, int, "int | None"]


def numbers_of(f: NodeFigures) -> Numbers:
    return (f.trainable, f.frozen, f.buffers, f.int64_buffers, f.macs, f.extra_ops,
            None if f.shape is None else numel(f.shape))


def totals(graph: Graph, figures: list[NodeFigures], batch: int) -> Totals:
    return totals_of(graph, [numbers_of(f) for f in figures], [f.rf for f in figures], batch)


def totals_of(graph: Graph, numbers: Sequence[Numbers], rfs: Sequence[RF], batch: int) -> Totals:
    """The model's totals from each node's numbers and receptive field (one per node, same order)."""
    width = DTYPES[graph.dtype]
    views = _views(graph)
    trainable = frozen = buffers = counters = macs = extra_ops = 0
    sizes: list[int] = []
    rf_node = None
    # One pass (a sweep analyses hundreds of nodes per point): the sums, each tensor's size, the last field.
    for node, (t, fz, b, i64, m, x, elements), rf, view in zip(graph.nodes, numbers, rfs, views):
        trainable += t
        frozen += fz
        buffers += b
        counters += i64
        macs += m
        extra_ops += x
        sizes.append(elements * batch if elements is not None and view is None else 0)
        if rf is not None and node.op != INPUT:
            rf_node = node.index
    activations = sum(sizes) - sizes[0]
    return Totals(
        params=trainable + frozen,
        trainable=trainable,
        frozen=frozen,
        buffers=buffers,
        macs=macs,
        flops=2 * macs,
        extra_ops=extra_ops,
        activation_elements=activations,
        activation_bytes=activations * width,
        param_bytes=(trainable + frozen) * width,
        # num_batches_tracked is int64; the running stats follow the model dtype.
        buffer_bytes=(buffers - counters) * width + counters * 8,
        input_bytes=sizes[0] * width,
        peak_bytes=_peak_bytes(graph, sizes, views) * width,
        batch=batch,
        dtype=graph.dtype,
        rf_node=rf_node,
    )


def _views(graph: Graph) -> list[int | None]:
    """For each node whose output is a view (split, chunk, part), the node that owns its storage."""
    base: list[int | None] = [None] * len(graph.nodes)
    is_view: dict[str, bool] = {}  # per op, asked of its rule once per graph
    for node in graph.nodes[1:]:
        view = is_view.get(node.op)
        if view is None:
            view = is_view[node.op] = OPS[node.op].has(Trait.VIEW)
        if view:
            producer = node.inputs[0]
            base[node.index] = producer if base[producer] is None else base[producer]
    return base


def _peak_bytes(graph: Graph, sizes: list[int], views: list[int | None]) -> int:
    """Peak live activation memory in inference order, freeing each tensor after its last use
    (a view's use is a use of the tensor it looks into)."""
    n = len(graph.nodes)
    last_use = list(range(n))
    for node in graph.nodes:
        k = node.index
        for i in node.inputs:
            owner = views[i]
            # Nodes come in index order: the latest use so far is the last one.
            last_use[i if owner is None else owner] = k
    for out in graph.output_nodes:
        owner = views[out]
        last_use[out if owner is None else owner] = n
    frees: list[list[int]] = [[] for _ in range(n + 1)]
    for i, t in enumerate(last_use):
        frees[t].append(i)
    live = peak = 0
    for k in range(n):
        live += sizes[k]
        if live > peak:
            peak = live
        for i in frees[k]:
            live -= sizes[i]
    return peak
