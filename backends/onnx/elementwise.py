"""ONNX lowerings of the norms, activations, merges and layout ops (PyTorch's semantics).

ONNX has most of these as single ops; where its definition differs from PyTorch's (LRN's
window for an even size, Softplus without beta and threshold, GroupNormalization's scale
changing at opset 21) the lowering writes PyTorch's formula out of smaller ops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from specdsl.backends.onnx.builder import Builder
from specdsl.backends.onnx.helpers import pad, per_channel
from specdsl.backends.onnx.site import LowerFn, Site
from specdsl.ops.rule import NODE_ITSELF

# nn.SELU's constants, as PyTorch writes them (ONNX's defaults are their float32 roundings).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def affine(b: Builder, s: Site, y: str) -> str:
    """y · weight + bias per channel, for the weights the node has (at least one)."""
    c, rank = s.in_shape[0], s.rank
    if "weight" in s.w:
        w = per_channel(b, s.w["weight"], c, rank, "weight_c")
        y = b.op("Mul", [y, w], s.shape, name="scaled" if "bias" in s.w else None)
    if "bias" in s.w:
        y = b.op("Add", [y, per_channel(b, s.w["bias"], c, rank, "bias_c")], s.shape)
    return y


def normalize(b: Builder, x: str, axes: Sequence[int], eps: float, shape: tuple[int, ...],
              stats: tuple[int, ...], name: str | None) -> str:
    """(x − mean) / √(var + ε) over ``axes``, in two passes (the biased variance PyTorch uses).
    ``stats`` is the per-sample shape of the mean and variance."""
    mu = b.reduce("ReduceMean", x, axes, True, stats, name="mean")
    d = b.op("Sub", [x, mu], shape, name="centred")
    var = b.reduce("ReduceMean", b.op("Mul", [d, d], shape, name="squared"), axes, True, stats, name="var")
    std = b.op("Sqrt", [b.op("Add", [var, b.scalar(eps, "eps")], stats, name="var_eps")], stats, name="std")
    return b.op("Div", [d, std], shape, name=name)


# ---------------------------------------------------------------------------- norms


def _scale_shift(b: Builder, s: Site) -> tuple[str, str]:
    """The norm's weight and bias, or ones and zeros where it has none (affine=False)."""
    c = s.in_shape[0]
    scale = s.w["weight"] if "weight" in s.w else b.const(np.ones(c), label="ones")
    shift = s.w["bias"] if "bias" in s.w else b.const(np.zeros(c), label="zeros")
    return scale, shift


def _running(b: Builder, s: Site) -> str | None:
    """PyTorch's eval mode of a norm tracking running statistics (batch norm, or an instance norm
    tracking them too): BatchNormalization over them. None for a norm that keeps none."""
    if not (getattr(s.attrs, "track_running_stats", False) and "running_mean" in s.w):
        return None
    scale, shift = _scale_shift(b, s)
    # ONNX's momentum (ignored at inference) is 1 − PyTorch's: written so an import reads it back.
    momentum = None if s.attrs.momentum is None else 1 - s.attrs.momentum
    return b.op("BatchNormalization", [s.x, scale, shift, s.w["running_mean"], s.w["running_var"]], s.shape,
                epsilon=s.attrs.eps, momentum=momentum)


def bn(b: Builder, s: Site) -> str:
    running = _running(b, s)
    if running is not None:
        return running
    # A batch norm keeping no statistics normalises with the batch's, at inference too.
    c = s.in_shape[0]
    axes = [0, *range(2, 2 + s.rank)]
    stats = (c, *(1,) * s.rank)
    has_affine = "weight" in s.w or "bias" in s.w
    y = _normalize_batch(b, s.x, axes, s.attrs.eps, s.shape, stats, "normalized" if has_affine else None)
    return affine(b, s, y) if has_affine else y


def instancenorm(b: Builder, s: Site) -> str:
    running = _running(b, s)
    if running is not None:
        return running
    scale, shift = _scale_shift(b, s)
    return b.op("InstanceNormalization", [s.x, scale, shift], s.shape, epsilon=s.attrs.eps)


