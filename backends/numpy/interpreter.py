"""A NumPy reference interpreter of the graph IR.

One function per op, written from PyTorch's documented (and, where the docs are
silent, its kernels') semantics, so that the PyTorch lowering can be tested
against an independent implementation, node by node. Everything is vectorised:
convolutions are im2col (``sliding_window_view``) + ``matmul``, 1×1 convolutions
a plain ``matmul``, transposed convolutions ``matmul`` + col2im; the only Python
loops run over groups of a batch, slabs of a large im2col buffer, or kernel
offsets (pooling and col2im), never over pixels or channels.

Weights are a name -> array mapping under exactly the PyTorch backend's
``state_dict`` keys (``backends/naming.py``); ``.npz`` files load and save
without pickles. At inference a batch norm that directly follows a conv,
transposed conv or linear layer (and is its only consumer) is folded into it,
unless every activation is captured. Large batches run in chunks so that the
peak memory stays near ``max_memory`` bytes.

    >>> import numpy as np, specdsl
    >>> net = specdsl.to_numpy("lenet5")                 # random weights, float64
    >>> net(np.zeros((2, 1, 32, 32))).shape
    (2, 10)
"""

from __future__ import annotations

import itertools
import math
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from specdsl.backends.naming import param_key

Array = np.ndarray
Params = dict[str, Array]

DEFAULT_MAX_MEMORY = 1 << 30  # bytes of activations + im2col buffers per forward chunk
_IM2COL_ELEMENTS = 1 << 24  # im2col buffers larger than this are built in slabs of output rows


# ---------------------------------------------------------------------------- weights


