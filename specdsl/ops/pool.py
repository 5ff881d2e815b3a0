"""Max / average pooling, global pooling and adaptive pooling."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from specdsl.ops.conv import window_summary
from specdsl.ops.merge import WHOLE
from specdsl.ops.model import Field
from specdsl.ops.rule import (
    RF,
    Args,
    AxisRF,
    Inferred,
    IntPerAxis,
    NonNegPerAxis,
    OpRule,
    RuleContext,
    RuleViolation,
    Shape,
    Trait,
    Window,
    axis_name,
    numel,
    per_axis,
    require_rank,
    rf_flat,
    rf_window,
)
from specdsl.ops.window import check_pool_padding, window_output


class MaxPoolArgs(Args):
    k: IntPerAxis = Field(description="window size")
    stride: IntPerAxis | None = Field(default=None, description="defaults to k, as in PyTorch")
    pad: NonNegPerAxis = 0
    dilation: IntPerAxis = 1
    ceil_mode: bool = False


class AvgPoolArgs(Args):
    k: IntPerAxis
    stride: IntPerAxis | None = None
    pad: NonNegPerAxis = 0
    ceil_mode: bool = False
    count_include_pad: bool = True


class GlobalPoolArgs(Args):
    keepdims: bool = Field(default=False, description="keep [C, 1, 1] instead of [C]")


class AdaptivePoolArgs(Args):
    out: IntPerAxis = Field(description="output size per spatial axis")


class PoolAttrs(NamedTuple):
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool
    windows: tuple[Window, ...]
    count_include_pad: bool = True  # average pooling only


class GlobalPoolAttrs(NamedTuple):
    keepdims: bool
    rank: int


class AdaptiveBin(NamedTuple):
    """One axis of adaptive pooling: the widest bin, and the plain-pool step when bins tile evenly."""

    widest: int
    step: int | None


class AdaptivePoolAttrs(NamedTuple):
    out_size: tuple[int, ...]
    bins: tuple[AdaptiveBin, ...]


def _infer_pool(args: Any, ins: Sequence[Shape], ctx: RuleContext, op: str, dilated: bool) -> Inferred:
    x = ins[0]
    rank = require_rank(x, (1, 2, 3), op)
    kernel = per_axis(args.k, rank, "kernel size k", "k")
    stride = kernel if args.stride is None else per_axis(args.stride, rank, "stride", "stride")
    pad = per_axis(args.pad, rank, "padding", "pad")
    dilation = per_axis(args.dilation, rank, "dilation", "dilation") if dilated else (1,) * rank
    sizes = []
    for i in range(rank):
        check_pool_padding(kernel[i], pad[i], axis_name(rank, i))
        if not dilated and rank == 3 and x[1 + i] < kernel[i]:
            # nn.AvgPool3d alone requires the unpadded input to hold one kernel (PyTorch rule).
            raise RuleViolation(
                "E304",
                f"3-D average pooling needs an input at least as large as the kernel, padding not counted "
                f"(PyTorch rule); received k={kernel[i]} > {axis_name(rank, i)}={x[1 + i]}",
                hint="reduce the kernel; an earlier layer may have shrunk the input too far",
                field="k",
            )
        sizes.append(
            window_output(x[1 + i], kernel[i], stride[i], pad[i], pad[i], dilation[i],
                          rank=rank, axis=i, ceil_mode=args.ceil_mode, ctx=ctx)
        )
    attrs = PoolAttrs(
        kernel=kernel,
        stride=stride,
        padding=pad,
        dilation=dilation,
        ceil_mode=args.ceil_mode,
        windows=tuple(
            Window(d * (k - 1) + 1, s, p) for k, s, d, p in zip(kernel, stride, dilation, pad, strict=True)
        ),
        count_include_pad=True if dilated else args.count_include_pad,
    )
    return Inferred((x[0], *sizes), attrs)


def infer_maxpool(args: MaxPoolArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    return _infer_pool(args, ins, ctx, "maxpool", dilated=True)


def infer_avgpool(args: AvgPoolArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    return _infer_pool(args, ins, ctx, "avgpool", dilated=False)


def window_ops(a: PoolAttrs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) * numel(a.kernel)


def infer_global(args: GlobalPoolArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    rank = require_rank(x, (1, 2, 3), "global pooling")
    shape = (x[0], *(1,) * rank) if args.keepdims else (x[0],)
    return Inferred(shape, GlobalPoolAttrs(args.keepdims, rank))


def input_reads(a: Any, ins: Sequence[Shape], out: Shape) -> int:
    return numel(ins[0])


def rf_global(a: GlobalPoolAttrs, ins: Sequence[RF]) -> RF:
    # Every output sees the whole input; without keepdims no spatial axis is left to say so.
    if not a.keepdims or ins[0] is None:
        return rf_flat(a, ins)
    return (WHOLE,) * a.rank


def infer_adaptive(args: AdaptivePoolArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    rank = require_rank(x, (1, 2, 3), "adaptive pooling")
    out = per_axis(args.out, rank, "output size", "out")
    # PyTorch's bins: start = floor(i·n/o), end = ceil((i+1)·n/o).
    windows = []
    for n, o in zip(x[1:], out, strict=True):
        widest = max(math.ceil((i + 1) * n / o) - (i * n) // o for i in range(o)) if o <= 4096 else -(-n // o) + 1
        windows.append(AdaptiveBin(widest, n // o if n % o == 0 else None))
    return Inferred((x[0], *out), AdaptivePoolAttrs(out, tuple(windows)))


def adaptive_ops(a: AdaptivePoolAttrs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) * numel(b.widest for b in a.bins)


def adaptive_summary(op: str, a: AdaptivePoolAttrs) -> str:
    return f"{op} →{'×'.join(map(str, a.out_size))}"


def rf_adaptive(a: AdaptivePoolAttrs, ins: Sequence[RF]) -> RF:
    """Exact when every axis divides evenly (a plain pool with k = s = n / out)."""
    rf = ins[0]
    if rf is None:
        return None
    if all(n == 1 for n in a.out_size):
        return (WHOLE,) * len(rf)  # a global pool
    axes = []
    for axis, bin_ in zip(rf, a.bins, strict=True):
        if bin_.step is not None:
            step = bin_.step
            axes.append(AxisRF(axis.size + (step - 1) * axis.stride, axis.stride * step, axis.pad))
        else:
            # Uneven bins overlap; the widest bin bounds the field, the stride is not constant.
            return None
    return tuple(axes)


_WINDOW_TRAITS = frozenset({Trait.OVERWRITABLE_OUTPUT, Trait.KEEPS_CHANNELS})
_RANKS = frozenset({1, 2, 3})

RULES = [
    OpRule("maxpool", "pool", MaxPoolArgs, infer_maxpool, extra=window_ops, rf=rf_window,
           positional=("k", "stride"), summary=window_summary, traits=_WINDOW_TRAITS,
           ranks=_RANKS, doc="max pooling (nn.MaxPool1d/2d/3d)"),
    OpRule("avgpool", "pool", AvgPoolArgs, infer_avgpool, extra=window_ops, rf=rf_window,
           positional=("k", "stride"), summary=window_summary, traits=_WINDOW_TRAITS,
           ranks=_RANKS, doc="average pooling (nn.AvgPool1d/2d/3d)"),
    OpRule("gap", "pool", GlobalPoolArgs, infer_global, extra=input_reads, rf=rf_global,
           ranks=_RANKS, doc="global average pooling to [C] (or [C, 1, ...] with keepdims)",
           aliases=("global_avgpool",)),
    OpRule("gmp", "pool", GlobalPoolArgs, infer_global, extra=input_reads, rf=rf_global,
           ranks=_RANKS, doc="global max pooling to [C] (or [C, 1, ...] with keepdims)",
           aliases=("global_maxpool",)),
    OpRule("adaptive_avgpool", "pool", AdaptivePoolArgs, infer_adaptive, extra=adaptive_ops, rf=rf_adaptive,
           positional=("out",), summary=adaptive_summary, traits=frozenset({Trait.KEEPS_CHANNELS}),
           ranks=_RANKS, doc="adaptive average pooling (nn.AdaptiveAvgPool1d/2d/3d)"),
    OpRule("adaptive_maxpool", "pool", AdaptivePoolArgs, infer_adaptive, extra=adaptive_ops, rf=rf_adaptive,
           positional=("out",), summary=adaptive_summary, traits=frozenset({Trait.KEEPS_CHANNELS}),
           ranks=_RANKS, doc="adaptive max pooling (nn.AdaptiveMaxPool1d/2d/3d)"),
]