def _normalize_batch(b: Builder, x: str, axes: list[int], eps: float, shape: tuple[int, ...],
                     stats: tuple[int, ...], name: str | None) -> str:
    # The statistics have no batch axis: ReduceMean over axis 0 keeps it as 1.
    mu = b.reduce("ReduceMean", x, axes, True, (1, *stats), name="mean", batched=False)
    d = b.op("Sub", [x, mu], shape, name="centred")
    sq = b.op("Mul", [d, d], shape, name="squared")
    var = b.reduce("ReduceMean", sq, axes, True, (1, *stats), name="var", batched=False)
    eps_var = b.op("Add", [var, b.scalar(eps, "eps")], (1, *stats), name="var_eps", batched=False)
    std = b.op("Sqrt", [eps_var], (1, *stats), name="std", batched=False)
    return b.op("Div", [d, std], shape, name=name)


def layernorm(b: Builder, s: Site) -> str:
    a = s.attrs
    k = len(a.normalized_shape)
    scale = s.w["weight"] if "weight" in s.w else b.const(np.ones(a.normalized_shape), label="ones")
    ins = [s.x, scale] + ([s.w["bias"]] if "bias" in s.w else [])
    return b.op("LayerNormalization", ins, s.shape, axis=-k, epsilon=a.eps)


def groupnorm(b: Builder, s: Site) -> str:
    # Per-group statistics on a (N, G, rest) view, then the per-channel affine.
    a, c = s.attrs, s.in_shape[0]
    g = a.num_groups
    rest = -1 if s.dynamic else c // g * math.prod(s.in_shape[1:])
    view = b.reshape(s.x, [g, rest], (g, rest), name="groups")
    y = normalize(b, view, [2], a.eps, (g, rest), (g, 1), "normalized")
    has_affine = "weight" in s.w or "bias" in s.w
    y = _back(b, s, y, "ungrouped" if has_affine else None)
    return affine(b, s, y) if has_affine else y


def _back(b: Builder, s: Site, y: str, name: str | None) -> str:
    """y reshaped to the node's output shape (the input's own shape, read at run time, when symbolic)."""
    if s.dynamic:
        return b.op("Reshape", [y, b.op("Shape", [s.x], None, name="shape", batched=False)], s.shape, name=name)
    return b.reshape(y, list(s.shape), s.shape, name=name)


def channel_norm(b: Builder, s: Site) -> str:
    stats = (1, *s.in_shape[1:])
    y = normalize(b, s.x, [1], s.attrs.eps, s.shape, stats, "normalized")
    return affine(b, s, y)


