"""NumPy kernels of the modern CNN vocabulary: pure functions of arrays in PyTorch's (N, C, *spatial) layout.

Activations (hardsigmoid, mish, selu, prelu), channel norm and layer scale, the layout ops
(pad, pixel shuffle / unshuffle) and the locally connected layer, written from PyTorch's
documented semantics. Nothing here knows about the graph or the op rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Array = np.ndarray

# nn.SELU's constants (Klambauer et al. 2017), as PyTorch writes them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

_PAD_MODES: dict[str, Literal["reflect", "edge", "wrap"]] = {
    "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _per_channel(v: Array, ndim: int) -> Array:
    """A [C] vector shaped to broadcast over (N, C, *spatial)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def hardsigmoid(x: Array) -> Array:
    return np.clip(x + 3, 0, 6) / 6


def mish(x: Array) -> Array:
    # softplus without overflow: log(1 + e^x) = logaddexp(0, x).
    return x * np.tanh(np.logaddexp(0, x))


def selu(x: Array) -> Array:
    return _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0)))


def prelu(x: Array, weight: Array) -> Array:
    """One slope for every channel, or one per channel (axis 1)."""
    slope = weight if weight.size == 1 else _per_channel(weight, x.ndim)
    return np.where(x >= 0, x, x * slope)


def channel_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    """Layer norm over the channel axis at every position (torchvision's LayerNorm2d)."""
    mu = x.mean(axis=1, keepdims=True)
    y = (x - mu) / np.sqrt(x.var(axis=1, keepdims=True) + eps)
    return y * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim)


def pad(x: Array, before: Sequence[int], after: Sequence[int], mode: str, value: float) -> Array:
    widths = [(0, 0), (0, 0), *zip(before, after, strict=True)]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=_PAD_MODES[mode])


def pixel_shuffle(x: Array, r: int) -> Array:
    """out[n, c, h·r + i, w·r + j] = x[n, c·r² + i·r + j, h, w]."""
    n, c, h, w = x.shape
    y = x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (r * r), h * r, w * r)


def pixel_unshuffle(x: Array, r: int) -> Array:
    """The inverse of :func:`pixel_shuffle`."""
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(n, c * r * r, h // r, w // r)


def locally_connected(x: Array, weight: Array, bias: Array | None, stride: Sequence[int],
                      padding: Sequence[int]) -> Array:
    """A conv with a kernel per output position: weight [*out_sizes, out, C, *k], bias [out, *out_sizes]."""
    rank = len(stride)
    out_sizes, out_c = weight.shape[:rank], weight.shape[rank]
    kernel = weight.shape[rank + 2:]
    xp = np.pad(x, [(0, 0), (0, 0), *((p, p) for p in padding)])
    windows = sliding_window_view(xp, kernel, axis=tuple(range(2, 2 + rank)))
    index = (slice(None), slice(None), *(slice(0, s * (o - 1) + 1, s) for s, o in zip(stride, out_sizes, strict=True)))
    windows = windows[index]  # [N, C, *out_sizes, *k]
    n, positions = x.shape[0], int(np.prod(out_sizes))
    order = (0, *range(2, 2 + rank), 1, *range(2 + rank, 2 + 2 * rank))
    cols = windows.transpose(order).reshape(n, positions, -1).transpose(1, 0, 2)  # [L, N, C·K]
    w = weight.reshape(positions, out_c, -1).transpose(0, 2, 1)  # [L, C·K, out]
    y = np.matmul(cols, w).transpose(1, 2, 0).reshape(n, out_c, *out_sizes)
    if bias is not None:
        y += bias
    return y
