"""nn.Upsample in NumPy: PyTorch's coordinate maps, in the kernel's arithmetic type.

Each spatial axis is resampled in turn: nearest / nearest-exact by gathering,
(bi/tri)linear by two gathers and weights, bicubic by four (Keys' cubic
convolution, A = -0.75). The index arithmetic follows ATen's CPU kernels
exactly, including how a written ``scale`` drives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Array = np.ndarray


def _source_scale(n: int, out: int, scale: float | None, align_corners: bool, dt: type) -> Any:
    """ATen's area_pixel_compute_scale, in the kernel's arithmetic type."""
    if align_corners:
        return dt((n - 1) / (out - 1)) if out > 1 else dt(0.0)
    if scale is not None and scale > 0:
        return dt(1.0 / scale)
    return dt(n) / dt(out)


def _nearest_index(n: int, out: int, scale: float | None, exact: bool, dt: type, rank: int = 1) -> Array:
    """Source index of each output position: ``min(floor(i * s), n - 1)`` (``(i + 0.5) * s`` for nearest-exact).

    As in ATen's CPU kernel the product is formed in the kernel's arithmetic
    type (float32 for float32 tensors, float64 for float64) and rounded to
    float32 before the floor, so float32 and float64 models can pick different
    neighbours where ``i * s`` lands next to an integer. ATen copies the index where the output
    size equals the input size and no scale is written. Its 2-D kernel (``nearest_idx``) goes
    further, whatever scale is written: it copies the index whenever the output size equals the
    input size (``scale=1.3`` on 3 rows: 0, 1, 2) and takes ``i >> 1`` when it is exactly twice
    (``scale=2.3`` on 3 rows: 0, 0, 1, 1, 2, 2), where the 1-D and 3-D kernels apply the formula
    (0, 0, 1 and 0, 0, 0, 1, 1, 2): PyTorch 2.13 and 2.14 on the CPU, measured.
    """
    if not exact and out == n and (scale is None or rank == 2):
        return np.arange(n, dtype=np.int64)
    if not exact and out == 2 * n and rank == 2:
        return np.arange(out, dtype=np.int64) >> 1
    s = _source_scale(n, out, scale, False, dt)
    i: Array = np.arange(out).astype(dt)
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
    i: Array = np.arange(out).astype(dt)
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
            x = np.take(x, _nearest_index(n, o, scale, mode == "nearest-exact", dt, rank), axis=axis)
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
