"""ONNX lowerings of the layers with weights, the pools and resampling (PyTorch's semantics).

Each function takes the graph builder and the node's :class:`Site` and returns its output's name.
Where ONNX's op differs from PyTorch's (ceil-mode average divisors, adaptive bins that do not
divide, padding modes), the lowering writes the difference out rather than hoping it away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from specdsl.backends.onnx.builder import INT64, Builder
from specdsl.backends.onnx.helpers import pad, per_channel
from specdsl.backends.onnx.site import LowerFn, Site


def conv(b: Builder, s: Site) -> str:
    a = s.attrs
    x, rank = s.x, len(a.kernel)
    pads: dict[str, Any] = {"pads": [*a.padding, *a.padding_after]}
    if a.padding_mode != "zeros" and any(pads["pads"]):
        # PyTorch pads with the mode first, then convolves without padding.
        x = pad(b, x, s.in_shape, a.padding, a.padding_after, a.padding_mode)
        pads = {"pads": [0] * (2 * rank)}
    elif a.same_tf and s.dynamic:
        # pad=same_tf is ONNX's SAME_UPPER (ceil(n / s) outputs, the odd pixel after), whose padding the
        # runtime computes from the input; it goes negative where a kernel is narrower than its stride,
        # and ONNX Runtime takes no dilation with it.
        if any(d * (k - 1) + 1 < st or d != 1 for k, st, d in zip(a.kernel, a.stride, a.dilation, strict=True)):
            s.fixed_size("pad=same_tf with a dilation or a kernel narrower than its stride pads by the input's "
                         "size (ONNX's SAME_UPPER: ONNX Runtime refuses dilations, and the padding can go negative)")
        pads = {"auto_pad": "SAME_UPPER"}
    weight = standardised(b, s) if a.ws else s.w["weight"]
    ins = [x, weight] + ([s.w["bias"]] if "bias" in s.w else [])
    return b.op("Conv", ins, s.shape, kernel_shape=list(a.kernel), strides=list(a.stride),
                dilations=list(a.dilation), group=a.groups, **pads)


def standardised(b: Builder, s: Site) -> str:
    """conv's ws in the graph, on the initializer (so the file keeps the checkpoint's weight and gain
    under their names): per output channel (w - mean) / sqrt(var + eps), times gain · gamma / sqrt(fan_in)."""
    a, w = s.attrs, s.w["weight"]
    shape = (a.out_channels, a.in_channels // a.groups, *a.kernel)
    rows = (shape[0], math.prod(shape[1:]))
    stats = (shape[0], 1)
    flat = b.op("Reshape", [w, b.ints(rows)], rows, name="ws_rows", batched=False)
    mu = b.reduce("ReduceMean", flat, [1], True, stats, name="ws_mean", batched=False)
    d = b.op("Sub", [flat, mu], rows, name="ws_centred", batched=False)
    var = b.reduce("ReduceMean", b.op("Mul", [d, d], rows, name="ws_squared", batched=False), [1], True, stats,
                   name="ws_var", batched=False)
    eps_var = b.op("Add", [var, b.scalar(a.eps, "eps")], stats, name="ws_var_eps", batched=False)
    std = b.op("Sqrt", [eps_var], stats, name="ws_std", batched=False)
    y = b.op("Div", [d, std], rows, name="ws_standardised", batched=False)
    if a.gain:
        gain = b.op("Reshape", [s.w["gain"], b.ints(stats)], stats, name="ws_gain", batched=False)
        scaled = b.op("Mul", [gain, b.scalar(a.gamma * rows[1] ** -0.5, "scale")], stats, name="ws_scale",
                      batched=False)
        y = b.op("Mul", [y, scaled], rows, name="ws_scaled", batched=False)
    return b.op("Reshape", [y, b.ints(shape)], shape, name="ws_weight", batched=False)


def deconv(b: Builder, s: Site) -> str:
    a = s.attrs
    attrs = {"kernel_shape": list(a.kernel), "strides": list(a.stride), "dilations": list(a.dilation),
             "group": a.groups}
    if all(o < st for o, st in zip(a.output_padding, a.stride, strict=True)):
        ins = [s.x, s.w["weight"]] + ([s.w["bias"]] if "bias" in s.w else [])
        return b.op("ConvTranspose", ins, s.shape, pads=[*a.padding, *a.padding],
                    output_padding=list(a.output_padding), **attrs)
    # ONNX Runtime wants output_padding < stride; PyTorch allows up to the dilation. The extra end
    # positions, which no kernel tap reaches, are less end padding, then zeros, then the bias.
    ends = [max(p - o, 0) for p, o in zip(a.padding, a.output_padding, strict=True)]
    extra = [max(o - p, 0) for p, o in zip(a.padding, a.output_padding, strict=True)]
    inner = (s.shape[0], *(n - e for n, e in zip(s.shape[1:], extra, strict=True)))
    last = not any(extra) and "bias" not in s.w
    y = b.op("ConvTranspose", [s.x, s.w["weight"]], inner, name=None if last else "deconv",
             pads=[*a.padding, *ends], **attrs)
    if any(extra):
        y = pad(b, y, inner, [0] * len(extra), extra, "zeros", name=None if "bias" not in s.w else "pad")
    if "bias" in s.w:
        y = b.op("Add", [y, per_channel(b, s.w["bias"], s.shape[0], len(extra), "bias_c")], s.shape)
    return y


def linear(b: Builder, s: Site) -> str:
    if len(s.in_shape) == 1:
        ins = [s.x, s.w["weight"]] + ([s.w["bias"]] if "bias" in s.w else [])
        return b.op("Gemm", ins, s.shape, transB=1)
    # Over the last axis of a larger tensor (KEEPS_LAYOUT): x · Wᵀ (+ b).
    a = s.attrs
    wt = b.op("Transpose", [s.w["weight"]], (a.in_features, a.out_features), name="weight_t", batched=False,
              perm=[1, 0])
    if "bias" not in s.w:
        return b.op("MatMul", [s.x, wt], s.shape)
    y = b.op("MatMul", [s.x, wt], s.shape, name="matmul")
    return b.op("Add", [y, s.w["bias"]], s.shape)


def local(b: Builder, s: Site) -> str:
    """A conv with a kernel per position: the patches (N, C·K, L) meet the weight (L, C·K, out)."""
    a = s.attrs
    x, c, rank = s.x, a.in_channels, len(a.kernel)
    if any(a.padding):
        x = pad(b, x, s.in_shape, a.padding, a.padding, "zeros")
    outs, k, positions = tuple(a.out_sizes), math.prod(a.kernel), math.prod(a.out_sizes)
    patches = []
    for offset in np.ndindex(*a.kernel):
        ends = [o + st * (n - 1) + 1 for o, st, n in zip(offset, a.stride, outs, strict=True)]
        part = b.slice(x, list(offset), ends, list(range(2, 2 + rank)), (c, *outs), name="patch",
                       steps=list(a.stride))
        patches.append(b.unsqueeze(part, [2], (c, 1, *outs), name="patch"))
    cols = b.op("Concat", patches, (c, k, *outs), name="patches", axis=2) if k > 1 else patches[0]
    cols = b.reshape(cols, [c * k, positions], (c * k, positions), name="cols")
    cols = b.op("Transpose", [cols], (positions, b.batch, c * k), name="cols_t", batched=False, perm=[2, 0, 1])
    w = b.op("Reshape", [s.w["weight"], b.ints([positions, a.out_channels, c * k])],
             (positions, a.out_channels, c * k), name="w", batched=False)
    w = b.op("Transpose", [w], (positions, c * k, a.out_channels), name="w_t", batched=False, perm=[0, 2, 1])
    y = b.op("MatMul", [cols, w], (positions, b.batch, a.out_channels), name="matmul", batched=False)
    y = b.op("Transpose", [y], (a.out_channels, positions), name="y", perm=[1, 2, 0])
    if "bias" not in s.w:
        return b.reshape(y, list(s.shape), s.shape)
    y = b.reshape(y, list(s.shape), s.shape, name="unflatten")
    return b.op("Add", [y, s.w["bias"]], s.shape)


# ---------------------------------------------------------------------------- pooling


def _ceil_extra(n: int, k: int, st: int, p: int, d: int, out: int) -> int:
    """Right padding beyond ``p`` that ceil_mode's last window reaches."""
    return max(0, (out - 1) * st + d * (k - 1) + 1 - (n + 2 * p))


