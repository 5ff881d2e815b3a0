"""ONNX lowerings of the ops that reshape a sample (reshape, unsqueeze, squeeze) or compute with
constants (scale, blurpool). blurpool's filter, a non-persistent buffer in PyTorch, is a constant
initializer here, computed from the attrs as timm computes it."""

from __future__ import annotations

import math

import numpy as np

from specdsl.backends.onnx.builder import Builder
from specdsl.backends.onnx.helpers import pad
from specdsl.backends.onnx.site import Site
from specdsl.ops.fixed import binomial_row


def reshape(b: Builder, s: Site) -> str:
    # The sizes the spec wrote (one -1 inferred); Reshape's 0 keeps the batch, whatever its size.
    if math.prod(s.in_shape[1:]) != 1:
        s.fixed_size("a reshape of spatial axes writes their sizes")
    return b.reshape(s.x, list(s.attrs.shape), s.shape)


def unsqueeze(b: Builder, s: Site) -> str:
    return b.unsqueeze(s.x, [s.attrs.dim], s.shape)


def squeeze(b: Builder, s: Site) -> str:
    return b.op("Squeeze", [s.x, b.ints([s.attrs.dim], "axes")], s.shape)


def scale(b: Builder, s: Site) -> str:
    return b.op("Mul", [s.x, b.scalar(s.attrs.value, "scale")], s.shape)


def blurpool(b: Builder, s: Site) -> str:
    a = s.attrs
    row = np.array(binomial_row(a.filt), dtype=np.float64) / 2 ** (a.filt - 1)
    filt = np.broadcast_to(np.outer(row, row), (a.channels, 1, a.filt, a.filt))
    x = pad(b, s.x, s.in_shape, a.padding, a.padding, a.pad_mode)
    return b.op("Conv", [x, b.const(filt, label="filt")], s.shape, kernel_shape=[a.filt, a.filt],
                strides=list(a.stride), pads=[0, 0, 0, 0], group=a.channels)
