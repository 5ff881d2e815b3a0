"""Norms without running statistics that timm's modern CNNs use: global response norm, RMS norm and
simple norm (ConvNeXt V2, convnext_*_rms).

``grn`` is ConvNeXt V2's global response normalisation (Woo et al. 2023), as timm's
``GlobalResponseNorm``: per sample and channel the L2 norm over the spatial axes, divided by its mean
over the channels (+ eps), scales the input, ``y = x + bias + weight · (x · n)``, with ``weight`` and
``bias`` [C], both zero at first (so the layer starts as the identity). Every output sees the whole
input, so its receptive field is global.

``rmsnorm`` is ``x · rsqrt(mean(x²) + eps) · weight`` over the channels at every position (timm's
``RmsNorm2d``), ``simplenorm`` the same with the unbiased variance in place of the mean square
(timm's ``SimpleNorm2d``: the input is divided by its standard deviation, not centred). Both have an
optional ``weight`` [C] (``affine``) and no bias.

Each op normalises the channel axis of a channels-first input; with ``channels_last`` it takes the
last axis as the channels (after ``permute``: timm's ``GlobalResponseNorm(channels_last=True)``,
``RmsNorm``, ``SimpleNorm``). Their MACs are 0, as every norm's; the "full" count adds one operation
per output element, as for the other norms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from specdsl.ops.merge import WHOLE
from specdsl.ops.model import Field
from specdsl.ops.norm import per_element
from specdsl.ops.rule import (
    RF,
    Args,
    Inferred,
    OpRule,
    PositiveFloat,
    RuleContext,
    RuleViolation,
    Shape,
    TensorSpec,
    Trait,
    fmt_shape,
    require_rank,
)

_CHANNELS_LAST = "normalise the last axis (a channels-last tensor, after permute) instead of the channels"


class GRNArgs(Args):
    eps: PositiveFloat = Field(default=1e-6, description="added to the channels' mean norm (timm: 1e-6)")
    channels_last: bool = Field(default=False, description=_CHANNELS_LAST)


class RMSNormArgs(Args):
    eps: PositiveFloat = Field(default=1e-6, description="added to the mean square or variance (timm: 1e-6)")
    affine: bool = Field(default=True, description="a learnable per-channel weight [C] (no bias)")
    channels_last: bool = Field(default=False, description=_CHANNELS_LAST)


class GRNAttrs(NamedTuple):
    channels: int
    eps: float
    channels_last: bool


class RMSNormAttrs(NamedTuple):
    """rmsnorm and simplenorm: ``channels`` is the size of the normalised axis."""

    channels: int
    eps: float
    affine: bool
    channels_last: bool


def infer_grn(args: GRNArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    # The norm runs over the spatial axes: a [C] feature vector has none.
    require_rank(x, (1, 2, 3), "grn")
    return Inferred(x, GRNAttrs(x[-1] if args.channels_last else x[0], args.eps, args.channels_last))


def grn_weights(a: GRNAttrs) -> tuple[TensorSpec, ...]:
    # timm's GlobalResponseNorm starts both at zero: the block's MLP starts without the response term.
    return (TensorSpec("weight", (a.channels,), init="zeros"), TensorSpec("bias", (a.channels,), init="zeros"))


def rf_grn(a: GRNAttrs, ins: Sequence[RF]) -> RF:
    """Each output is scaled by norms over the whole spatial extent: every axis sees all of the input."""
    return None if ins[0] is None else (WHOLE,) * len(ins[0])


def _infer_rms(args: RMSNormArgs, x: Shape) -> Inferred:
    channels = x[-1] if args.channels_last else x[0]
    return Inferred(x, RMSNormAttrs(channels, args.eps, args.affine, args.channels_last))


def infer_rmsnorm(args: RMSNormArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    return _infer_rms(args, ins[0])


def infer_simplenorm(args: RMSNormArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    if (x[-1] if args.channels_last else x[0]) == 1:
        # torch.var of one value (unbiased: n - 1 = 0) is nan, with a warning.
        raise RuleViolation(
            "E304",
            f"simplenorm needs more than one value on its normalised axis (the unbiased variance of one "
            f"value is undefined, PyTorch's rule); received {fmt_shape(x)}",
            hint="rmsnorm normalises a single channel; or give the layer before it more channels",
            field="channels_last" if args.channels_last else None,
        )
    return _infer_rms(args, x)


def rms_weights(a: RMSNormAttrs) -> tuple[TensorSpec, ...]:
    return (TensorSpec("weight", (a.channels,), init="ones"),) if a.affine else ()


def norm_detail(op: str, a: GRNAttrs | RMSNormAttrs) -> str:
    return "channels last" if a.channels_last else ""


_TRAITS = frozenset({Trait.OVERWRITABLE_OUTPUT, Trait.KEEPS_CHANNELS, Trait.KEEPS_LAYOUT})

RULES = [
    OpRule("grn", "norm", GRNArgs, infer_grn, grn_weights, extra=per_element, rf=rf_grn, detail=norm_detail,
           traits=_TRAITS, ranks=frozenset({1, 2, 3}),
           doc="global response norm (ConvNeXt V2, timm's GlobalResponseNorm): x + bias + weight·x·n, n the "
               "spatial L2 norm over its channel mean; weight and bias [C], zero at first"),
    OpRule("rmsnorm", "norm", RMSNormArgs, infer_rmsnorm, rms_weights, extra=per_element, detail=norm_detail,
           traits=_TRAITS, aliases=("rmsnorm2d",),
           doc="RMS norm over the channels at every position, x·rsqrt(mean(x²) + eps)·weight (timm's RmsNorm2d; "
               "RmsNorm and nn.RMSNorm with channels_last)"),
    OpRule("simplenorm", "norm", RMSNormArgs, infer_simplenorm, rms_weights, extra=per_element,
           detail=norm_detail, traits=_TRAITS, aliases=("simplenorm2d",),
           doc="x·rsqrt(var(x) + eps)·weight over the channels at every position, the unbiased variance, "
               "not centred (timm's SimpleNorm2d; SimpleNorm with channels_last)"),
]