def weight_shapes(model: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every parameter and buffer the model owns: key -> (shape, 'float' | 'int64'), in node order.

    The keys and shapes are those of the PyTorch backend's ``state_dict``; both come from the op rules.
    """
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    for node in model.graph.nodes:
        for w in model.analysis.figures[node.index].weights:
            out[param_key(node.path, w.name)] = (w.shape, "int64" if w.dtype == "int64" else "float")
    return out


def random_weights(model: Any, seed: int = 0, dtype: str | np.dtype = "float64") -> Params:
    """Deterministic random weights for every parameter and buffer of ``model``.

    Each tensor draws from its own stream (seeded by ``seed`` and its key), so a
    tensor's values do not depend on the rest of the model. Every value is a
    float32 number, so a float32 copy of the weights is exact. Conv / linear
    weights are He-uniform over their fan-in (activations keep their scale
    through deep stacks), biases small, norm scales in [0.5, 1], running
    variances in [0.5, 1.5]: every term of every op contributes.
    """
    model = _load_model(model)
    dt = np.dtype(dtype)
    weights: Params = {}
    specs = {param_key(n.path, w.name): w for n in model.graph.nodes for w in model.analysis.figures[n.index].weights}
    for key, spec in specs.items():
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        shape = spec.shape
        if spec.dtype == "int64":
            weights[key] = np.array(int(rng.integers(0, 1000)), dtype=np.int64)
            continue
        if spec.fan_in is not None:
            bound = math.sqrt(6.0 / max(spec.fan_in, 1.0))
            low, high = -bound, bound
        elif spec.name == "weight":
            low, high = 0.5, 1.0
        elif spec.name == "running_var":
            low, high = 0.5, 1.5
        else:  # bias, running_mean
            low, high = -0.2, 0.2
        # Drawn in float32 arithmetic whatever the dtype: float32 and float64 models get identical values.
        values = rng.random(shape, dtype=np.float32)
        values *= np.float32(high - low)
        values += np.float32(low)
        weights[key] = values.astype(dt, copy=False)
    return weights


def save_weights(path: str | os.PathLike[str], weights: Mapping[str, Any]) -> None:
    """Write ``weights`` to an ``.npz`` file (no pickles: numeric arrays only)."""
    arrays = {}
    for key, value in weights.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"weight '{key}' has dtype {arr.dtype}; only numeric arrays can be saved")
        arrays[key] = arr
    np.savez(path, allow_pickle=False, **arrays)


def load_weights(path: str | os.PathLike[str]) -> Params:
    """Read an ``.npz`` weight file (pickled objects are refused)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _check_weights(model: Any, weights: Mapping[str, Any]) -> Params:
    expected = weight_shapes(model)
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    problems = []
    if missing:
        problems.append("missing: " + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    if unexpected:
        problems.append("unexpected: " + ", ".join(unexpected[:8]) + (" ..." if len(unexpected) > 8 else ""))
    out: Params = {}
    for key, (shape, _kind) in expected.items():
        if key not in weights:
            continue
        value = weights[key]
        if hasattr(value, "detach"):  # a torch tensor, e.g. from module.state_dict()
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if tuple(arr.shape) != shape:
            problems.append(f"{key} has shape {list(arr.shape)}, expected {list(shape)}")
        out[key] = arr
    if problems:
        raise ValueError("weights do not fit the model: " + "; ".join(problems))
    return out


# ---------------------------------------------------------------------------- helpers


_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _spatial(x: Array) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


def _pad(x: Array, before: Sequence[int], after: Sequence[int], mode: str = "zeros",
         value: float = 0.0) -> Array:
    if not any(before) and not any(after):
        return x
    widths = [(0, 0), (0, 0), *zip(before, after, strict=True)]
    if mode == "zeros":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=_PAD_MODES[mode])  # type: ignore[call-overload]


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
    win = sliding_window_view(xp, k_eff, axis=_spatial(xp))  # (N, C, *positions, *k_eff)
    index = (slice(None), slice(None), *(slice(None, None, s) for s in stride),
             *(slice(None, None, d) for d in dilation))
    win = win[index]  # (N, C, *out, *K)
    # Columns as (N, G, Cg, *K, *out): the output pixels stay innermost, so the copy reads runs of input rows.
    perm = (0, 1, *range(2 + rank, 2 + 2 * rank), *range(2, 2 + rank))
    w = weight.reshape(groups, og, cg * math.prod(kernel))
    total = n * cin * math.prod(kernel) * math.prod(out_sizes)
    slabs = max(1, min(out_sizes[0], -(-total // _IM2COL_ELEMENTS)))
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


def adaptive_avg_pool_nd(x: Array, out_sizes: Sequence[int]) -> Array:
    """PyTorch's bins start = floor(i·n/o), end = ceil((i+1)·n/o); averaged axis by axis."""
    for i, o in enumerate(out_sizes):
        axis = 2 + i
        n = x.shape[axis]
        if n == o:
            continue
        start, end = _adaptive_bins(n, o)
        pos = np.arange(n)
        m = ((pos >= start[:, None]) & (pos < end[:, None])) / (end - start)[:, None]
        x = np.moveaxis(np.tensordot(x, m.T.astype(x.dtype), axes=([axis], [0])), -1, axis)
    return np.ascontiguousarray(x)


def adaptive_max_pool_nd(x: Array, out_sizes: Sequence[int]) -> Array:
    for i, o in enumerate(out_sizes):
        axis = 2 + i
        n = x.shape[axis]
        if n == o:
            continue
        start, end = _adaptive_bins(n, o)
        widest = int((end - start).max())
        idx = np.minimum(start[:, None] + np.arange(widest), end[:, None] - 1)  # (o, widest)
        x = np.take(x, idx, axis=axis).max(axis=axis + 1)
    return x


# ---------------------------------------------------------------------------- upsampling


def _source_scale(n: int, out: int, scale: float | None, align_corners: bool, dt: type) -> Any:
    """ATen's area_pixel_compute_scale, in the kernel's arithmetic type."""
    if align_corners:
        return dt((n - 1) / (out - 1)) if out > 1 else dt(0.0)
    if scale is not None and scale > 0:
        return dt(1.0 / scale)
    return dt(n) / dt(out)


def _nearest_index(n: int, out: int, scale: float | None, exact: bool, dt: type) -> Array:
    """Source index of each output position: ``min(floor(i * s), n - 1)`` (``(i + 0.5) * s`` for nearest-exact).

    As in ATen's CPU kernel the product is formed in the kernel's arithmetic
    type (float32 for float32 tensors, float64 for float64) and rounded to
    float32 before the floor, so float32 and float64 models can pick different
    neighbours where ``i * s`` lands next to an integer.
    """
    s = _source_scale(n, out, scale, False, dt)
    i = np.arange(out).astype(dt)
    real = (i + dt(0.5)) * s if exact else i * s
    return np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), n - 1)


def _linear_weights(n: int, out: int, scale: float | None, align_corners: bool, dt: type
                    ) -> tuple[Array, Array, Array, Array]:
    if out == n:  # ATen copies an axis whose size does not change, whatever the scale
        i = np.arange(n)
        return i, i, np.ones(n), np.zeros(n)
    s = _source_scale(n, out, scale, align_corners, dt)
    i = np.arange(out).astype(dt)
    real = s * i if align_corners else np.maximum(s * (i + dt(0.5)) - dt(0.5), dt(0.0))
    i0 = np.minimum(np.floor(real).astype(np.int64), n - 1)
    lam1 = np.clip(real - i0, 0.0, 1.0)
    i1 = np.minimum(i0 + 1, n - 1)
    return i0, i1, 1.0 - lam1, lam1


def _cubic_weights(n: int, out: int, scale: float | None, align_corners: bool, dt: type
                   ) -> tuple[Array, Array]:
    """Indices (out, 4) and weights (out, 4) of Keys' cubic convolution, A = -0.75 (as PyTorch)."""
    s = _source_scale(n, out, scale, align_corners, dt)
    i = np.arange(out).astype(dt)
    real = s * i if align_corners else s * (i + dt(0.5)) - dt(0.5)
    base = np.floor(real).astype(np.int64)
    t = (real - base).astype(np.float64)
    a = -0.75

    def near(z: Array) -> Array:
        return ((a + 2) * z - (a + 3)) * z * z + 1

    def far(z: Array) -> Array:
        return ((a * z - 5 * a) * z + 8 * a) * z - 4 * a

    weights = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)
    index = np.clip(base[:, None] + np.arange(-1, 3), 0, n - 1)
    return index, weights


def upsample_nd(x: Array, sizes: Sequence[int], scales: Sequence[float] | None, mode: str,
                align_corners: bool | None, index_dtype: np.dtype | None = None) -> Array:
    """nn.Upsample: ``scales`` (when the spec gave scale_factor) drive the coordinate map, as in PyTorch."""
    rank = x.ndim - 2
    dt = (np.dtype(index_dtype) if index_dtype is not None else x.dtype).type
    align = bool(align_corners)
    for i in range(rank):
        axis = 2 + i
        n, o = x.shape[axis], sizes[i]
        scale = None if scales is None else scales[i]
        if mode in ("nearest", "nearest-exact"):
            x = np.take(x, _nearest_index(n, o, scale, mode == "nearest-exact", dt), axis=axis)
        elif mode in ("linear", "bilinear", "trilinear"):
            i0, i1, w0, w1 = _linear_weights(n, o, scale, align, dt)
            shape = [1] * x.ndim
            shape[axis] = o
            x = np.take(x, i0, axis=axis) * w0.astype(x.dtype).reshape(shape) + \
                np.take(x, i1, axis=axis) * w1.astype(x.dtype).reshape(shape)
        elif mode == "bicubic":
            index, weights = _cubic_weights(n, o, scale, align, dt)
            gathered = np.take(x, index, axis=axis)  # (..., o, 4, ...)
            shape = [1] * gathered.ndim
            shape[axis], shape[axis + 1] = o, 4
            x = (gathered * weights.astype(x.dtype).reshape(shape)).sum(axis=axis + 1)
        else:  # pragma: no cover - the schema admits no other mode
            raise NotImplementedError(mode)
    return x


# ---------------------------------------------------------------------------- normalisation


def batch_norm(x: Array, mean: Array | None, var: Array | None, weight: Array | None, bias: Array | None,
               eps: float, training: bool) -> Array:
    if training or mean is None or var is None:
        axes = (0, *_spatial(x))
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
        axes = _spatial(x)
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


# ---------------------------------------------------------------------------- activations

_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
          1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
          8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
          2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
          3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
          6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
          2.33520497626869185e-3)
