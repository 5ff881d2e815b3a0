"""NumPy kernels for convolution, pooling and normalisation: pure functions of arrays.

Written from PyTorch's documented (and, where the docs are silent, its
kernels') semantics, with its argument conventions and layout (N, C, *spatial).
Everything is vectorised: convolutions are im2col (``sliding_window_view``) +
``matmul``, 1×1 convolutions a plain ``matmul``, transposed convolutions
``matmul`` + col2im; the only Python loops run over slabs of a large im2col
buffer or kernel offsets (pooling and col2im), never over pixels or channels.
Nothing here knows about the graph or the op rules.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Array = np.ndarray

IM2COL_ELEMENTS = 1 << 24  # im2col buffers larger than this are built in slabs of output rows


# ---------------------------------------------------------------------------- helpers


_PAD_MODES: dict[str, Literal["constant", "reflect", "edge", "wrap"]] = {
    "zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def spatial_axes(x: Array) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


def _pad(x: Array, before: Sequence[int], after: Sequence[int], mode: str = "zeros",
         value: float = 0.0) -> Array:
    if not any(before) and not any(after):
        return x
    widths = [(0, 0), (0, 0), *zip(before, after, strict=True)]
    if mode == "zeros":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=_PAD_MODES[mode])


def _strided(x: Array, starts: Sequence[int], steps: Sequence[int], counts: Sequence[int]) -> Array:
    """x[:, :, start : start + step*(count-1) + 1 : step, ...] over the spatial axes (a view)."""
    index = [slice(None), slice(None)]
    for start, step, count in zip(starts, steps, counts, strict=True):
        index.append(slice(start, start + step * (count - 1) + 1, step))
    return x[tuple(index)]


def _per_channel(v: Array, ndim: int) -> Array:
    """A [C] vector shaped to broadcast over (N, C, *spatial)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


# ---------------------------------------------------------------------------- convolution