def lrn(b: Builder, s: Site) -> str:
    """b_c = a_c / (k + α/size · Σ a²)^β over size//2 channels before c and (size−1)//2 after.
    ONNX LRN agrees for an odd size (ONNX Runtime runs it on 4-D tensors only); otherwise the
    window's mean is an average pool over the channels, seen as a (1, C, rest) image."""
    a, c = s.attrs, s.in_shape[0]
    if a.size % 2 == 1 and len(s.in_shape) == 3:
        return b.op("LRN", [s.x], s.shape, size=a.size, alpha=a.alpha, beta=a.beta, bias=a.k)
    s.fixed_size("its channel window is pooled over a flattened view")
    rest = math.prod(s.in_shape[1:])
    sq = b.op("Mul", [s.x, s.x], s.shape, name="squared")
    view = b.reshape(sq, [1, c, rest], (1, c, rest), name="channels")
    mean = b.op("AveragePool", [view], (1, c, rest), name="window", kernel_shape=[a.size, 1],
                pads=[a.size // 2, 0, (a.size - 1) // 2, 0], count_include_pad=1)
    mean = b.reshape(mean, list(s.shape), s.shape, name="window_mean")
    scaled = b.op("Mul", [mean, b.scalar(a.alpha, "alpha")], s.shape, name="alpha_mean")
    base = b.op("Add", [scaled, b.scalar(a.k, "k")], s.shape, name="k_plus")
    denominator = b.op("Pow", [base, b.scalar(a.beta, "beta")], s.shape, name="power")
    return b.op("Div", [s.x, denominator], s.shape)


# ---------------------------------------------------------------------------- activations


def clip(lo: float | None, hi: float | None) -> LowerFn:
    def lower(b: Builder, s: Site) -> str:
        ins = [s.x, "" if lo is None else b.scalar(lo, "min")] + ([b.scalar(hi, "max")] if hi is not None else [])
        return b.op("Clip", ins, s.shape)
    return lower


def hardtanh(b: Builder, s: Site) -> str:
    return clip(s.attrs.min_val, s.attrs.max_val)(b, s)


def gelu(b: Builder, s: Site) -> str:
    approximate = s.attrs.approximate
    if b.opset >= 20:
        return b.op("Gelu", [s.x], s.shape, approximate=approximate)
    x = s.x
    if approximate == "tanh":  # ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
        cube = b.op("Mul", [b.op("Mul", [x, x], s.shape, name="x2"), x], s.shape, name="x3")
        inner = b.op("Add", [x, b.op("Mul", [cube, b.scalar(0.044715)], s.shape, name="cubic")], s.shape,
                     name="inner")
        core = b.op("Tanh", [b.op("Mul", [inner, b.scalar(math.sqrt(2 / math.pi))], s.shape, name="scaled")],
                    s.shape, name="tanh")
    else:  # ½x(1 + erf(x/√2))
        core = b.op("Erf", [b.op("Mul", [x, b.scalar(math.sqrt(0.5))], s.shape, name="scaled")], s.shape,
                    name="erf")
    half = b.op("Mul", [x, b.scalar(0.5, "half")], s.shape, name="half_x")
    return b.op("Mul", [half, b.op("Add", [core, b.scalar(1.0, "one")], s.shape, name="one_plus")], s.shape)


def silu(b: Builder, s: Site) -> str:
    return b.op("Mul", [s.x, b.op("Sigmoid", [s.x], s.shape, name="sigmoid")], s.shape)


def mish(b: Builder, s: Site) -> str:
    if b.opset >= 18:
        return b.op("Mish", [s.x], s.shape)
    soft = b.op("Softplus", [s.x], s.shape, name="softplus")
    return b.op("Mul", [s.x, b.op("Tanh", [soft], s.shape, name="tanh")], s.shape)


def prelu(b: Builder, s: Site) -> str:
    n = s.attrs.num_parameters
    slope = s.w["weight"] if n == 1 else per_channel(b, s.w["weight"], n, s.rank, "slope")
    return b.op("PRelu", [s.x, slope], s.shape)


def softplus(b: Builder, s: Site) -> str:
    """PyTorch's softplus: x where βx > threshold, else log(1 + e^{βx}) / β."""
    beta, threshold = s.attrs.beta, s.attrs.threshold
    z = s.x if beta == 1 else b.op("Mul", [s.x, b.scalar(beta, "beta")], s.shape, name="beta_x")
    soft = b.op("Softplus", [z], s.shape, name="softplus")
    if beta != 1:
        soft = b.op("Div", [soft, b.scalar(beta, "beta")], s.shape, name="over_beta")
    big = b.op("Greater", [z, b.scalar(threshold, "threshold")], s.shape, name="linear", elem=9)
    return b.op("Where", [big, s.x, soft], s.shape)


def simple(onnx_op: str, **attrs: Any) -> LowerFn:
    """An op that is one ONNX op of its one input, with fixed attributes."""
    def lower(b: Builder, s: Site) -> str:
        return b.op(onnx_op, [s.x], s.shape, **attrs)
    return lower


def with_attrs(onnx_op: str, **names: str) -> LowerFn:
    """One ONNX op whose attributes are the node's (``alpha="slope"``: ONNX alpha = attrs.slope)."""
    def lower(b: Builder, s: Site) -> str:
        return b.op(onnx_op, [s.x], s.shape, **{k: getattr(s.attrs, v) for k, v in names.items()})
    return lower


# ---------------------------------------------------------------------------- merges and layout


def merge(onnx_op: str, many: str | None) -> LowerFn:
    """Add / Mul over two inputs; more: ``many`` (Sum, Mean) in one node, or a chain."""
    def lower(b: Builder, s: Site) -> str:
        if len(s.ins) == 1:
            return b.op("Identity", s.ins, s.shape)
        if len(s.ins) == 2:
            return b.op(onnx_op, s.ins, s.shape)
        if many is not None:
            return b.op(many, s.ins, s.shape)
        y, shape = s.ins[0], s.in_shapes[0]
        for k, (other, other_shape) in enumerate(zip(s.ins[1:], s.in_shapes[1:], strict=True)):
            shape = tuple(np.broadcast_shapes(shape, other_shape))
            y = b.op(onnx_op, [y, other], shape, name=None if k == len(s.ins) - 2 else f"step{k}")
        return y
    return lower


def part(b: Builder, s: Site) -> str:
    a = s.attrs
    return b.slice(s.x, [a.start], [a.start + s.shape[a.dim - 1]], [a.dim], s.shape)


def crop(b: Builder, s: Site) -> str:
    a = s.attrs
    s.fixed_size("its offsets and size are fixed")
    ends = [o + m for o, m in zip(a.offsets, a.size, strict=True)]
    return b.slice(s.x, list(a.offsets), ends, list(range(2, 2 + len(a.offsets))), s.shape)


def flatten(b: Builder, s: Site) -> str:
    if s.attrs.whole:
        return b.op("Flatten", [s.x], s.shape, axis=1)
    s.fixed_size("a partial flatten's shape is fixed")
    return b.reshape(s.x, list(s.shape), s.shape)


def channel_shuffle(b: Builder, s: Site) -> str:
    g, c = s.attrs.groups, s.in_shape[0]
    rest = -1 if s.dynamic else math.prod(s.in_shape[1:])
    view = b.reshape(s.x, [g, c // g, rest], (g, c // g, rest), name="groups")
    t = b.op("Transpose", [view], (c // g, g, rest), name="swapped", perm=[0, 2, 1, 3])
    return _back(b, s, t, None)


def pixel_unshuffle(b: Builder, s: Site) -> str:
    """out[n, c·r² + i·r + j, h, w] = x[n, c, h·r + i, w·r + j] (ONNX SpaceToDepth orders channels otherwise)."""
    s.fixed_size("the blocks' shape is fixed")
    r = s.attrs.factor
    c, h, w = s.in_shape
    view = b.reshape(s.x, [c, h // r, r, w // r, r], (c, h // r, r, w // r, r), name="blocks")
    t = b.op("Transpose", [view], (c, r, r, h // r, w // r), name="moved", perm=[0, 1, 3, 5, 2, 4])
    return b.reshape(t, list(s.shape), s.shape)


def pad_op(b: Builder, s: Site) -> str:
    a = s.attrs
    return pad(b, s.x, s.in_shape, a.before, a.after, a.mode, a.value, name=None)



def layer_scale(b: Builder, s: Site) -> str:
    gamma = s.w[NODE_ITSELF]
    if s.attrs.view:  # a flat gamma [C] (timm's), viewed (1, C, 1, ...) against the batch as forward does
        gamma = b.op("Reshape", [gamma, b.ints(s.attrs.view)], None, name="gamma")
    return b.op("Mul", [s.x, gamma], s.shape)


def concat(b: Builder, s: Site) -> str:
    return b.op("Concat", s.ins, s.shape, axis=s.attrs.dim)


def pixel_shuffle(b: Builder, s: Site) -> str:
    """out[n, c, h·r + i, w·r + j] = x[n, c·r² + i·r + j, h, w]: DepthToSpace's CRD order."""
    return b.op("DepthToSpace", [s.x], s.shape, blocksize=s.attrs.factor, mode="CRD")
