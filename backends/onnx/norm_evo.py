"""ONNX lowerings of evonorm and frn (specdsl/ops/norm_evo.py), written out of ONNX's reductions and
element-wise ops (ONNX has neither as one op).

evonorm groups the channels with a Reshape to (N, groups, rest), takes the biased standard deviation
over the last axis (ReduceMean, Sub, Mul, ReduceMean, Add eps, Sqrt), divides the grouped numerator by
it and reshapes back to the input's own shape (read with Shape, so symbolic spatial sizes export too).
The [C] weights are unsqueezed to (C, 1, ...) against the channels-first tensor."""

from __future__ import annotations

from specdsl.backends.onnx.builder import Builder
from specdsl.backends.onnx.helpers import per_channel
from specdsl.backends.onnx.site import Site

EVO_OPS = ("Reshape", "Shape", "ReduceMean", "Sub", "Mul", "Add", "Sqrt", "Div", "Sigmoid", "Unsqueeze")
FRN_OPS = ("Mul", "ReduceMean", "Add", "Sqrt", "Div", "Max", "Unsqueeze")


def _w(b: Builder, s: Site, name: str) -> str:
    return per_channel(b, s.w[name], s.attrs.channels, s.rank, f"{name}_c")


def _affine(b: Builder, s: Site, x: str, *, name: str | None = None) -> str:
    scaled = b.op("Mul", [x, _w(b, s, "weight")], s.shape, name="scaled")
    return b.op("Add", [scaled, _w(b, s, "bias")], s.shape, name=name)


def evonorm(b: Builder, s: Site) -> str:
    """x · sigmoid(v · x) / d · weight + bias (or x / d, or neither: see the op's rule), d per group."""
    a = s.attrs
    if not a.normalises:
        return _affine(b, s, s.x)
    per_group = (a.groups, a.channels // a.groups * (1 if s.dynamic else _spatial(s)))
    grouped_shape = None if s.dynamic else per_group
    stats = (a.groups, 1)
    xg = b.reshape(s.x, [a.groups, -1], grouped_shape, name="grouped")
    mean = b.reduce("ReduceMean", xg, [2], True, stats, name="mean")
    centred = b.op("Sub", [xg, mean], grouped_shape, name="centred")
    var = b.reduce("ReduceMean", b.op("Mul", [centred, centred], grouped_shape, name="squared"), [2], True, stats,
                   name="var")
    std = b.op("Sqrt", [b.op("Add", [var, b.scalar(a.eps, "eps")], stats, name="var_eps")], stats, name="std")
    num = s.x
    if a.apply_act:
        gate = b.op("Sigmoid", [b.op("Mul", [s.x, _w(b, s, "v")], s.shape, name="xv")], s.shape, name="gate")
        num = b.op("Mul", [s.x, gate], s.shape, name="gated")
        num = b.reshape(num, [a.groups, -1], grouped_shape, name="gated_grouped")
    else:
        num = xg
    q = b.op("Div", [num, std], grouped_shape, name="normalized_grouped")
    back = b.op("Reshape", [q, b.op("Shape", [s.x], None, name="shape")], s.shape, name="normalized")
    return _affine(b, s, back)


def _spatial(s: Site) -> int:
    n = 1
    for d in s.in_shape[1:]:
        n *= d
    return n


def frn(b: Builder, s: Site) -> str:
    """x / √(mean of x² over the spatial axes + eps) · weight + bias, then max(·, tau) with the TLU."""
    a, axes = s.attrs, list(range(2, s.rank + 2))
    stats = (a.channels, *(1,) * s.rank)
    ms = b.reduce("ReduceMean", b.op("Mul", [s.x, s.x], s.shape, name="squared"), axes, True, stats,
                  name="mean_square")
    root = b.op("Sqrt", [b.op("Add", [ms, b.scalar(a.eps, "eps")], stats, name="ms_eps")], stats, name="root")
    y = b.op("Div", [s.x, root], s.shape, name="normalized")
    if not a.apply_act:
        return _affine(b, s, y)
    return b.op("Max", [_affine(b, s, y, name="affine"), _w(b, s, "tau")], s.shape)
