"""NumPy build of condconv (timm's CondConv2d): each sample convolved with its own kernel, routing[b] @
weight reshaped to [out, C/groups, kh, kw] (and routing[b] @ bias). An entry of the table in lowerings.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from specdsl.backends.numpy.kernels import conv_nd

Array = np.ndarray
OpFn = Callable[[list[Array], Any], Array]


def condconv(node: Any, a: Any, w: Mapping[str, Array], shape: tuple[int, ...]) -> OpFn:
    c = a.conv
    kernel = (c.out_channels, c.in_channels // c.groups, *c.kernel)

    def run(ins: list[Array], ctx: Any) -> Array:
        x, routing = ins
        weights = (routing @ w["weight"]).reshape(x.shape[0], *kernel)
        biases = routing @ w["bias"] if c.bias else None
        return np.concatenate([
            conv_nd(x[b:b + 1], weights[b], None if biases is None else biases[b], c.stride, c.padding,
                    c.padding_after, c.dilation, c.groups, "zeros")
            for b in range(x.shape[0])])
    return run
