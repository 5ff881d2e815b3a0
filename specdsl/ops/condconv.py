"""CondConv (Yang et al. 2019, "CondConv: Conditionally Parameterized Convolutions"; timm's CondConv2d):
a 2D convolution whose kernel is mixed per sample from E experts by routing weights.

Two inputs: the feature map [C, H, W] and the routing weights [E] (EfficientNet-CondConv's
``sigmoid(linear(gap(x)))``). The kernel of sample b is ``routing[b] @ weight``, the weight being timm's
``[E, out · C/groups · kh · kw]`` parameter (and the bias ``[E, out]``), so a checkpoint loads by name::

    @x -> adaptive_avgpool(1) -> flatten -> linear(4) as routing_fn -> sigmoid as r
    [@x, @r] -> condconv(64, k=3, pad=1, groups=64) as conv_dw

Figures: the shape, padding and field of a conv with the same arguments (on the feature map; the
routing is a global gate); MACs are the conv's plus the per-sample mixing, E multiply-adds per weight
(and per bias), as PyTorch's flop counter counts the matmul.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from specdsl.ops.conv import ConvArgs, ConvAttrs, channels_detail, conv_macs, infer_conv, window_summary
from specdsl.ops.model import Field
from specdsl.ops.rule import (
    RF,
    Args,
    Inferred,
    IntPerAxis,
    NonNegPerAxis,
    OpRule,
    PositiveInt,
    RuleContext,
    RuleViolation,
    Shape,
    TensorSpec,
    Trait,
    fmt_shape,
    numel,
    rf_window,
)


class CondConvArgs(Args):
    out: PositiveInt = Field(description="output channels")
    k: IntPerAxis = Field(description="kernel size, one number or one per spatial axis")
    stride: IntPerAxis = 1
    pad: NonNegPerAxis = Field(default=0, description="padding per axis (symmetric)")
    dilation: IntPerAxis = 1
    groups: PositiveInt = 1
    bias: bool = False


class CondConvAttrs(NamedTuple):
    conv: ConvAttrs  # the convolution each sample runs
    experts: int

    @property
    def expert_size(self) -> int:
        """Elements of one expert's kernel: out · C/groups · prod(k)."""
        c = self.conv
        return c.out_channels * (c.in_channels // c.groups) * numel(c.kernel)


def infer_condconv(args: CondConvArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x, routing = ins
    if len(x) != 3:
        raise RuleViolation("E306", f"condconv needs a feature map [C, H, W] first; received {fmt_shape(x)}",
                            hint="timm's CondConv2d is 2D")
    if len(routing) != 1:
        raise RuleViolation(
            "E312", f"condconv's second input is the routing weights [E], one per expert; received "
                    f"{fmt_shape(routing)}",
            hint="route with gap -> flatten -> linear(E) -> sigmoid")
    conv = ConvArgs.model_validate({"out": args.out, "k": args.k, "stride": args.stride, "pad": args.pad,
                                    "dilation": args.dilation, "groups": args.groups, "bias": args.bias})
    inferred = infer_conv(conv, [x], ctx)
    return Inferred(inferred.shape, CondConvAttrs(inferred.attrs, routing[0]))


def condconv_weights(a: CondConvAttrs) -> tuple[TensorSpec, ...]:
    fan_in = float(a.conv.in_channels // a.conv.groups * numel(a.conv.kernel))
    weight = TensorSpec("weight", (a.experts, a.expert_size), fan_in=fan_in)
    return (weight, TensorSpec("bias", (a.experts, a.conv.out_channels))) if a.conv.bias else (weight,)


def condconv_macs(a: CondConvAttrs, ins: Sequence[Shape], out: Shape) -> int:
    mixing = a.experts * (a.expert_size + (a.conv.out_channels if a.conv.bias else 0))
    return conv_macs(a.conv, ins[:1], out) + mixing


def condconv_adds(a: CondConvAttrs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) if a.conv.bias else 0


def rf_condconv(a: CondConvAttrs, ins: Sequence[RF]) -> RF:
    return rf_window(a.conv, ins[:1])


RULES = [
    OpRule("condconv", "conv", CondConvArgs, infer_condconv, condconv_weights, condconv_macs, condconv_adds,
           rf_condconv, positional=("out", "k"), summary=lambda op, a: window_summary(op, a.conv),
           detail=lambda op, a: channels_detail(op, a.conv), min_inputs=2, max_inputs=2, ranks=frozenset({2}),
           traits=frozenset({Trait.OVERWRITABLE_OUTPUT}),
           doc="conditionally parameterised 2D conv: the kernel mixed per sample from E experts by the routing "
               "weights [E] of the second input (timm's CondConv2d; EfficientNet-CondConv)"),
]
