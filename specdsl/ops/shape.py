"""Ops that change a tensor's layout or size: upsample, crop, flatten, and the fully connected layer.

upsample and crop also take a second input whose spatial size they copy (`[@x, @ref] ->
upsample`, `[@x, @skip] -> crop`), so heads follow the model input when it changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

from specdsl.ops.model import Field
from specdsl.ops.rule import (
    RF,
    Args,
    AxisRF,
    Inferred,
    OpRule,
    PositiveFloat,
    PositiveInt,
    RuleContext,
    RuleViolation,
    Shape,
    TensorSpec,
    Trait,
    axis_name,
    check_in,
    fmt_shape,
    numel,
    per_axis,
    require_rank,
    rf_flat,
    rf_pointwise,
    spatial_rank,
)

_MODES_BY_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


class UpsampleArgs(Args):
    scale: PositiveFloat | list[PositiveFloat] | None = Field(default=None, description="scale_factor")
    size: PositiveInt | list[PositiveInt] | None = Field(default=None, description="output size")
    mode: Literal["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear"] = "nearest"
    align_corners: bool | None = None


class CropArgs(Args):
    pass


class FlattenArgs(Args):
    start_dim: int = Field(default=1, description="PyTorch numbering: 0 is the batch axis")
    end_dim: int = -1


class LinearArgs(Args):
    out: PositiveInt = Field(description="output features")
    bias: bool = True
    in_: PositiveInt | None = Field(default=None, alias="in", description="expected input features (checked)")


class UpsampleAttrs(NamedTuple):
    size: tuple[int, ...]
    scale: tuple[float, ...] | None  # as written; None when a size was given
    mode: str
    align_corners: bool | None
    # The size is the second input's (at run time too), not written in the spec.
    like: bool = False


class CropAttrs(NamedTuple):
    offsets: tuple[int, ...]  # first kept index per spatial axis: (n - m) // 2, the odd pixel goes last
    size: tuple[int, ...]


class FlattenAttrs(NamedTuple):
    start_dim: int  # PyTorch numbering, made non-negative
    end_dim: int
    whole: bool  # folds every axis but the batch (the default)


class LinearAttrs(NamedTuple):
    in_features: int
    out_features: int
    bias: bool


def _reference(op: str, ins: Sequence[Shape], rank: int) -> Shape:
    """The spatial size a two-input upsample or crop copies from its second input."""
    ref = ins[1]
    if spatial_rank(ref) != rank:
        raise RuleViolation(
            "E306",
            f"{op} copies the spatial size of its second input, which needs the {rank} spatial axes of the "
            f"first; received {fmt_shape(ins[0])} (input 1) and {fmt_shape(ref)} (input 2)",
            hint="refer to a feature map of the same kind, or to @input",
        )
    return ref[1:]


def infer_upsample(args: UpsampleArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    rank = require_rank(x, (1, 2, 3), "upsample")
    if len(ins) == 2 and (args.scale is not None or args.size is not None):
        raise RuleViolation(
            "E313", "upsample with two inputs resizes the first to the second's spatial size; received "
            + ("scale" if args.scale is not None else "size") + " as well",
            hint="drop it, or resize one input: upsample(scale=2)",
            field="scale" if args.scale is not None else "size",
        )
    if len(ins) == 1 and (args.scale is None) == (args.size is None):
        raise RuleViolation(
            "E313", "upsample needs exactly one of scale or size; received "
            + ("both" if args.scale is not None else "neither"),
            hint="write upsample: {scale: 2} or upsample: {size: [56, 56]}",
        )
    wanted = _MODES_BY_RANK.get(args.mode)
    if wanted is not None and wanted != rank:
        raise RuleViolation(
            "E306",
            f"upsample mode '{args.mode}' is for {wanted}-D inputs; received a {rank}-D input {fmt_shape(x)}",
            hint="use " + next(m for m, r in _MODES_BY_RANK.items() if r == rank) + " for this input",
            field="mode",
        )
    if args.align_corners is not None and wanted is None:
        raise RuleViolation(
            "E319", f"align_corners applies only to interpolating modes; received mode '{args.mode}'",
            field="align_corners",
        )
    if len(ins) == 2:
        sizes = _reference("upsample", ins, rank)
        return Inferred((x[0], *sizes), UpsampleAttrs(tuple(sizes), None, args.mode, args.align_corners, like=True))
    if args.size is not None:
        sizes = per_axis(args.size, rank, "upsample size", "size")
        scales: tuple[float, ...] | None = None
    else:
        assert args.scale is not None
        scale_list = args.scale if isinstance(args.scale, list) else [args.scale] * rank
        if len(scale_list) != rank:
            raise RuleViolation("E305", f"scale needs {rank} values; received {scale_list}", field="scale")
        scales = tuple(float(s) for s in scale_list)
        # PyTorch: floor(input_size * scale_factor), computed in double precision.
        sizes = tuple(math.floor(n * s) for n, s in zip(x[1:], scales, strict=True))
        for i, s in enumerate(sizes):
            if s <= 0:
                raise RuleViolation(
                    "E301", f"upsample output along {axis_name(rank, i)} must be positive; "
                    f"received floor({x[1 + i]} × {scales[i]}) = {s}", field="scale")
    return Inferred((x[0], *sizes), UpsampleAttrs(tuple(sizes), scales, args.mode, args.align_corners))


def upsample_detail(op: str, a: UpsampleAttrs) -> str:
    how = f"×{'×'.join(f'{s:g}' for s in a.scale)}" if a.scale else f"→{'×'.join(map(str, a.size))}"
    return f"{how}{' like input 2' if a.like else ''} {a.mode}"


def infer_crop(args: CropArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    rank = require_rank(x, (1, 2, 3), "crop")
    sizes = _reference("crop", ins, rank)
    for i, (n, m) in enumerate(zip(x[1:], sizes)):
        if m > n:
            raise RuleViolation(
                "E318",
                f"crop cuts its first input down to the second's spatial size, which must not be larger; "
                f"received {fmt_shape(x)} (input 1) and {fmt_shape(ins[1])} (input 2): "
                f"{axis_name(rank, i)} {n} < {m}",
                hint="swap the inputs (the larger one first), or pad or upsample the smaller one",
            )
    offsets = tuple((n - m) // 2 for n, m in zip(x[1:], sizes))
    return Inferred((x[0], *sizes), CropAttrs(offsets, tuple(sizes)))


def crop_detail(op: str, a: CropAttrs) -> str:
    return f"→{'×'.join(map(str, a.size))}"


def rf_crop(a: CropAttrs, ins: Sequence[RF]) -> RF:
    """Output unit x is input unit x + offset: the window moves by offset·j."""
    rf = ins[0]
    if rf is None:
        return None
    return tuple(AxisRF(r.size, r.stride, r.pad - off * r.stride) for r, off in zip(rf, a.offsets, strict=True))


def upsample_ops(a: UpsampleAttrs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out)


def infer_flatten(args: FlattenArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    ndim = len(x) + 1
    start = args.start_dim + ndim if args.start_dim < 0 else args.start_dim
    end = args.end_dim + ndim if args.end_dim < 0 else args.end_dim
    if not (1 <= start < ndim and 1 <= end < ndim and start <= end):
        raise RuleViolation(
            "E311",
            f"flatten needs 1 <= start_dim <= end_dim < {ndim} for a batched {ndim}-d input "
            f"(0 is the batch axis); received start_dim={args.start_dim}, end_dim={args.end_dim} "
            f"for {fmt_shape(x)}",
            hint="flatten with no arguments folds every axis but the batch",
            field="start_dim",
        )
    s, e = start - 1, end - 1
    shape = (*x[:s], numel(x[s:e + 1]), *x[e + 1:])
    return Inferred(shape, FlattenAttrs(start, end, whole=start == 1 and end == ndim - 1))


def infer_linear(args: LinearArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    features = x[-1]
    check_in(args.in_, features, "feature")
    # On [C, H, W] it mixes the last axis: W302 (passes/layout.py) unless a permute made it channels-last.
    return Inferred((*x[:-1], args.out), LinearAttrs(features, args.out, args.bias))


def flatten_detail(op: str, a: FlattenAttrs) -> str:
    return "" if a.whole else f"dims {a.start_dim}..{a.end_dim}"


def linear_weights(a: LinearAttrs) -> tuple[TensorSpec, ...]:
    weight = TensorSpec("weight", (a.out_features, a.in_features), fan_in=float(a.in_features))
    # PyTorch's own initialisation, as torchvision leaves most classifier heads.
    return (weight, TensorSpec("bias", (a.out_features,))) if a.bias else (weight,)


def linear_macs(a: LinearAttrs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) * a.in_features


def linear_bias(a: LinearAttrs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) if a.bias else 0


def linear_detail(op: str, a: LinearAttrs) -> str:
    return f"{a.in_features} → {a.out_features}"


def rf_upsample(a: UpsampleAttrs, ins: Sequence[RF]) -> RF:
    rf = ins[0]
    # A map that sees the whole input still does, at any size.
    if rf is not None and all(r.stride == 0 for r in rf):
        return rf
    # Interpolation breaks the integer grid the formulas assume; report no field.
    return None




RULES = [
    OpRule("upsample", "resize", UpsampleArgs, infer_upsample, extra=upsample_ops, rf=rf_upsample,
           positional=("scale",), detail=upsample_detail,
           traits=frozenset({Trait.OVERWRITABLE_OUTPUT, Trait.KEEPS_CHANNELS, Trait.FIXED_SIZE}), max_inputs=2,
           ranks=frozenset({1, 2, 3}),
           doc="nn.Upsample: nearest or (bi/tri)linear / bicubic; [@x, @ref] resizes x to ref's spatial size"),
    OpRule("crop", "resize", CropArgs, infer_crop, rf=rf_crop, detail=crop_detail, min_inputs=2, max_inputs=2,
           traits=frozenset({Trait.KEEPS_CHANNELS, Trait.VIEW}), ranks=frozenset({1, 2, 3}),
           doc="[@x, @ref] centre-crops x to ref's spatial size (the original U-Net)"),
    OpRule("flatten", "shape", FlattenArgs, infer_flatten, rf=rf_flat, detail=flatten_detail, doc="nn.Flatten"),
    OpRule("linear", "linear", LinearArgs, infer_linear, linear_weights, linear_macs, linear_bias, rf_pointwise,
           positional=("out",), detail=linear_detail,
           traits=frozenset({Trait.OVERWRITABLE_OUTPUT, Trait.KEEPS_LAYOUT, Trait.LAST_AXIS}),
           doc="fully connected layer on the last axis (nn.Linear)", aliases=("fc",)),
]
