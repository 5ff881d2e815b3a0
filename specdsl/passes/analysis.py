"""Static analysis: one pure pass over the graph computing every figure.

For each node, in topological order: output shape (the op's shape rule),
parameters and buffers, MACs, extra ops, receptive field and activation size.
Problems are collected, not raised, so one run reports them all.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from specdsl.errors import Diagnostic
from specdsl.ir import DTYPES, Graph, Node
from specdsl.ops import OPS
from specdsl.ops.rule import (
    RF,
    AxisRF,
    RuleContext,
    RuleViolation,
    Shape,
    TensorSpec,
    axis_name,
    fmt_shape,
    numel,
)


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


@dataclass
class Analysis:
    figures: list[NodeFigures]
    totals: Totals
    diagnostics: list[Diagnostic]


def _located(node: Node, code: str, message: str, hint: str | None, fieldname: str | None,
             severity: str = "error") -> Diagnostic:
    loc = node.arg_locs.get(fieldname, node.loc) if fieldname else node.loc
    return Diagnostic(severity, code, message, loc, hint=hint, notes=node.notes, path=node.path)  # type: ignore[arg-type]


def _input_rf(shape: Shape) -> RF:
    if len(shape) < 2:
        return None
    return tuple(AxisRF(1, 1, 0) for _ in shape[1:])


def _check_alignment(node: Node, labels: list[str], in_rfs: list[RF], diags: list[Diagnostic]) -> None:
    known = [(i, r) for i, r in zip(node.inputs, in_rfs) if r is not None]
    # A DenseNet concat has hundreds of inputs, each an input of many concats: the centres
    # (Fraction arithmetic) come from a cache so the whole pass stays linear in the edges.
    for (i, a), (k, b) in itertools.pairwise(known):
        if a is b:
            continue
        for axis, (x, y) in enumerate(zip(a, b)):
            if x.stride != y.stride or _centre(x.size, x.pad) != _centre(y.size, y.pad):
                na, nb = labels[i], labels[k]
                diags.append(_located(
                    node, "W320",
                    f"inputs of {node.op} are not aligned along {axis_name(len(a), axis)}: "
                    f"'{na}' has stride {_num(x.stride)}, centre {_num(x.centre)}; "
                    f"'{nb}' has stride {_num(y.stride)}, centre {_num(y.centre)}",
                    "the merged features come from shifted input windows; check padding on both paths",
                    None, severity="warning"))
                return


@functools.lru_cache(maxsize=4096)
def _centre(size: Any, pad: Any) -> Any:
    """AxisRF.centre, memoised on (size, pad)."""
    return Fraction(size - 1, 2) - pad


def _num(x: object) -> str:
    """Fractions from the receptive-field algebra, written as decimals."""
    from fractions import Fraction

    if isinstance(x, Fraction) and x.denominator != 1:
        return f"{float(x):g}"
    return str(int(x)) if isinstance(x, Fraction) else str(x)


def analyze_node(node: Node, figures: list[NodeFigures], input_shape: Shape, diags: list[Diagnostic],
                 labels: list[str] | None = None) -> NodeFigures:
    """Figures of one node from its inputs' figures (already computed, topological order)."""
    fig = NodeFigures()
    if node.op == "input":
        fig.shape = input_shape
        fig.rf = _input_rf(input_shape)
        return fig
    ins = [figures[i] for i in node.inputs]
    if any(f.shape is None for f in ins):
        fig.failed = True  # an upstream error already explains this node
        return fig
    in_shapes = [f.shape for f in ins]
    rule = OPS[node.op]
    ctx = RuleContext()
    try:
        inferred = rule.infer(node.args, in_shapes, ctx)  # type: ignore[arg-type]
    except RuleViolation as v:
        diags.append(_located(node, v.code, v.message, v.hint, v.field))
        fig.failed = True
        return fig
    except OverflowError:
        # Float shape math (upsample scales) with absurd numbers; the axis check below catches the rest.
        diags.append(_located(node, "E301", "output size out of range: the arguments make an axis too large "
                              "to compute", "use sizes and scales a model could hold", None))
        fig.failed = True
        return fig
    for code, message, hint, fieldname in ctx.warnings:
        diags.append(_located(node, code, message, hint, fieldname, severity="warning"))
    shape = inferred.shape
    if any(d <= 0 for d in shape):
        diags.append(_located(node, "E301", f"output shape {fmt_shape(shape)} has a non-positive axis",
                              "an earlier layer shrank the input too far", None))
        fig.failed = True
        return fig
    if any(d > AXIS_MAX for d in shape):
        # PyTorch sizes are int64; stopping here also keeps every later figure a small integer.
        diags.append(_located(node, "E301", f"output shape {_short_shape(shape)} has an axis larger than 2^63-1",
                              "an earlier layer grew the input too far", None))
        fig.failed = True
        return fig
    fig.shape = shape
    fig.attrs = inferred.attrs
    fig.weights = rule.weights(inferred.attrs)
    trainable = sum(w.numel for w in fig.weights if w.role == "parameter")
    if node.frozen:
        fig.frozen = trainable
    else:
        fig.trainable = trainable
    fig.buffers = sum(w.numel for w in fig.weights if w.role == "buffer")
    fig.int64_buffers = sum(w.numel for w in fig.weights if w.role == "buffer" and w.dtype == "int64")
    fig.macs = rule.macs(inferred.attrs, in_shapes, shape)
    fig.extra_ops = rule.extra(inferred.attrs, in_shapes, shape)
    fig.rf = rule.rf(inferred.attrs, [f.rf for f in ins])
    if len(node.inputs) > 1 and labels is not None:
        _check_alignment(node, labels, [f.rf for f in ins], diags)
    return fig


