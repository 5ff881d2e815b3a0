"""The locally connected layer: a convolution whose weights are not shared between positions.

Each output position has its own kernel: weight ``[*out_sizes, out, C, *k]`` (for 2D
``[H_out, W_out, out, C, kh, kw]``, a conv weight per position, as Torch7's
SpatialConvolutionLocal kept it) and, with ``bias``, one bias per output element
``[out, *out_sizes]``. Its MACs are counted like a conv's, since each output is the same
weighted sum: ``out_positions · out · C · prod(k)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from specdsl.ops.conv import window_summary
from specdsl.ops.model import Field
from specdsl.ops.rule import (
    Args,
    Inferred,
    IntPerAxis,
    NonNegPerAxis,
    OpRule,
    PositiveInt,
    RuleContext,
    Shape,
    TensorSpec,
    Trait,
    Window,
    check_in,
    numel,
    per_axis,
    require_rank,
    rf_window,
)
from specdsl.ops.window import window_output


class LocalArgs(Args):
    out: PositiveInt = Field(description="output channels")
    k: IntPerAxis = Field(description="kernel size, one number or one per spatial axis")
    stride: IntPerAxis = 1
    pad: NonNegPerAxis = Field(default=0, description="zero padding on both sides of each spatial axis")
    bias: bool = True
    in_: PositiveInt | None = Field(default=None, alias="in", description="expected input channels (checked)")


class LocalAttrs(NamedTuple):
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    out_sizes: tuple[int, ...]
    bias: bool
    windows: tuple[Window, ...]
    dilation: tuple[int, ...]  # all 1 (no dilation); read by conv's window label


def infer_local(args: LocalArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    rank = require_rank(x, (1, 2, 3), "local")
    check_in(args.in_, x[0], "input channels")
    kernel = per_axis(args.k, rank, "kernel size k", "k")
    stride = per_axis(args.stride, rank, "stride", "stride")
    pad = per_axis(args.pad, rank, "padding", "pad")
    sizes = tuple(window_output(x[1 + i], kernel[i], stride[i], pad[i], pad[i], 1, rank=rank, axis=i, ctx=ctx)
                  for i in range(rank))
    windows = tuple(Window(k, s, p) for k, s, p in zip(kernel, stride, pad, strict=True))
    attrs = LocalAttrs(x[0], args.out, kernel, stride, pad, sizes, args.bias, windows, (1,) * rank)
    return Inferred((args.out, *sizes), attrs)


def local_weights(a: LocalAttrs) -> tuple[TensorSpec, ...]:
    fan_in = a.in_channels * numel(a.kernel)
    weight = TensorSpec("weight", (*a.out_sizes, a.out_channels, a.in_channels, *a.kernel), fan_in=float(fan_in))
    return (weight, TensorSpec("bias", (a.out_channels, *a.out_sizes))) if a.bias else (weight,)


def local_macs(a: LocalAttrs, ins: Sequence[Shape], out: Shape) -> int:
    # A conv's count: every output element is a weighted sum of C_in · prod(k) inputs.
    return numel(out) * a.in_channels * numel(a.kernel)


def local_bias(a: LocalAttrs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) if a.bias else 0


def local_detail(op: str, a: LocalAttrs) -> str:
    return f"{a.out_channels} ch"


RULES = [
    OpRule("local", "conv", LocalArgs, infer_local, local_weights, local_macs, local_bias, rf_window,
           positional=("out", "k"), summary=window_summary, detail=local_detail,
           traits=frozenset({Trait.OVERWRITABLE_OUTPUT}), ranks=frozenset({1, 2, 3}),
           doc="locally connected layer: a conv with a separate kernel at every output position "
               "(weight [*out_sizes, out, C, *k], bias [out, *out_sizes]); MACs counted as a conv's"),
]
