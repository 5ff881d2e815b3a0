"""ONNX lowerings of grn, rmsnorm and simplenorm (specdsl/ops/norm_global.py), written out of ONNX's
reductions and element-wise ops (ONNX has none of them as one op; RMSNormalization is opset 23).

The normalised axis is the channels (axis 1) or, with ``channels_last``, the last axis; a [C] weight
is unsqueezed to (C, 1, ...) against a channels-first tensor and broadcasts as it is against a
channels-last one. No size is baked in, so they export with symbolic spatial sizes too."""

from __future__ import annotations

from specdsl.backends.onnx.builder import Builder
from specdsl.backends.onnx.helpers import per_channel
from specdsl.backends.onnx.site import LowerFn, Site

GRN_OPS = ("ReduceL2", "ReduceMean", "Add", "Div", "Mul", "Unsqueeze")
RMS_OPS = ("Mul", "ReduceMean", "Sub", "ReduceSumSquare", "Div", "Add", "Sqrt", "Unsqueeze")


def _axis(s: Site) -> int:
    return len(s.in_shape) if s.attrs.channels_last else 1  # counted with the batch axis


def _stats_shape(s: Site) -> tuple[int, ...]:
    """A statistic per position: the input's shape with the normalised axis 1."""
    shape = list(s.in_shape)
    shape[_axis(s) - 1] = 1
    return tuple(shape)


def _weight(b: Builder, s: Site, name: str) -> str:
    if s.attrs.channels_last:
        return s.w[name]
    return per_channel(b, s.w[name], s.attrs.channels, s.rank, f"{name}_c")


def grn(b: Builder, s: Site) -> str:
    """x + bias + weight · x · g / (mean_c(g) + eps), g the L2 norm over the spatial axes."""
    a, ndim = s.attrs, len(s.in_shape) + 1
    spatial = list(range(1, ndim - 1)) if a.channels_last else list(range(2, ndim))
    g_shape = tuple(n if k + 1 not in spatial else 1 for k, n in enumerate(s.in_shape))
    g = b.reduce("ReduceL2", s.x, spatial, True, g_shape, name="norm")
    mean = b.reduce("ReduceMean", g, [_axis(s)], True, (1,) * len(s.in_shape), name="channel_mean")
    den = b.op("Add", [mean, b.scalar(a.eps, "eps")], (1,) * len(s.in_shape), name="mean_eps")
    n = b.op("Div", [g, den], g_shape, name="response")
    scaled = b.op("Mul", [_weight(b, s, "weight"), b.op("Mul", [s.x, n], s.shape, name="x_response")], s.shape,
                  name="weighted")
    return b.op("Add", [s.x, b.op("Add", [scaled, _weight(b, s, "bias")], s.shape, name="shifted")], s.shape)


def _rms(centred: bool) -> LowerFn:
    def lower(b: Builder, s: Site) -> str:
        a, axis, stats = s.attrs, _axis(s), _stats_shape(s)
        if centred:  # the unbiased variance: Σ(x − mean)² / (n − 1)
            mean = b.reduce("ReduceMean", s.x, [axis], True, stats, name="mean")
            d = b.op("Sub", [s.x, mean], s.shape, name="centred")
            ss = b.reduce("ReduceSumSquare", d, [axis], True, stats, name="sum_squares")
            v = b.op("Div", [ss, b.scalar(a.channels - 1, "n_minus_1")], stats, name="var")
        else:
            v = b.reduce("ReduceMean", b.op("Mul", [s.x, s.x], s.shape, name="squared"), [axis], True, stats,
                         name="mean_square")
        std = b.op("Sqrt", [b.op("Add", [v, b.scalar(a.eps, "eps")], stats, name="v_eps")], stats, name="root")
        if "weight" not in s.w:
            return b.op("Div", [s.x, std], s.shape)
        y = b.op("Div", [s.x, std], s.shape, name="normalized")
        return b.op("Mul", [y, _weight(b, s, "weight")], s.shape)

    return lower


rmsnorm = _rms(centred=False)
simplenorm = _rms(centred=True)