_SQRT_1_PI = 5.6418958354775628695e-1


def erf(x: Array) -> Array:
    """The error function, vectorised (W. J. Cody's rational Chebyshev approximations, ~1e-16 relative)."""
    xd = np.asarray(x, dtype=np.float64)
    y = np.abs(xd)
    # |x| <= 0.46875: erf directly.
    z = np.minimum(y, 0.46875) ** 2
    num, den = _ERF_A[4] * z, z
    for a, b in zip(_ERF_A[:3], _ERF_B[:3], strict=True):
        num, den = (num + a) * z, (den + b) * z
    small = xd * (num + _ERF_A[3]) / (den + _ERF_B[3])
    # 0.46875 < |x| <= 4: erfc = exp(-x^2) R(x).
    u = np.clip(y, 0.46875, 4.0)
    num, den = _ERF_C[8] * u, u
    for c, d in zip(_ERF_C[:7], _ERF_D[:7], strict=True):
        num, den = (num + c) * u, (den + d) * u
    mid = (num + _ERF_C[7]) / (den + _ERF_D[7])
    # |x| > 4: asymptotic series in 1/x^2.
    v = np.clip(y, 4.0, 27.0)
    w = 1.0 / (v * v)
    num, den = _ERF_P[5] * w, w
    for p, q in zip(_ERF_P[:4], _ERF_Q[:4], strict=True):
        num, den = (num + p) * w, (den + q) * w
    far = (_SQRT_1_PI - w * (num + _ERF_P[4]) / (den + _ERF_Q[4])) / v
    ratio = np.where(y <= 4.0, mid, far)
    # exp(-y^2) in two factors, so the rounding of y^2 does not spoil the tail.
    yc = np.minimum(y, 27.0)
    ysq = np.trunc(yc * 16.0) / 16.0
    erfc = np.exp(-ysq * ysq) * np.exp(-(yc - ysq) * (yc + ysq)) * ratio
    erfc = np.where(y >= 26.543, 0.0, erfc)
    big = np.copysign(1.0 - erfc, xd)
    out = np.where(y <= 0.46875, small, big)
    in_dtype = np.asarray(x).dtype
    return out.astype(in_dtype) if in_dtype.kind == "f" else out


