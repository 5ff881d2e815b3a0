"""Ops that move or pad elements without weights: permute, pad, pixel shuffle and unshuffle.

``permute`` numbers axes as PyTorch does, the batch included (``permute([0, 2, 3, 1])`` makes a
[C, H, W] sample [H, W, C]); the batch must stay first. A receptive field is kept per spatial
axis of the model input, whatever position the axis has now; see :func:`rf_permute`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Annotated, Literal, NamedTuple

from specdsl.ops.model import Field
from specdsl.ops.rule import (
    RF,
    Args,
    AxisRF,
    Inferred,
    NonNegInt,
    OpRule,
    PositiveInt,
    RuleContext,
    RuleViolation,
    Shape,
    Trait,
    axis_name,
    fmt_shape,
    require_rank,
)


class PermuteArgs(Args):
    dims: Annotated[list[int], Field(min_length=2, max_length=5)] = Field(
        description="the new order of the axes in PyTorch numbering, the batch axis 0 first")


PadWidths = NonNegInt | Annotated[list[NonNegInt], Field(min_length=2, max_length=6)]


class PadArgs(Args):
    pad: PadWidths = Field(description="one width for every side, or per side in F.pad's order: "
                           "last axis first, [left, right, top, bottom, front, back]")
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant"
    value: float = Field(default=0.0, description="fill value of constant padding")


class ShuffleFactorArgs(Args):
    factor: PositiveInt = Field(description="upscale (pixel_shuffle) or downscale (pixel_unshuffle) factor r")


class PermuteAttrs(NamedTuple):
    dims: tuple[int, ...]  # PyTorch numbering, batch included, non-negative
    # Whether the spatial axes keep their relative order (the receptive field survives).
    keeps_rf: bool


class PadAttrs(NamedTuple):
    padding: tuple[int, ...]  # F.pad's order: last axis first, (before, after) pairs
    before: tuple[int, ...]  # per spatial axis, first axis first
    after: tuple[int, ...]
    mode: str
    value: float


class ShuffleFactorAttrs(NamedTuple):
    factor: int


def infer_permute(args: PermuteArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    ndim = len(x) + 1
    dims = tuple(d + ndim if d < 0 else d for d in args.dims)
    if sorted(dims) != list(range(ndim)):
        raise RuleViolation(
            "E371",
            f"permute dims must name each of the {ndim} axes of the batched input once (0..{ndim - 1}, "
            f"0 is the batch); received {args.dims} for input {fmt_shape(x)}",
            hint=f"e.g. {[0, *range(2, ndim), 1]} moves the channels last" if ndim > 2 else "write [0, 1]",
            field="dims",
        )
    if dims[0] != 0:
        raise RuleViolation(
            "E371",
            f"permute must keep the batch axis 0 first; received {args.dims}",
            hint="reorder only the axes after the batch",
            field="dims",
        )
    rest = dims[1:]
    # A rotation of the non-batch axes by one (channels last and back, ConvNeXt's [0, 2, 3, 1] and
    # [0, 3, 1, 2]) keeps the spatial axes in order, wherever the channel axis sits.
    n = len(rest)
    rotations = {tuple((k + shift) % n + 1 for k in range(n)) for shift in (0, 1, n - 1)}
    return Inferred(tuple(x[d - 1] for d in rest), PermuteAttrs(dims, rest in rotations))


def rf_permute(a: PermuteAttrs, ins: Sequence[RF]) -> RF:
    """Kept when the spatial axes keep their order, or when every axis sees the whole input (a gate:
    split attention's radix transpose); otherwise unknown (none is reported)."""
    rf = ins[0]
    return rf if a.keeps_rf or (rf and all(axis.stride == 0 for axis in rf)) else None


def permute_detail(op: str, a: PermuteAttrs) -> str:
    return "[" + ", ".join(map(str, a.dims)) + "]"


def infer_pad(args: PadArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    rank = require_rank(x, (1, 2, 3), "pad")
    if isinstance(args.pad, int):
        padding = (args.pad,) * (2 * rank)
    elif len(args.pad) != 2 * rank:
        raise RuleViolation(
            "E372",
            f"pad needs one width or two per spatial axis ({2 * rank} for input {fmt_shape(x)}, last axis "
            f"first as in F.pad); received {args.pad} ({len(args.pad)} values)",
            hint=f"write a single number or a list of {2 * rank}",
            field="pad",
        )
    else:
        padding = tuple(args.pad)
    # F.pad lists the last axis first.
    before = tuple(padding[2 * (rank - 1 - i)] for i in range(rank))
    after = tuple(padding[2 * (rank - 1 - i) + 1] for i in range(rank))
    sizes = []
    for i in range(rank):
        n, widest = x[1 + i], max(before[i], after[i])
        if args.mode == "reflect" and widest >= n:
            raise RuleViolation(
                "E309",
                f"reflect padding must be smaller than the input along {axis_name(rank, i)} (PyTorch rule); "
                f"received pad={widest} for size {n}",
                hint="use replicate or constant padding, or pad less", field="pad")
        if args.mode == "circular" and widest > n:
            raise RuleViolation(
                "E309",
                f"circular padding may wrap around the input at most once along {axis_name(rank, i)} "
                f"(PyTorch rule); received pad={widest} for size {n}", field="pad")
        sizes.append(n + before[i] + after[i])
    return Inferred((x[0], *sizes), PadAttrs(padding, before, after, args.mode, args.value))


def rf_pad(a: PadAttrs, ins: Sequence[RF]) -> RF:
    rf = ins[0]
    if rf is None:
        return None
    return tuple(AxisRF(r.size, r.stride, r.pad + p * r.stride) for r, p in zip(rf, a.before, strict=True))


def pad_detail(op: str, a: PadAttrs) -> str:
    widths = set(a.padding)
    text = str(a.padding[0]) if len(widths) == 1 else "[" + ", ".join(map(str, a.padding)) + "]"
    return text if a.mode == "constant" and a.value == 0 else f"{text} {a.mode}" if a.mode != "constant" \
        else f"{text} value {a.value:g}"


def infer_pixel_shuffle(args: ShuffleFactorArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    require_rank(x, (2,), "pixel_shuffle")
    r2 = args.factor ** 2
    if x[0] % r2:
        raise RuleViolation(
            "E373",
            f"pixel_shuffle needs channels divisible by factor² = {r2}; received {x[0]} channels "
            f"(input {fmt_shape(x)}) with factor={args.factor}",
            hint=f"give the layer before it a multiple of {r2} channels",
            field="factor",
        )
    return Inferred((x[0] // r2, x[1] * args.factor, x[2] * args.factor), ShuffleFactorAttrs(args.factor))


def infer_pixel_unshuffle(args: ShuffleFactorArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    require_rank(x, (2,), "pixel_unshuffle")
    r = args.factor
    for i, n in enumerate(x[1:]):
        if n % r:
            raise RuleViolation(
                "E373",
                f"pixel_unshuffle needs H and W divisible by factor={r}; received {axis_name(2, i)}={n} "
                f"(input {fmt_shape(x)})",
                hint=f"pad or crop the input to a multiple of {r}",
                field="factor",
            )
    return Inferred((x[0] * r * r, x[1] // r, x[2] // r), ShuffleFactorAttrs(r))


def _jump(stride: int | Fraction, factor: int) -> int | Fraction:
    j = Fraction(stride) / factor
    return int(j) if j.denominator == 1 else j


def rf_pixel_shuffle(a: ShuffleFactorAttrs, ins: Sequence[RF]) -> RF:
    """Each output sees one input position: as a transposed conv with k = s = r, p = 0."""
    rf = ins[0]
    if rf is None:
        return None
    out = []
    for r in rf:
        j = _jump(r.stride, a.factor)
        out.append(AxisRF(r.size + (a.factor - 1) * j, j, r.pad + (a.factor - 1) * j))
    return tuple(out)


def rf_pixel_unshuffle(a: ShuffleFactorAttrs, ins: Sequence[RF]) -> RF:
    """An r×r block of positions per output: as a conv with k = s = r, p = 0."""
    rf = ins[0]
    if rf is None:
        return None
    return tuple(AxisRF(r.size + (a.factor - 1) * r.stride, r.stride * a.factor, r.pad) for r in rf)


def factor_detail(op: str, a: ShuffleFactorAttrs) -> str:
    return f"×{a.factor}" if op == "pixel_shuffle" else f"÷{a.factor}"


RULES = [
    OpRule("permute", "shape", PermuteArgs, infer_permute, rf=rf_permute, positional=("dims",),
           detail=permute_detail, traits=frozenset({Trait.VIEW, Trait.REORDERS_AXES}),
           doc="reorders the axes, PyTorch numbering with the batch 0 first (torch.permute); a view"),
    OpRule("pad", "shape", PadArgs, infer_pad, rf=rf_pad, positional=("pad",), detail=pad_detail,
           traits=frozenset({Trait.OVERWRITABLE_OUTPUT, Trait.KEEPS_CHANNELS}), ranks=frozenset({1, 2, 3}),
           doc="pads each side of the spatial axes: constant, reflect, replicate or circular "
               "(nn.ConstantPad2d, nn.ReflectionPad2d, ...)"),
    OpRule("pixel_shuffle", "resize", ShuffleFactorArgs, infer_pixel_shuffle, rf=rf_pixel_shuffle,
           positional=("factor",), detail=factor_detail, ranks=frozenset({2}),
           doc="[C·r², H, W] -> [C, H·r, W·r] (nn.PixelShuffle)"),
    OpRule("pixel_unshuffle", "resize", ShuffleFactorArgs, infer_pixel_unshuffle, rf=rf_pixel_unshuffle,
           positional=("factor",), detail=factor_detail, ranks=frozenset({2}),
           doc="[C, H·r, W·r] -> [C·r², H, W] (nn.PixelUnshuffle)"),
]
