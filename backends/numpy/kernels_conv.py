"""What a convolution does beyond ``conv_nd``: weight standardisation (timm's StdConv2d and
ScaledStdConv2d) and TensorFlow's SAME padding computed from the input's size (timm's pad_same)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from specdsl.ops.window import tf_same_padding

Array = np.ndarray


def standardised_weight(weight: Array, gain: Array | None, gamma: float, eps: float) -> Array:
    """(w - mean) / sqrt(var + eps) per output channel, the variance biased (a training-mode batch norm
    over each channel's weights); with a gain, times gain · gamma / sqrt(fan_in)."""
    rows = weight.reshape(weight.shape[0], -1)
    mean = rows.mean(axis=1, keepdims=True)
    var = rows.var(axis=1, keepdims=True)
    out = (rows - mean) / np.sqrt(var + eps)
    if gain is not None:
        out = out * (gain.reshape(-1, 1) * (gamma * rows.shape[1] ** -0.5))
    return out.reshape(weight.shape).astype(weight.dtype, copy=False)


def conv_padding(x_sizes: Sequence[int], a: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(before, after) per spatial axis: TensorFlow's SAME for this input with pad=same_tf, else the rule's."""
    if not a.same_tf:
        return a.padding, a.padding_after
    pads = [tf_same_padding(n, k, s, d) for n, k, s, d in zip(x_sizes, a.kernel, a.stride, a.dilation, strict=True)]
    return tuple(p for p, _ in pads), tuple(q for _, q in pads)


__all__ = ["conv_padding", "standardised_weight"]
