"""NumPy builds of grn, rmsnorm and simplenorm (specdsl/ops/norm_global.py): entries of the table in
``lowerings.py`` (``BUILDS``), the reference the PyTorch modules and timm's are held to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Array = np.ndarray
OpFn = Callable[[list[Array], Any], Array]
Build = Callable[[Any, Any, Mapping[str, Array], tuple[int, ...]], OpFn]


def _broadcast(v: Array, ndim: int, channels_last: bool) -> Array:
    """A [C] vector against (N, C, *spatial), or against (N, ..., C) when the channels are last."""
    return v if channels_last else v.reshape((1, -1) + (1,) * (ndim - 2))


def global_response_norm(x: Array, weight: Array, bias: Array, eps: float, channels_last: bool) -> Array:
    """x + bias + weight · x · n: n the L2 norm over the spatial axes, divided by its channel mean + eps."""
    spatial = tuple(range(1, x.ndim - 1)) if channels_last else tuple(range(2, x.ndim))
    g = np.sqrt(np.sum(x * x, axis=spatial, keepdims=True))
    n = g / (g.mean(axis=-1 if channels_last else 1, keepdims=True) + eps)
    return x + _broadcast(bias, x.ndim, channels_last) + _broadcast(weight, x.ndim, channels_last) * (x * n)


def rms_norm(x: Array, weight: Array | None, eps: float, channels_last: bool, centred: bool) -> Array:
    """x / √(mean(x²) + eps) over the channels (or the last axis); with ``centred`` the unbiased variance."""
    axis = -1 if channels_last else 1
    v = x.var(axis=axis, ddof=1, keepdims=True) if centred else np.mean(x * x, axis=axis, keepdims=True)
    y = x / np.sqrt(v + x.dtype.type(eps))
    return y if weight is None else y * _broadcast(weight, x.ndim, channels_last)


def _grn(node: Any, a: Any, w: Mapping[str, Array], shape: tuple[int, ...]) -> OpFn:
    weight, bias = w["weight"], w["bias"]
    return lambda ins, ctx: global_response_norm(ins[0], weight, bias, a.eps, a.channels_last)


def _rms(centred: bool) -> Build:
    def build(node: Any, a: Any, w: Mapping[str, Array], shape: tuple[int, ...]) -> OpFn:
        weight = w.get("weight")
        return lambda ins, ctx: rms_norm(ins[0], weight, a.eps, a.channels_last, centred)

    return build


BUILDS: dict[str, Build] = {"grn": _grn, "rmsnorm": _rms(centred=False), "simplenorm": _rms(centred=True)}