def _extras(s: Site, dilation: Sequence[int]) -> list[int]:
    a = s.attrs
    return [_ceil_extra(n, k, st, p, d, o) for n, k, st, p, d, o in
            zip(s.in_shape[1:], a.kernel, a.stride, a.padding, dilation, s.shape[1:], strict=True)]


def maxpool(b: Builder, s: Site) -> str:
    # ceil_mode becomes explicit end padding (-inf for MaxPool): the output size is the spec's exactly.
    a = s.attrs
    ends = [p + e for p, e in zip(a.padding, _extras(s, a.dilation), strict=True)]
    # ONNX Runtime refuses a pad as wide as the (undilated) kernel, which a dilated window's extra end
    # padding can reach: there, as at symbolic sizes, ONNX's own ceil_mode. ONNX Runtime's sizes agree
    # with PyTorch's (its last window starts inside the input or the left padding), checked for k ≤ 3,
    # s ≤ 3, p ≤ k/2 (and the random specs of tests/test_onnx_backend.py, dilation included).
    if a.ceil_mode and (s.dynamic or any(e >= k for e, k in zip(ends, a.kernel, strict=True))):
        return b.op("MaxPool", [s.x], s.shape, kernel_shape=list(a.kernel), strides=list(a.stride),
                    pads=[*a.padding, *a.padding], dilations=list(a.dilation), ceil_mode=1)
    return b.op("MaxPool", [s.x], s.shape, kernel_shape=list(a.kernel), strides=list(a.stride),
                pads=[*a.padding, *ends], dilations=list(a.dilation))