AXIS_MAX = 2**63 - 1


def _short_shape(shape: Shape) -> str:
    return "[" + ", ".join(str(d) if d <= AXIS_MAX else f"~2^{d.bit_length() - 1}" for d in shape) + "]"


def analyze(graph: Graph, batch: int = 1,
            known: tuple[list[NodeFigures], list[Diagnostic]] | None = None) -> Analysis:
    """Every node's figures and the totals. ``known``: figures and per-node diagnostics
    already computed node by node (by expansion), so only merge alignment is left to check."""
    labels = [n.label for n in graph.nodes]
    if known is None or len(known[0]) != len(graph.nodes):
        diags: list[Diagnostic] = []
        figures: list[NodeFigures] = []
        for node in graph.nodes:
            figures.append(analyze_node(node, figures, graph.input_shape, diags, labels))
        return Analysis(figures, _totals(graph, figures, batch), _dedupe(diags))
    figures, node_diags = known
    by_path: dict[str | None, list[Diagnostic]] = {}
    for d in node_diags:
        by_path.setdefault(d.path, []).append(d)
    diags = list(by_path.pop(None, []))
    for node in graph.nodes:
        diags.extend(by_path.pop(node.path, []))
        if len(node.inputs) > 1 and figures[node.index].shape is not None:
            _check_alignment(node, labels, [figures[i].rf for i in node.inputs], diags)
    for rest in by_path.values():
        diags.extend(rest)
    return Analysis(figures, _totals(graph, figures, batch), _dedupe(diags))


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    """A block called many times repeats its problems; report each once."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for d in diags:
        key = (d.code, d.message, d.loc)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _peak_bytes(graph: Graph, sizes: list[int]) -> int:
    """Peak live activation memory in inference order, freeing each tensor after its last use."""
    last_use = list(range(len(graph.nodes)))
    for node in graph.nodes:
        for i in node.inputs:
            last_use[i] = max(last_use[i], node.index)
    last_use[graph.output] = len(graph.nodes)
    frees: list[list[int]] = [[] for _ in range(len(graph.nodes) + 1)]
    for i, t in enumerate(last_use):
        frees[t].append(i)
    live = peak = 0
    for node in graph.nodes:
        live += sizes[node.index]
        peak = max(peak, live)
        for i in frees[node.index]:
            live -= sizes[i]
    return peak


def _totals(graph: Graph, figures: list[NodeFigures], batch: int) -> Totals:
    width = DTYPES[graph.dtype]
    trainable = sum(f.trainable for f in figures)
    frozen = sum(f.frozen for f in figures)
    buffers = sum(f.buffers for f in figures)
    macs = sum(f.macs for f in figures)
    sizes = [numel(f.shape) * batch if f.shape is not None else 0 for f in figures]
    activations = sum(sizes[1:])
    counters = sum(f.int64_buffers for f in figures)
    rf_node = None
    for node, fig in zip(graph.nodes, figures):
        if fig.rf is not None and node.op != "input":
            rf_node = node.index
    return Totals(
        params=trainable + frozen,
        trainable=trainable,
        frozen=frozen,
        buffers=buffers,
        macs=macs,
        flops=2 * macs,
        extra_ops=sum(f.extra_ops for f in figures),
        activation_elements=activations,
        activation_bytes=activations * width,
        param_bytes=(trainable + frozen) * width,
        # num_batches_tracked is int64; the running stats follow the model dtype.
        buffer_bytes=(buffers - counters) * width + counters * 8,
        input_bytes=sizes[0] * width,
        peak_bytes=_peak_bytes(graph, sizes) * width,
        batch=batch,
        dtype=graph.dtype,
        rf_node=rf_node,
    )
