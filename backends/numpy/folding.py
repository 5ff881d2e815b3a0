"""How a following inference batch norm folds into a conv, deconv or linear layer's weights, and the
scratch each needs: the ``fold_bn`` and ``scratch`` parts of those ops' entries in ``lowerings.py``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from specdsl.backends.numpy.kernels import IM2COL_ELEMENTS

Array = np.ndarray
Shape = tuple[int, ...]
Weights = Mapping[str, Array]


def fold_rows(a: Any, w: Weights, shape: Shape, s: Array, t: Array) -> dict[str, Array]:
    """Output channels on the weight's first axis (conv: (C_out, C_in/g, *K); linear: (out, in))."""
    weight, bias = w["weight"], w.get("bias")
    return {"weight": weight * s.reshape((-1,) + (1,) * (weight.ndim - 1)),
            "bias": t if bias is None else bias * s + t}


def fold_deconv(a: Any, w: Weights, shape: Shape, s: Array, t: Array) -> dict[str, Array]:
    """Weight (C_in, C_out/g, *K): output channel g·(C_out/g) + o sits at [g's inputs, o]."""
    weight, bias = w["weight"], w.get("bias")
    g = a.groups
    ws = weight.reshape(g, weight.shape[0] // g, weight.shape[1], -1) * s.reshape(g, 1, weight.shape[1], 1)
    return {"weight": ws.reshape(weight.shape), "bias": t if bias is None else bias * s + t}


def fold_linear(a: Any, w: Weights, shape: Shape, s: Array, t: Array) -> dict[str, Array] | None:
    if len(shape) != 1:
        return None  # the BN's channel axis is not the linear layer's feature axis
    return fold_rows(a, w, shape, s, t)


def conv_scratch(a: Any, ins: Sequence[Shape], out: Shape) -> int:
    return min(IM2COL_ELEMENTS, a.in_channels * math.prod(a.kernel) * math.prod(out[1:]))


def deconv_scratch(a: Any, ins: Sequence[Shape], out: Shape) -> int:
    return a.out_channels * math.prod(a.kernel) * math.prod(ins[0][1:])
