"""Normalisation layers: batch, layer, instance, group, channel and local response norm; layer scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, NamedTuple

from specdsl.ops.model import Field
from specdsl.ops.rule import (
    NODE_ITSELF,
    Args,
    Inferred,
    OpRule,
    PositiveFloat,
    PositiveInt,
    RuleContext,
    RuleViolation,
    Shape,
    TensorSpec,
    Trait,
    check_in,
    fmt_shape,
    numel,
    require_rank,
)

Momentum = float | None


class BatchNormArgs(Args):
    eps: PositiveFloat = 1e-5
    momentum: Momentum = 0.1
    affine: bool = True
    track_running_stats: bool = True
    in_: PositiveInt | None = Field(default=None, alias="in", description="expected channels (checked)")


class InstanceNormArgs(Args):
    eps: PositiveFloat = 1e-5
    momentum: Momentum = 0.1
    affine: bool = False
    track_running_stats: bool = False
    in_: PositiveInt | None = Field(default=None, alias="in")


class LayerNormArgs(Args):
    shape: PositiveInt | Annotated[list[PositiveInt], Field(min_length=1)] | None = Field(
        default=None, description="normalized_shape: trailing axes (an int is the last axis, as in "
        "nn.LayerNorm(96)); default the whole sample"
    )
    eps: PositiveFloat = 1e-5
    elementwise_affine: bool = True
    bias: bool = True


class GroupNormArgs(Args):
    groups: PositiveInt
    eps: PositiveFloat = 1e-5
    affine: bool = True


class ChannelNormArgs(Args):
    eps: PositiveFloat = 1e-5
    in_: PositiveInt | None = Field(default=None, alias="in", description="expected channels (checked)")


class LayerScaleArgs(Args):
    init: float = Field(default=1e-6, description="initial value of every per-channel scale")
    flat: bool = Field(default=False, description="gamma shaped [C], viewed as [1, C, 1, ..., 1] in forward "
                       "(timm's gamma); else [C, 1, ..., 1] (torchvision's layer_scale)")


class LRNArgs(Args):
    size: PositiveInt
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


class ChannelNormAttrs(NamedTuple):
    """Batch and instance norm."""

    num_features: int
    eps: float
    momentum: float | None
    affine: bool
    track_running_stats: bool


class LayerNormAttrs(NamedTuple):
    normalized_shape: tuple[int, ...]
    eps: float
    elementwise_affine: bool
    bias: bool


class ChannelLayerNormAttrs(NamedTuple):
    """Layer norm over the channel axis at every position (torchvision's LayerNorm2d)."""

    num_channels: int
    eps: float


class LayerScaleAttrs(NamedTuple):
    # The parameter: [C, 1, ..., 1], one scale per channel broadcast over the spatial axes; or [C] (flat).
    shape: tuple[int, ...]
    init: float
    # How forward views a flat parameter against the batch, (1, -1, 1, ..., 1) as timm's
    # gamma.reshape(1, -1, 1, 1); () when it is used as it is.
    view: tuple[int, ...] = ()


class GroupNormAttrs(NamedTuple):
    num_groups: int
    num_channels: int
    eps: float
    affine: bool


def _channel_norm(x: Shape, args: BatchNormArgs | InstanceNormArgs) -> Inferred:
    return Inferred(x, ChannelNormAttrs(x[0], args.eps, args.momentum, args.affine, args.track_running_stats))


def infer_batchnorm(args: BatchNormArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    # nn.BatchNorm1d also accepts [F] (a batch of feature vectors).
    require_rank(x, (0, 1, 2, 3), "bn")
    check_in(args.in_, x[0], "channel")
    return _channel_norm(x, args)


def infer_instancenorm(args: InstanceNormArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    require_rank(x, (1, 2, 3), "instancenorm")
    check_in(args.in_, x[0], "channel")
    if numel(x[1:]) == 1:
        # PyTorch: "Expected more than 1 spatial element when training".
        raise RuleViolation(
            "E304",
            f"instancenorm needs more than one spatial element per channel (PyTorch rule); "
            f"received {fmt_shape(x)}",
            hint="an earlier layer may have shrunk the input too far; bn or layernorm work on a 1×1 map",
        )
    return _channel_norm(x, args)


def _affine_weights(shape: Shape, bias: bool = True) -> tuple[TensorSpec, ...]:
    weight = TensorSpec("weight", shape, init="ones")
    return (weight, TensorSpec("bias", shape, init="zeros")) if bias else (weight,)


def channel_norm_weights(a: ChannelNormAttrs) -> tuple[TensorSpec, ...]:
    c = (a.num_features,)
    affine = _affine_weights(c) if a.affine else ()
    if not a.track_running_stats:
        return affine
    return (*affine, TensorSpec("running_mean", c, "buffer"), TensorSpec("running_var", c, "buffer"),
            TensorSpec("num_batches_tracked", (), "buffer", dtype="int64"))


def infer_layernorm(args: LayerNormArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    shape = x if args.shape is None else (args.shape,) if isinstance(args.shape, int) else tuple(args.shape)
    if len(shape) > len(x) or tuple(x[len(x) - len(shape):]) != shape:
        raise RuleViolation(
            "E302",
            f"layernorm shape must equal the trailing axes of its input; received shape "
            f"{fmt_shape(shape)} for input {fmt_shape(x)}",
            hint="leave shape out to normalise the whole sample",
            field="shape",
        )
    return Inferred(x, LayerNormAttrs(shape, args.eps, args.elementwise_affine, args.bias))


def layernorm_weights(a: LayerNormAttrs) -> tuple[TensorSpec, ...]:
    return _affine_weights(a.normalized_shape, a.bias) if a.elementwise_affine else ()


def infer_channel_norm(args: ChannelNormArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    check_in(args.in_, x[0], "channel")
    return Inferred(x, ChannelLayerNormAttrs(x[0], args.eps))


def channel_layernorm_weights(a: ChannelLayerNormAttrs) -> tuple[TensorSpec, ...]:
    return _affine_weights((a.num_channels,))


def infer_layer_scale(args: LayerScaleArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    ones = (1,) * (len(x) - 1)
    if args.flat:
        return Inferred(x, LayerScaleAttrs((x[0],), args.init, (1, -1, *ones)))
    return Inferred(x, LayerScaleAttrs((x[0], *ones), args.init))


def layer_scale_weights(a: LayerScaleAttrs) -> tuple[TensorSpec, ...]:
    # The block's own parameter, filled with `init` by each backend (torchvision's CNBlock:
    # torch.ones(C, 1, 1) * init; timm's ConvNeXtBlock: torch.ones(C) * init), keyed by the node's path.
    return (TensorSpec(NODE_ITSELF, a.shape),)


def layer_scale_detail(op: str, a: LayerScaleAttrs) -> str:
    return f"init {a.init:g}, flat" if a.view else f"init {a.init:g}"


def infer_groupnorm(args: GroupNormArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    require_rank(x, (0, 1, 2, 3), "groupnorm")
    if x[0] % args.groups:
        raise RuleViolation(
            "E303",
            f"groupnorm groups must divide the channels; received groups={args.groups}, channels={x[0]}",
            hint="pick groups from the divisors of the channel count",
            field="groups",
        )
    return Inferred(x, GroupNormAttrs(args.groups, x[0], args.eps, args.affine))


def groupnorm_weights(a: GroupNormAttrs) -> tuple[TensorSpec, ...]:
    return _affine_weights((a.num_channels,)) if a.affine else ()


def infer_lrn(args: LRNArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    require_rank(x, (1, 2, 3), "lrn")
    return Inferred(x, args)


def per_element(a: Any, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out)


_NORM_TRAITS = frozenset({Trait.OVERWRITABLE_OUTPUT, Trait.KEEPS_CHANNELS})

RULES = [
    OpRule("bn", "norm", BatchNormArgs, infer_batchnorm, channel_norm_weights, extra=per_element,
           traits=_NORM_TRAITS, doc="batch norm over channels (nn.BatchNorm1d/2d/3d)", aliases=("batchnorm",)),
    OpRule("instancenorm", "norm", InstanceNormArgs, infer_instancenorm, channel_norm_weights,
           extra=per_element, traits=_NORM_TRAITS, doc="instance norm (nn.InstanceNorm1d/2d/3d)"),
    OpRule("layernorm", "norm", LayerNormArgs, infer_layernorm, layernorm_weights, extra=per_element,
           positional=("shape",), traits=_NORM_TRAITS | {Trait.KEEPS_LAYOUT},
           doc="layer norm over trailing axes (nn.LayerNorm)",
           aliases=("ln",)),
    OpRule("groupnorm", "norm", GroupNormArgs, infer_groupnorm, groupnorm_weights, extra=per_element,
           positional=("groups",), traits=_NORM_TRAITS, doc="group norm (nn.GroupNorm)"),
    OpRule("channel_norm", "norm", ChannelNormArgs, infer_channel_norm, channel_layernorm_weights,
           extra=per_element, traits=_NORM_TRAITS, aliases=("layernorm2d",),
           doc="layer norm over the channels at every position, weight and bias [C] (torchvision's LayerNorm2d)"),
    OpRule("layer_scale", "norm", LayerScaleArgs, infer_layer_scale, layer_scale_weights, extra=per_element,
           positional=("init",), detail=layer_scale_detail,
           traits=frozenset({Trait.OVERWRITABLE_OUTPUT, Trait.KEEPS_CHANNELS}),
           doc="learnable per-channel scale of shape [C, 1, ..., 1], or [C] with flat (ConvNeXt's layer_scale, "
               "timm's gamma)"),
    OpRule("lrn", "norm", LRNArgs, infer_lrn, extra=per_element, positional=("size",),
           traits=frozenset({Trait.KEEPS_CHANNELS}),
           doc="local response norm across channels (nn.LocalResponseNorm)"),
]
