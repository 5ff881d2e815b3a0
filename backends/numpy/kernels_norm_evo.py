"""NumPy builds of evonorm and frn (specdsl/ops/norm_evo.py): entries of the table in ``lowerings.py``
(``BUILDS``), the reference the PyTorch modules and timm's are held to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Array = np.ndarray
OpFn = Callable[[list[Array], Any], Array]
Build = Callable[[Any, Any, Mapping[str, Array], tuple[int, ...]], OpFn]


def _c(v: Array, ndim: int) -> Array:
    """A [C] vector against (N, C, *spatial)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def group_std(x: Array, groups: int, eps: float) -> Array:
    """The biased standard deviation of each group of channels over the group and the spatial axes,
    + eps under the root, broadcast back to x's shape."""
    grouped = x.reshape(x.shape[0], groups, -1)
    std = np.sqrt(grouped.var(axis=2, keepdims=True) + x.dtype.type(eps))
    return np.broadcast_to(std, grouped.shape).reshape(x.shape)


def evo_norm(x: Array, w: Mapping[str, Array], a: Any) -> Array:
    """EvoNorm-S0: x · sigmoid(v · x) / d · weight + bias; without the gate x / d (s0a) or x (s0)."""
    if a.apply_act:
        x = x / (1 + np.exp(-(x * _c(w["v"], x.ndim)))) / group_std(x, a.groups, a.eps)
    elif a.normalises:
        x = x / group_std(x, a.groups, a.eps)
    return x * _c(w["weight"], x.ndim) + _c(w["bias"], x.ndim)


def filter_response_norm(x: Array, w: Mapping[str, Array], a: Any) -> Array:
    """x / √(mean of x² over the spatial axes + eps) · weight + bias, then max(·, tau) with the TLU."""
    ms = np.mean(x * x, axis=tuple(range(2, x.ndim)), keepdims=True)
    y = x / np.sqrt(ms + x.dtype.type(a.eps)) * _c(w["weight"], x.ndim) + _c(w["bias"], x.ndim)
    return np.maximum(y, _c(w["tau"], x.ndim)) if a.apply_act else y


def _evo(node: Any, a: Any, w: Mapping[str, Array], shape: tuple[int, ...]) -> OpFn:
    return lambda ins, ctx: evo_norm(ins[0], w, a)


def _frn(node: Any, a: Any, w: Mapping[str, Array], shape: tuple[int, ...]) -> OpFn:
    return lambda ins, ctx: filter_response_norm(ins[0], w, a)


BUILDS: dict[str, Build] = {"evonorm": _evo, "frn": _frn}