def _avg_divisor(n: int, k: int, st: int, p: int, out: int) -> np.ndarray:
    """PyTorch's count_include_pad divisor: each window clipped to the padded input."""
    start = np.arange(out) * st - p
    return (np.minimum(start + k, n + p) - start).astype(np.float64)


def avgpool(b: Builder, s: Site) -> str:
    a = s.attrs
    extra = _extras(s, (1,) * len(a.kernel))
    pads = [*a.padding, *(p + e for p, e in zip(a.padding, extra, strict=True))]
    attrs: dict[str, Any] = {"kernel_shape": list(a.kernel), "strides": list(a.stride), "pads": pads,
             "count_include_pad": int(a.count_include_pad)}
    if s.dynamic and a.ceil_mode and not a.count_include_pad:
        # Counting only real inputs, ONNX's ceil_mode windows divide as PyTorch's do.
        return b.op("AveragePool", [s.x], s.shape, **{**attrs, "pads": [*a.padding, *a.padding], "ceil_mode": 1})
    if s.dynamic and a.ceil_mode:
        s.fixed_size("ceil_mode's last windows, clipped to the padded input, depend on the size")
    if not (any(extra) and a.count_include_pad):
        # Without ceil_mode's extra windows, or counting only real inputs, ONNX divides as PyTorch does.
        return b.op("AveragePool", [s.x], s.shape, **attrs)
    # ONNX counts the extra end padding too; PyTorch clips the last windows to the padded input.
    y = b.op("AveragePool", [s.x], s.shape, name="pool", **attrs)
    factor = np.ones((1,) * len(a.kernel))
    for i, (n, k, st, p, o) in enumerate(zip(s.in_shape[1:], a.kernel, a.stride, a.padding, s.shape[1:],
                                             strict=True)):
        shape = [1] * len(a.kernel)
        shape[i] = o
        factor = factor * (k / _avg_divisor(n, k, st, p, o)).reshape(shape)
    return b.op("Mul", [y, b.const(factor, label="divisor")], s.shape)


def global_pool(onnx_op: str) -> LowerFn:
    def lower(b: Builder, s: Site) -> str:
        if s.rank == 0:
            return b.op("Identity", [s.x], s.shape)
        return b.reduce(onnx_op, s.x, list(range(2, 2 + s.rank)), s.attrs.keepdims, s.shape)
    return lower