def conv_nd(x: Array, weight: Array, bias: Array | None, stride: Sequence[int], padding: Sequence[int],
            padding_after: Sequence[int] | None = None, dilation: Sequence[int] | None = None, groups: int = 1,
            padding_mode: str = "zeros") -> Array:
    """N-d convolution (cross-correlation) with PyTorch's argument conventions.

    x: (N, C_in, *S); weight: (C_out, C_in/groups, *K).
    """
    rank = x.ndim - 2
    dilation = tuple(dilation or (1,) * rank)
    padding_after = tuple(padding if padding_after is None else padding_after)
    xp = _pad(x, padding, padding_after, padding_mode)
    n, cin = xp.shape[:2]
    cout = weight.shape[0]
    kernel = weight.shape[2:]
    out_sizes = tuple((xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(rank))
    k_elems = math.prod(kernel)
    if k_elems == 1 and groups == 1:
        # 1x1: a plain matmul over the (strided) pixels.
        xs = _strided(xp, (0,) * rank, stride, out_sizes)
        y = np.matmul(weight.reshape(cout, cin), xs.reshape(n, cin, -1))
    else:
        y = _conv_im2col(xp, weight, stride, dilation, groups, out_sizes)
    y = y.reshape(n, cout, *out_sizes)
    if bias is not None:
        y += _per_channel(bias, y.ndim)
    return y


def _conv_im2col(xp: Array, weight: Array, stride: Sequence[int], dilation: Sequence[int], groups: int,
                 out_sizes: Sequence[int]) -> Array:
    n, cin = xp.shape[:2]
    rank = xp.ndim - 2
    cout, cg = weight.shape[:2]
    kernel = weight.shape[2:]
    og = cout // groups
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    win = sliding_window_view(xp, k_eff, axis=spatial_axes(xp))  # (N, C, *positions, *k_eff)
    index = (slice(None), slice(None), *(slice(None, None, s) for s in stride),
             *(slice(None, None, d) for d in dilation))
    win = win[index]  # (N, C, *out, *K)
    # Columns as (N, G, Cg, *K, *out): the output pixels stay innermost, so the copy reads runs of input rows.
    perm = (0, 1, *range(2 + rank, 2 + 2 * rank), *range(2, 2 + rank))
    w = weight.reshape(groups, og, cg * math.prod(kernel))
    total = n * cin * math.prod(kernel) * math.prod(out_sizes)
    slabs = max(1, min(out_sizes[0], -(-total // IM2COL_ELEMENTS)))
    y = np.empty((n, groups, og, *out_sizes), dtype=np.result_type(xp, weight))
    bounds = np.linspace(0, out_sizes[0], slabs + 1).astype(int)
    for lo, hi in itertools.pairwise(bounds):
        part = win[:, :, lo:hi].transpose(perm)
        cols = np.ascontiguousarray(part).reshape(n, groups, cg * math.prod(kernel), -1)
        y[:, :, :, lo:hi] = np.matmul(w, cols).reshape(n, groups, og, hi - lo, *out_sizes[1:])
    return y


def conv_transpose_nd(x: Array, weight: Array, bias: Array | None, stride: Sequence[int], padding: Sequence[int],
                      output_padding: Sequence[int], dilation: Sequence[int], groups: int = 1) -> Array:
    """N-d transposed convolution: matmul to columns, then col2im (one add per kernel offset).

    x: (N, C_in, *S); weight: (C_in, C_out/groups, *K).
    """
    n, cin = x.shape[:2]
    in_sizes = x.shape[2:]
    og = weight.shape[1]
    kernel = weight.shape[2:]
    cg = cin // groups
    # cols[n, g, o, *k, *s] = sum_c W[g, c, o, *k] * x[n, g, c, *s]
    w = weight.reshape(groups, cg, og * math.prod(kernel)).transpose(0, 2, 1)
    cols = np.matmul(w, x.reshape(n, groups, cg, -1)).reshape(n, groups, og, *kernel, *in_sizes)
    full = [(s - 1) * st + d * (k - 1) + 1 + op
            for s, st, d, k, op in zip(in_sizes, stride, dilation, kernel, output_padding, strict=True)]
    out = np.zeros((n, groups, og, *full), dtype=cols.dtype)
    body = out.reshape(n, groups * og, *full)
    for offset in itertools.product(*(range(k) for k in kernel)):
        target = _strided(body, [o * d for o, d in zip(offset, dilation, strict=True)], stride, in_sizes)
        target += cols[(slice(None), slice(None), slice(None), *offset)].reshape(target.shape)
    sizes = [(s - 1) * st - 2 * p + d * (k - 1) + op + 1
             for s, st, p, d, k, op in zip(in_sizes, stride, padding, dilation, kernel, output_padding, strict=True)]
    y = body[(slice(None), slice(None), *(slice(p, p + size) for p, size in zip(padding, sizes, strict=True)))]
    y = np.ascontiguousarray(y)
    if bias is not None:
        y += _per_channel(bias, y.ndim)
    return y


# ---------------------------------------------------------------------------- pooling


def _pool_extent(n: int, k: int, s: int, p: int, d: int, out: int) -> int:
    """Right padding beyond p that ceil_mode's last window needs."""
    need = (out - 1) * s + d * (k - 1) + 1
    return max(0, need - (n + 2 * p))


def max_pool_nd(x: Array, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                dilation: Sequence[int], out_sizes: Sequence[int]) -> Array:
    n_sp = x.shape[2:]
    extra = [_pool_extent(n, k, s, p, d, o) for n, k, s, p, d, o in
             zip(n_sp, kernel, stride, padding, dilation, out_sizes, strict=True)]
    xp = _pad(x, padding, [p + e for p, e in zip(padding, extra, strict=True)], value=-np.inf)
    y: Array | None = None
    for offset in itertools.product(*(range(k) for k in kernel)):
        part = _strided(xp, [o * d for o, d in zip(offset, dilation, strict=True)], stride, out_sizes)
        y = part.copy() if y is None else np.maximum(y, part, out=y)
    assert y is not None
    return y


def _avg_divisor(n: int, k: int, s: int, p: int, out: int, include_pad: bool) -> Array:
    """PyTorch's per-axis divisor: windows clipped to the padded (or, without count_include_pad, real) input."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, n + p)
    if include_pad:
        return (end - start).astype(np.float64)
    return (np.minimum(end, n) - np.maximum(start, 0)).astype(np.float64)


def avg_pool_nd(x: Array, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                out_sizes: Sequence[int], count_include_pad: bool) -> Array:
    n_sp = x.shape[2:]
    rank = len(kernel)
    extra = [_pool_extent(n, k, s, p, 1, o) for n, k, s, p, o in
             zip(n_sp, kernel, stride, padding, out_sizes, strict=True)]
    xp = _pad(x, padding, [p + e for p, e in zip(padding, extra, strict=True)])
    y: Array | None = None
    for offset in itertools.product(*(range(k) for k in kernel)):
        part = _strided(xp, offset, stride, out_sizes)
        y = part.copy() if y is None else np.add(y, part, out=y)
    assert y is not None
    divisor = np.ones((1,) * rank)
    for i in range(rank):
        shape = [1] * rank
        shape[i] = out_sizes[i]
        divisor = divisor * _avg_divisor(n_sp[i], kernel[i], stride[i], padding[i], out_sizes[i],
                                         count_include_pad).reshape(shape)
    y /= divisor.astype(y.dtype)
    return y


def _adaptive_bins(n: int, o: int) -> tuple[Array, Array]:
    i = np.arange(o)
    return (i * n) // o, -((-(i + 1) * n) // o)


def _adaptive_pool_nd(x: Array, out_sizes: Sequence[int], pool_axis: Callable[..., Array]) -> Array:
    """PyTorch's bins start = floor(i·n/o), end = ceil((i+1)·n/o), pooled axis by axis."""
    for i, o in enumerate(out_sizes):
        axis = 2 + i
        n = x.shape[axis]
        if n != o:
            x = pool_axis(x, axis, n, *_adaptive_bins(n, o))
    return x


def _average_bins(x: Array, axis: int, n: int, start: Array, end: Array) -> Array:
    pos = np.arange(n)
    m = ((pos >= start[:, None]) & (pos < end[:, None])) / (end - start)[:, None]
    return np.moveaxis(np.tensordot(x, m.T.astype(x.dtype), axes=([axis], [0])), -1, axis)


def _max_bins(x: Array, axis: int, n: int, start: Array, end: Array) -> Array:
    widest = int((end - start).max())
    idx = np.minimum(start[:, None] + np.arange(widest), end[:, None] - 1)  # (o, widest)
    return np.take(x, idx, axis=axis).max(axis=axis + 1)


def adaptive_avg_pool_nd(x: Array, out_sizes: Sequence[int]) -> Array:
    return np.ascontiguousarray(_adaptive_pool_nd(x, out_sizes, _average_bins))


def adaptive_max_pool_nd(x: Array, out_sizes: Sequence[int]) -> Array:
    return _adaptive_pool_nd(x, out_sizes, _max_bins)


# ---------------------------------------------------------------------------- normalisation


def batch_norm(x: Array, mean: Array | None, var: Array | None, weight: Array | None, bias: Array | None,
               eps: float, training: bool) -> Array:
    if training or mean is None or var is None:
        axes = (0, *spatial_axes(x))
        if x.size // x.shape[1] == 1:  # PyTorch refuses too, even at inference when no running stats are kept
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)  # biased, as PyTorch normalises with
    assert var is not None
    scale = 1.0 / np.sqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    return x * _per_channel(scale.astype(x.dtype), x.ndim) + _per_channel(shift.astype(x.dtype), x.ndim)


def instance_norm(x: Array, mean: Array | None, var: Array | None, weight: Array | None, bias: Array | None,
                  eps: float, use_running: bool) -> Array:
    if use_running and mean is not None and var is not None:
        y = (x - _per_channel(mean, x.ndim)) / np.sqrt(_per_channel(var, x.ndim) + eps)
    else:
        axes = spatial_axes(x)
        mu = x.mean(axis=axes, keepdims=True)
        y = (x - mu) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    if weight is not None:
        y = y * _per_channel(weight, x.ndim)
    if bias is not None:
        y = y + _per_channel(bias, x.ndim)
    return y


def layer_norm(x: Array, normalized_shape: Sequence[int], weight: Array | None, bias: Array | None,
               eps: float) -> Array:
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def group_norm(x: Array, groups: int, weight: Array | None, bias: Array | None, eps: float) -> Array:
    n = x.shape[0]
    g = x.reshape(n, groups, -1)
    mu = g.mean(axis=2, keepdims=True)
    y = ((g - mu) / np.sqrt(g.var(axis=2, keepdims=True) + eps)).reshape(x.shape)
    if weight is not None:
        y = y * _per_channel(weight, x.ndim)
    if bias is not None:
        y = y + _per_channel(bias, x.ndim)
    return y


def local_response_norm(x: Array, size: int, alpha: float, beta: float, k: float) -> Array:
    """b_c = a_c / (k + alpha/size · sum_{c' in window} a_{c'}^2)^beta, window size//2 before, (size-1)//2 after."""
    sq = x * x
    widths = [(0, 0)] * x.ndim
    widths[1] = (size // 2, (size - 1) // 2)
    sq = np.pad(sq, widths)
    total = sliding_window_view(sq, size, axis=1).sum(axis=-1)
    return x / (total * (alpha / size) + k) ** beta