def sigmoid(x: Array) -> Array:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def gelu(x: Array, approximate: str) -> Array:
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + np.tanh(inner))
    return (0.5 * x * (1.0 + erf(x * math.sqrt(0.5)))).astype(x.dtype)


def softplus(x: Array, beta: float, threshold: float) -> Array:
    z = x * beta
    return np.where(z > threshold, x, np.logaddexp(0.0, z) / beta).astype(x.dtype)


def softmax(x: Array, dim: int) -> Array:
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x: Array, dim: int) -> Array:
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


# Clipping activations, run in place when their input has no other reader.
_INPLACE: dict[str, tuple[float | None, float | None]] = {"relu": (0.0, None), "relu6": (0.0, 6.0)}
_ACTIVATIONS: dict[str, Callable[[Array, Any], Array]] = {
    "leaky_relu": lambda x, a: np.where(x > 0, x, x * a.slope),
    "elu": lambda x, a: np.where(x > 0, x, a.alpha * np.expm1(np.minimum(x, 0))),
    "gelu": lambda x, a: gelu(x, a.approximate),
    "silu": lambda x, a: x * sigmoid(x),
    "hardswish": lambda x, a: x * np.clip(x + 3, 0, 6) / 6,
    "sigmoid": lambda x, a: sigmoid(x),
    "tanh": lambda x, a: np.tanh(x),
    "softplus": lambda x, a: softplus(x, a.beta, a.threshold),
}


# ---------------------------------------------------------------------------- the interpreter


class _Context:
    __slots__ = ("index_dtype", "inplace", "train")

    def __init__(self, train: bool, index_dtype: np.dtype | None) -> None:
        self.train = train
        self.index_dtype = index_dtype
        # True while the running node is the last reader of its first input (which it may overwrite).
        self.inplace = False


OpFn = Callable[[list[Array], _Context], Array]


