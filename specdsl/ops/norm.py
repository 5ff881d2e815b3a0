"""Normalisation layers: batch, layer, instance, group and local response norm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field

from specdsl.ops.rule import (
    Args,
    Inferred,
    OpRule,
    PositiveFloat,
    PositiveInt,
    RuleContext,
    RuleViolation,
    Shape,
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
    shape: Annotated[list[PositiveInt], Field(min_length=1)] | None = Field(
        default=None, description="normalized_shape: trailing axes; default the whole sample"
    )
    eps: PositiveFloat = 1e-5
    elementwise_affine: bool = True
    bias: bool = True


class GroupNormArgs(Args):
    groups: PositiveInt
    eps: PositiveFloat = 1e-5
    affine: bool = True


class LRNArgs(Args):
    size: PositiveInt
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


def infer_batchnorm(args: BatchNormArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    # nn.BatchNorm1d also accepts [F] (a batch of feature vectors).
    require_rank(x, (0, 1, 2, 3), "bn")
    check_in(args.in_, x[0], "channel")
    return Inferred(x, {"num_features": x[0], "affine": args.affine, "eps": args.eps,
                        "momentum": args.momentum, "track_running_stats": args.track_running_stats})


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
    return Inferred(x, {"num_features": x[0], "affine": args.affine, "eps": args.eps,
                        "momentum": args.momentum, "track_running_stats": args.track_running_stats})


def channel_norm_params(a: dict[str, Any], ins: Sequence[Shape], out: Shape) -> tuple[int, int]:
    c = a["num_features"]
    trainable = 2 * c if a["affine"] else 0
    # running_mean, running_var and the scalar num_batches_tracked.
    buffers = 2 * c + 1 if a["track_running_stats"] else 0
    return trainable, buffers


def infer_layernorm(args: LayerNormArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    shape = tuple(args.shape) if args.shape is not None else x
    if len(shape) > len(x) or tuple(x[len(x) - len(shape):]) != shape:
        raise RuleViolation(
            "E302",
            f"layernorm shape must equal the trailing axes of its input; received shape "
            f"{fmt_shape(shape)} for input {fmt_shape(x)}",
            hint="leave shape out to normalise the whole sample",
            field="shape",
        )
    return Inferred(x, {"normalized_shape": shape, "eps": args.eps,
                        "elementwise_affine": args.elementwise_affine, "bias": args.bias})


def layernorm_params(a: dict[str, Any], ins: Sequence[Shape], out: Shape) -> tuple[int, int]:
    if not a["elementwise_affine"]:
        return 0, 0
    n = numel(a["normalized_shape"])
    return n * (2 if a["bias"] else 1), 0


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
    return Inferred(x, {"num_groups": args.groups, "num_channels": x[0], "eps": args.eps, "affine": args.affine})


def groupnorm_params(a: dict[str, Any], ins: Sequence[Shape], out: Shape) -> tuple[int, int]:
    return (2 * a["num_channels"] if a["affine"] else 0), 0


def infer_lrn(args: LRNArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    require_rank(x, (1, 2, 3), "lrn")
    return Inferred(x, {"size": args.size, "alpha": args.alpha, "beta": args.beta, "k": args.k})


def per_element(a: dict[str, Any], ins: Sequence[Shape], out: Shape) -> int:
    return numel(out)


RULES = [
    OpRule("bn", "norm", BatchNormArgs, infer_batchnorm, channel_norm_params, extra=per_element,
           doc="batch norm over channels (nn.BatchNorm1d/2d/3d)", aliases=("batchnorm",)),
    OpRule("instancenorm", "norm", InstanceNormArgs, infer_instancenorm, channel_norm_params,
           extra=per_element, doc="instance norm (nn.InstanceNorm1d/2d/3d)"),
    OpRule("layernorm", "norm", LayerNormArgs, infer_layernorm, layernorm_params, extra=per_element,
           doc="layer norm over trailing axes (nn.LayerNorm)", aliases=("ln",)),
    OpRule("groupnorm", "norm", GroupNormArgs, infer_groupnorm, groupnorm_params, extra=per_element,
           doc="group norm (nn.GroupNorm)"),
    OpRule("lrn", "norm", LRNArgs, infer_lrn, extra=per_element,
           doc="local response norm across channels (nn.LocalResponseNorm)"),
]
