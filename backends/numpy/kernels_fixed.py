"""NumPy builds of the ops that reshape a sample (reshape, unsqueeze, squeeze) or compute with
constants (scale, blurpool): entries of the table in ``lowerings.py``.

blurpool's filter is a non-persistent buffer (no weight of a file): it is computed here from the
attrs, as timm computes it, C(filt-1, k) / 2^(filt-1) in each direction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from specdsl.backends.numpy.kernels import conv_nd
from specdsl.ops.fixed import binomial_row

Array = np.ndarray
OpFn = Callable[[list[Array], Any], Array]

# F.pad's mode -> conv_nd's padding_mode (the same names but constant, which is zeros for a blur).
_CONV_PAD = {"constant": "zeros", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def reshape(node: Any, a: Any, w: Mapping[str, Array], shape: tuple[int, ...]) -> OpFn:
    """reshape, unsqueeze and squeeze: the sample takes its static output shape."""
    return lambda ins, ctx: ins[0].reshape(ins[0].shape[0], *shape)


def scale(node: Any, a: Any, w: Mapping[str, Array], shape: tuple[int, ...]) -> OpFn:
    return lambda ins, ctx: ins[0] * ins[0].dtype.type(a.value)


def blur_filter(filt: int, channels: int, dtype: np.dtype) -> Array:
    """[C, 1, filt, filt]: the outer product of the normalised binomial row with itself."""
    row = np.array(binomial_row(filt), dtype=np.float64) / 2 ** (filt - 1)
    return np.broadcast_to(np.outer(row, row), (channels, 1, filt, filt)).astype(dtype)


def blurpool(node: Any, a: Any, w: Mapping[str, Array], shape: tuple[int, ...]) -> OpFn:
    def run(ins: list[Array], ctx: Any) -> Array:
        x = ins[0]
        weight = blur_filter(a.filt, a.channels, x.dtype)
        return conv_nd(x, weight, None, a.stride, a.padding, a.padding, (1, 1), a.channels, _CONV_PAD[a.pad_mode])
    return run