class NumpyModel:
    """A checked model, its weights and a NumPy forward.

    ``net(x)`` runs the batch ``x`` (shape ``(N, *input)``) at inference and
    returns the output; ``capture=True`` returns every node's activation by node
    index instead (0 is the input); ``train_bn=True`` normalises batch and
    instance norms with the statistics of the batch, as PyTorch does in
    training mode (dropout stays off and the running statistics are not
    updated).
    """

    def __init__(self, model: Any, weights: Mapping[str, Any] | str | os.PathLike[str] | None = None,
                 dtype: str | np.dtype = "float64", *, seed: int = 0, fold_bn: bool = True,
                 max_memory: int = DEFAULT_MAX_MEMORY, index_dtype: str | np.dtype | None = None) -> None:
        self.model = _load_model(model)
        self.graph = self.model.graph
        self.figures = self.model.analysis.figures
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype("float32"), np.dtype("float64")):
            raise ValueError(f"dtype must be float32 or float64; received {self.dtype}")
        if weights is None:
            weights = random_weights(self.model, seed, self.dtype)
        elif isinstance(weights, (str, os.PathLike)):
            weights = load_weights(weights)
        checked = _check_weights(self.model, weights)
        self.weights: Params = {k: v if v.dtype.kind in "iu" else v.astype(self.dtype, copy=False)
                                for k, v in checked.items()}
        self.fold_bn = fold_bn
        self.max_memory = max_memory
        self.index_dtype = None if index_dtype is None else np.dtype(index_dtype)
        self._fns: list[OpFn | None] = [self._compile(node) for node in self.graph.nodes]
        self._folded: dict[int, OpFn] | None = None  # built on the first call that can use it
        self._per_sample = self._bytes_per_sample()

    # -- public -----------------------------------------------------------------

    def __call__(self, x: Any, *, train_bn: bool = False, capture: bool = False) -> Any:
        x = np.asarray(x, dtype=self.dtype)
        expected = tuple(self.graph.input_shape)
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected a batch of shape (N, {', '.join(map(str, expected))}); "
                             f"received {tuple(x.shape)}")
        n = x.shape[0]
        chunk = n if train_bn else max(1, min(n, self.max_memory // max(1, self._per_sample)))
        ctx = _Context(train_bn, self.index_dtype)
        # inf and nan propagate silently, as in PyTorch (a dilated max pool can see only padding: -inf).
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if chunk >= n:
                return self._forward(x, ctx, capture)
            parts = [self._forward(x[i:i + chunk], ctx, capture) for i in range(0, n, chunk)]
        if capture:
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return np.concatenate(parts)

    def forward(self, x: Any, **kw: Any) -> Any:
        return self(x, **kw)

    def run_node(self, index: int, inputs: Sequence[Any], *, train_bn: bool = False) -> Array:
        """One node's op on the given input arrays (batched), unfolded: for checking a node in isolation."""
        fn = self._fns[index]
        if fn is None:
            return np.asarray(inputs[0], dtype=self.dtype)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return fn([np.asarray(v, dtype=self.dtype) for v in inputs], _Context(train_bn, self.index_dtype))

    def state_dict(self) -> Params:
        return dict(self.weights)

    def save(self, path: str | os.PathLike[str]) -> None:
        save_weights(path, self.weights)

    def __repr__(self) -> str:
        return f"<NumpyModel {self.model.name}: {len(self.graph.nodes) - 1} nodes, {self.dtype}>"

    # -- running ------------------------------------------------------------------

    def _forward(self, x: Array, ctx: _Context, capture: bool) -> Any:
        nodes = self.graph.nodes
        values: list[Array | None] = [None] * len(nodes)
        values[0] = x
        fold: dict[int, OpFn] = {}
        if self.fold_bn and not capture and not ctx.train:
            if self._folded is None:
                self._folded = self._fold_plan()
            fold = self._folded
        remaining = [0] * len(nodes)
        for node in nodes:
            for i in node.inputs:
                remaining[i] += 1
        remaining[self.graph.output] += 1
        # Pending reads per underlying buffer: identity, dropout and flatten return views of their
        # input, so a node may overwrite its input only when nothing else will read that buffer.
        pending: dict[int, int] = {}
        if not capture:
            pending[id(_root(x))] = 1 << 62  # the caller's array is never overwritten
        for node in nodes[1:]:
            ins = [values[i] for i in node.inputs]
            ctx.inplace = not capture and pending.get(id(_root(ins[0])), 0) == 1  # type: ignore[arg-type]
            if node.index in fold:
                y = fold[node.index](ins, ctx)  # type: ignore[arg-type]
            else:
                fn = self._fns[node.index]
                assert fn is not None
                y = fn(ins, ctx)  # type: ignore[arg-type]
            values[node.index] = y
            if capture:
                continue
            key = id(_root(y))
            pending[key] = pending.get(key, 0) + remaining[node.index]
            for i in node.inputs:
                remaining[i] -= 1
                key = id(_root(values[i]))  # type: ignore[arg-type]
                pending[key] -= 1
                if remaining[i] == 0:
                    values[i] = None
        if capture:
            return {i: v for i, v in enumerate(values)}
        return values[self.graph.output]

    def _bytes_per_sample(self) -> int:
        """Peak live activations of one sample (the static figure) plus the largest im2col / col2im buffer."""
        totals = self.model.totals
        elements = totals.peak_bytes // max(1, _dtype_width(self.graph.dtype)) // max(1, totals.batch)
        cols = 0
        for node in self.graph.nodes:
            a = self.figures[node.index].attrs
            if node.op == "conv":
                out = self.figures[node.index].shape
                cols = max(cols, min(_IM2COL_ELEMENTS, a.in_channels * math.prod(a.kernel) * math.prod(out[1:])))
            elif node.op == "deconv":
                ins = self.figures[node.inputs[0]].shape
                cols = max(cols, a.out_channels * math.prod(a.kernel) * math.prod(ins[1:]))
        return int((elements + cols) * self.dtype.itemsize)

    # -- compiling ------------------------------------------------------------------

    def _param(self, node: Any, name: str) -> Array | None:
        return self.weights.get(param_key(node.path, name))

    def _compile(self, node: Any) -> OpFn | None:
        if node.op == "input":
            return None
        a = self.figures[node.index].attrs
        op = node.op
        method = getattr(self, f"_op_{op}", None)
        if method is not None:
            return method(node, a)
        if op in _INPLACE:
            ufunc_args = _INPLACE[op]
            return lambda ins, ctx: np.clip(ins[0], *ufunc_args, out=ins[0] if ctx.inplace else None)
        if op in _ACTIVATIONS:
            act = _ACTIVATIONS[op]
            args = node.args
            return lambda ins, ctx: act(ins[0], args)
        raise NotImplementedError(f"the NumPy backend has no op '{op}'")

    def _op_conv(self, node: Any, a: Any) -> OpFn:
        w, b = self._param(node, "weight"), self._param(node, "bias")
        return self._conv_fn(a, w, b)

    @staticmethod
    def _conv_fn(a: Any, w: Array | None, b: Array | None) -> OpFn:
        def run(ins: list[Array], ctx: _Context) -> Array:
            return conv_nd(ins[0], w, b, a.stride, a.padding, a.padding_after, a.dilation,  # type: ignore[arg-type]
                           a.groups, a.padding_mode)
        return run

    def _op_deconv(self, node: Any, a: Any) -> OpFn:
        w, b = self._param(node, "weight"), self._param(node, "bias")
        return self._deconv_fn(a, w, b)

    @staticmethod
    def _deconv_fn(a: Any, w: Array | None, b: Array | None) -> OpFn:
        def run(ins: list[Array], ctx: _Context) -> Array:
            return conv_transpose_nd(ins[0], w, b, a.stride, a.padding, a.output_padding,  # type: ignore[arg-type]
                                     a.dilation, a.groups)
        return run

    def _op_linear(self, node: Any, a: Any) -> OpFn:
        w, b = self._param(node, "weight"), self._param(node, "bias")
        return self._linear_fn(w, b)

    @staticmethod
    def _linear_fn(w: Array | None, b: Array | None) -> OpFn:
        assert w is not None
        wt = w.T  # a view: BLAS reads the transpose in place

        def run(ins: list[Array], ctx: _Context) -> Array:
            y = np.matmul(ins[0], wt)
            if b is not None:
                y += b
            return y
        return run

    def _op_maxpool(self, node: Any, a: Any) -> OpFn:
        out = self.figures[node.index].shape[1:]
        return lambda ins, ctx: max_pool_nd(ins[0], a.kernel, a.stride, a.padding, a.dilation, out)

    def _op_avgpool(self, node: Any, a: Any) -> OpFn:
        out = self.figures[node.index].shape[1:]
        return lambda ins, ctx: avg_pool_nd(ins[0], a.kernel, a.stride, a.padding, out,
                                            a.count_include_pad)

    def _op_gap(self, node: Any, a: Any) -> OpFn:
        return lambda ins, ctx: ins[0].mean(axis=_spatial(ins[0]), keepdims=a.keepdims)

    def _op_gmp(self, node: Any, a: Any) -> OpFn:
        return lambda ins, ctx: ins[0].max(axis=_spatial(ins[0]), keepdims=a.keepdims)

    def _op_adaptive_avgpool(self, node: Any, a: Any) -> OpFn:
        return lambda ins, ctx: adaptive_avg_pool_nd(ins[0], a.out_size)

    def _op_adaptive_maxpool(self, node: Any, a: Any) -> OpFn:
        return lambda ins, ctx: adaptive_max_pool_nd(ins[0], a.out_size)

    def _op_upsample(self, node: Any, a: Any) -> OpFn:
        return lambda ins, ctx: upsample_nd(ins[0], a.size, a.scale, a.mode, a.align_corners,
                                            ctx.index_dtype)

    def _op_bn(self, node: Any, a: Any) -> OpFn:
        p = {k: self._param(node, k) for k in ("weight", "bias", "running_mean", "running_var")}
        eps = a.eps

        def run(ins: list[Array], ctx: _Context) -> Array:
            return batch_norm(ins[0], p["running_mean"], p["running_var"], p["weight"], p["bias"], eps, ctx.train)
        return run

    def _op_instancenorm(self, node: Any, a: Any) -> OpFn:
        p = {k: self._param(node, k) for k in ("weight", "bias", "running_mean", "running_var")}
        eps = a.eps

        def run(ins: list[Array], ctx: _Context) -> Array:
            return instance_norm(ins[0], p["running_mean"], p["running_var"], p["weight"], p["bias"], eps,
                                 not ctx.train)
        return run

    def _op_layernorm(self, node: Any, a: Any) -> OpFn:
        w, b = self._param(node, "weight"), self._param(node, "bias")
        return lambda ins, ctx: layer_norm(ins[0], a.normalized_shape, w, b, a.eps)

    def _op_groupnorm(self, node: Any, a: Any) -> OpFn:
        w, b = self._param(node, "weight"), self._param(node, "bias")
        return lambda ins, ctx: group_norm(ins[0], a.num_groups, w, b, a.eps)

    def _op_lrn(self, node: Any, a: Any) -> OpFn:
        return lambda ins, ctx: local_response_norm(ins[0], a.size, a.alpha, a.beta, a.k)

    def _op_softmax(self, node: Any, a: Any) -> OpFn:
        return lambda ins, ctx: softmax(ins[0], a.dim)

    def _op_log_softmax(self, node: Any, a: Any) -> OpFn:
        return lambda ins, ctx: log_softmax(ins[0], a.dim)

    def _op_flatten(self, node: Any, a: Any) -> OpFn:
        shape = self.figures[node.index].shape

        def run(ins: list[Array], ctx: _Context) -> Array:
            return ins[0].reshape(ins[0].shape[0], *shape)
        return run

    def _identity(self, node: Any, a: Any) -> OpFn:
        return lambda ins, ctx: ins[0]

    _op_identity = _op_dropout = _op_dropout1d = _op_dropout2d = _op_dropout3d = _identity

    def _op_add(self, node: Any, a: Any) -> OpFn:
        def run(ins: list[Array], ctx: _Context) -> Array:
            y = ins[0] + ins[1]
            for other in ins[2:]:
                y += other
            return y
        return run

    def _op_mean(self, node: Any, a: Any) -> OpFn:
        def run(ins: list[Array], ctx: _Context) -> Array:
            y = ins[0] + ins[1]
            for other in ins[2:]:
                y += other
            y /= len(ins)
            return y
        return run

    _op_join = _op_mean  # drop-path is for training; at inference a join is the mean of its inputs

    def _op_concat(self, node: Any, a: Any) -> OpFn:
        return lambda ins, ctx: np.concatenate(ins, axis=a.dim)

    # -- batch-norm folding -------------------------------------------------------

    def _fold_plan(self) -> dict[int, OpFn]:
        """conv / deconv / linear nodes whose only consumer is an inference batch norm, fused with it.

        The fused producer computes W' = W·s, b' = b·s + t (s = γ/√(σ²+ε), t = β − μ·s) and
        the batch norm passes its input through. Exact in real arithmetic; the
        BN reads its running statistics, so a training-mode call never uses it.
        """
        users = self.graph.consumers()
        plan: dict[int, OpFn] = {}
        for node in self.graph.nodes:
            if node.op != "bn" or len(node.inputs) != 1:
                continue
            a = self.figures[node.index].attrs
            prod = self.graph.nodes[node.inputs[0]]
            if not a.track_running_stats or prod.op not in ("conv", "deconv", "linear"):
                continue
            if users[prod.index] != [node.index] or prod.index == self.graph.output:
                continue
            if prod.op == "linear" and len(self.figures[prod.index].shape) != 1:
                continue  # the BN's channel axis is not the linear layer's feature axis
            mean, var = self._param(node, "running_mean"), self._param(node, "running_var")
            gamma, beta = self._param(node, "weight"), self._param(node, "bias")
            assert mean is not None and var is not None
            s = 1.0 / np.sqrt(var.astype(np.float64) + a.eps)
            if gamma is not None:
                s = s * gamma
            t = -mean * s
            if beta is not None:
                t = t + beta
            pa = self.figures[prod.index].attrs
            w = self._param(prod, "weight")
            b = self._param(prod, "bias")
            assert w is not None
            if prod.op == "deconv":
                g = pa.groups
                ws = w.reshape(g, w.shape[0] // g, w.shape[1], -1) * s.reshape(g, 1, w.shape[1], 1)
                w2 = ws.reshape(w.shape)
            else:
                w2 = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
            b2 = t if b is None else b * s + t
            w2, b2 = w2.astype(self.dtype), b2.astype(self.dtype)
            if prod.op == "conv":
                plan[prod.index] = self._conv_fn(pa, w2, b2)
            elif prod.op == "deconv":
                plan[prod.index] = self._deconv_fn(pa, w2, b2)
            else:
                plan[prod.index] = self._linear_fn(w2, b2)
            plan[node.index] = lambda ins, ctx: ins[0]
        return plan


def _root(a: Array) -> Array:
    """The array that owns the memory ``a`` views."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _dtype_width(name: str) -> int:
    return {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}.get(name, 4)


def _load_model(source: Any) -> Any:
    from specdsl.api import Model, load

    return source if isinstance(source, Model) else load(source)


def to_numpy(model_or_source: Any, weights: Mapping[str, Any] | str | os.PathLike[str] | None = None,
             dtype: str = "float64", **kw: Any) -> NumpyModel:
    """A NumPy forward for a spec (path, zoo name, spec text or a loaded ``Model``).

    ``weights``: a name -> array mapping (PyTorch ``state_dict`` keys), a path to an
    ``.npz`` file, or None for :func:`random_weights` (``seed=`` picks them). A spec
    the checker rejects raises :class:`specdsl.SpecError` before anything runs.
    """
    return NumpyModel(model_or_source, weights, dtype, **kw)


__all__ = [
    "NumpyModel",
    "adaptive_avg_pool_nd",
    "adaptive_max_pool_nd",
    "avg_pool_nd",
    "conv_nd",
    "conv_transpose_nd",
    "erf",
    "load_weights",
    "max_pool_nd",
    "random_weights",
    "save_weights",
    "to_numpy",
    "upsample_nd",
    "weight_shapes",
]
