"""Activations, softmax, dropout and identity: shape-preserving ops."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from specdsl.ops.rule import (
    Args,
    Inferred,
    NoArgs,
    OpRule,
    Probability,
    RuleContext,
    RuleViolation,
    Shape,
    fmt_shape,
    numel,
    require_rank,
)


class LeakyReluArgs(Args):
    slope: float = Field(default=0.01, description="negative_slope")


class EluArgs(Args):
    alpha: float = 1.0


class GeluArgs(Args):
    approximate: Literal["none", "tanh"] = "none"


class SoftplusArgs(Args):
    beta: float = 1.0
    threshold: float = 20.0


class SoftmaxArgs(Args):
    dim: int = Field(default=1, description="axis in PyTorch numbering (0 is the batch)")


class DropoutArgs(Args):
    p: Probability = 0.5


def infer_same(args: Args, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    return Inferred(ins[0], args.model_dump())


def infer_softmax(args: SoftmaxArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    ndim = len(x) + 1  # with the batch axis
    if not -ndim <= args.dim < ndim or args.dim in (0, -ndim):
        raise RuleViolation(
            "E311",
            f"softmax dim must be a non-batch axis of the {ndim}-d batched input "
            f"(1..{ndim - 1} or -{ndim - 1}..-1); received dim={args.dim} for {fmt_shape(x)}",
            hint="dim 1 is the channel / feature axis",
            field="dim",
        )
    return Inferred(x, {"dim": args.dim})


def _infer_channel_dropout(rank: int, op: str):
    def infer(args: DropoutArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
        require_rank(ins[0], (rank,), op)
        return Inferred(ins[0], {"p": args.p})

    return infer


def per_element(a: dict, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out)


def _act(name: str, args: type[Args] = NoArgs, doc: str = "", aliases: tuple[str, ...] = ()) -> OpRule:
    return OpRule(name, "activation", args, infer_same, extra=per_element, doc=doc, aliases=aliases)


RULES = [
    _act("relu", doc="max(0, x)"),
    _act("relu6", doc="min(max(0, x), 6)"),
    _act("leaky_relu", LeakyReluArgs, doc="leaky ReLU (negative slope)", aliases=("leakyrelu",)),
    _act("elu", EluArgs, doc="exponential linear unit"),
    _act("gelu", GeluArgs, doc="Gaussian error linear unit"),
    _act("silu", doc="x·sigmoid(x), a.k.a. swish", aliases=("swish",)),
    _act("hardswish", doc="hard swish (MobileNetV3)"),
    _act("sigmoid", doc="logistic sigmoid"),
    _act("tanh", doc="hyperbolic tangent"),
    _act("softplus", SoftplusArgs, doc="log(1 + exp(βx))/β"),
    OpRule("softmax", "activation", SoftmaxArgs, infer_softmax, extra=per_element, doc="softmax along dim"),
    OpRule("log_softmax", "activation", SoftmaxArgs, infer_softmax, extra=per_element,
           doc="log-softmax along dim"),
    OpRule("dropout", "dropout", DropoutArgs, infer_same, doc="element-wise dropout (nn.Dropout)"),
    OpRule("dropout1d", "dropout", DropoutArgs, _infer_channel_dropout(1, "dropout1d"),
           ranks=frozenset({1}), doc="channel-wise dropout for [C, L] (nn.Dropout1d)"),
    OpRule("dropout2d", "dropout", DropoutArgs, _infer_channel_dropout(2, "dropout2d"),
           ranks=frozenset({2}), doc="channel-wise dropout for [C, H, W] (nn.Dropout2d)"),
    OpRule("dropout3d", "dropout", DropoutArgs, _infer_channel_dropout(3, "dropout3d"),
           ranks=frozenset({3}), doc="channel-wise dropout for [C, D, H, W] (nn.Dropout3d)"),
    OpRule("identity", "shape", NoArgs, infer_same, doc="passes its input through (nn.Identity)"),
]