def adaptive(kind: str) -> LowerFn:
    """Adaptive pools: a plain pool where the bins divide the input; else PyTorch's bins
    (start ⌊i·n/o⌋, end ⌈(i+1)·n/o⌉), axis by axis: an averaging matrix, or a gather and max."""
    def lower(b: Builder, s: Site) -> str:
        outs, ins = tuple(s.attrs.out_size), s.in_shape[1:]
        if all(o == 1 for o in outs):
            return b.op("GlobalAveragePool" if kind == "avg" else "GlobalMaxPool", [s.x], s.shape)
        s.fixed_size("its bins depend on the input size")
        if all(n % o == 0 for n, o in zip(ins, outs, strict=True)):
            k = [n // o for n, o in zip(ins, outs, strict=True)]
            return b.op("AveragePool" if kind == "avg" else "MaxPool", [s.x], s.shape, kernel_shape=k, strides=k)
        return _adaptive_bins(b, s, kind)
    return lower


def _adaptive_bins(b: Builder, s: Site, kind: str) -> str:
    outs, y, shape = tuple(s.attrs.out_size), s.x, list(s.in_shape)
    todo = [i for i, (n, o) in enumerate(zip(s.in_shape[1:], outs, strict=True)) if n != o]
    for step, i in enumerate(todo):
        n, o, axis = shape[1 + i], outs[i], 2 + i
        idx = np.arange(o)
        start, end = (idx * n) // o, -((-(idx + 1) * n) // o)
        last = step == len(todo) - 1
        before = tuple(shape)
        shape[1 + i] = o
        name = None if last else f"axis{axis}"
        if kind == "avg":
            m = ((np.arange(n) >= start[:, None]) & (np.arange(n) < end[:, None])) / (end - start)[:, None]
            y = _along(b, y, axis, before, b.const(m.T, label="bins"), tuple(shape), name)
        else:
            widest = int((end - start).max())
            index = np.minimum(start[:, None] + np.arange(widest), end[:, None] - 1)
            wide = (*shape[:1 + i], o, widest, *shape[2 + i:])
            g = b.op("Gather", [y, b.ints(index.tolist(), "bins")], wide, name=f"gather{axis}", axis=axis)
            y = b.reduce("ReduceMax", g, [axis + 1], False, tuple(shape), name=name)
    return y


def _along(b: Builder, x: str, axis: int, before: tuple[int, ...], matrix: str, after: tuple[int, ...],
           name: str | None) -> str:
    """x (per-sample shape ``before``) with its ``axis`` multiplied by ``matrix`` (n, o): one
    MatMul, the axis moved last and back."""
    last = len(before)  # the batch axis comes first
    if axis == last:
        return b.op("MatMul", [x, matrix], after, name=name)
    perm = list(range(last + 1))
    perm[axis], perm[-1] = perm[-1], perm[axis]

    def swapped(shape: tuple[int, ...]) -> tuple[int, ...]:
        out = list(shape)
        out[axis - 1], out[-1] = out[-1], out[axis - 1]
        return tuple(out)
    t = b.op("Transpose", [x], swapped(before), name=f"to_last{axis}", perm=perm)
    y = b.op("MatMul", [t, matrix], swapped(after), name=f"bins{axis}")
    return b.op("Transpose", [y], after, name=name, perm=perm)


# ---------------------------------------------------------------------------- resampling


def upsample(b: Builder, s: Site) -> str:
    a = s.attrs
    if a.mode in ("nearest", "nearest-exact") and not s.dynamic:
        return _nearest_gather(b, s)
    if a.mode in ("nearest", "nearest-exact"):
        # nearest: ⌊i·s⌋ (asymmetric, floor); nearest-exact: ⌊(i + ½)·s⌋ (half_pixel, round half up).
        exact = a.mode == "nearest-exact"
        attrs: dict[str, Any] = {"mode": "nearest", "nearest_mode": "round_prefer_ceil" if exact else "floor",
                                 "coordinate_transformation_mode": "half_pixel" if exact else "asymmetric"}
    else:
        # half_pixel, not pytorch_half_pixel: that one maps an output of length 1 to position 0,
        # PyTorch (and half_pixel) to the middle of the input.
        attrs = {"mode": "cubic" if a.mode == "bicubic" else "linear",
                 "coordinate_transformation_mode": "align_corners" if a.align_corners else "half_pixel"}
        if a.mode == "bicubic":
            attrs["cubic_coeff_a"] = -0.75
    if a.scale is not None and not a.like:
        # A written scale drives PyTorch's coordinate map (1/scale), as ONNX's scales input does.
        scales = b.const([1.0, 1.0, *a.scale], dtype=np.float32, label="scales")
        return b.op("Resize", [s.x, "", scales], s.shape, **attrs)
    s.fixed_size("its output size is fixed")
    sizes = list(s.shape[1:])
    if b.opset >= 18:
        return b.op("Resize", [s.x, "", "", b.ints(sizes, "sizes")], s.shape, axes=list(range(2, 2 + s.rank)),
                    **attrs)
    head = b.op("Shape", [s.x], (2,), name="batch_channels", elem=INT64, batched=False, end=2)
    full = b.op("Concat", [head, b.ints(sizes, "sizes")], (2 + s.rank,), name="sizes", elem=INT64, batched=False,
                axis=0)
    return b.op("Resize", [s.x, "", "", full], s.shape, **attrs)


def _nearest_gather(b: Builder, s: Site) -> str:
    """Nearest neighbours at fixed sizes: a Gather per axis of the very indices PyTorch's kernel
    picks (its float32 index arithmetic; ONNX Resize divides by the scale instead and can round
    to the neighbouring pixel)."""
    # The NumPy backend's index map (imported here: its package is not needed otherwise).
    from specdsl.backends.numpy.interpolate import _nearest_index as nearest_index

    a = s.attrs
    y, shape = s.x, list(s.in_shape)
    axes = [i for i in range(s.rank) if shape[1 + i] != s.shape[1 + i] or a.scale is not None]
    if not axes:
        return b.op("Identity", [s.x], s.shape)
    for step, i in enumerate(axes):
        n, o = shape[1 + i], s.shape[1 + i]
        scale = None if a.scale is None or a.like else a.scale[i]
        index = nearest_index(n, o, scale, a.mode == "nearest-exact", np.float32)
        shape[1 + i] = o
        last = step == len(axes) - 1
        y = b.op("Gather", [y, b.ints(index.tolist(), "index")], tuple(shape), name=None if last else f"axis{2 + i}",
                 axis=2 + i)
    return y
