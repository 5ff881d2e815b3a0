"""Ops that change a tensor's layout or combine tensors: upsample, flatten,
linear, and the merges add / concat / mean."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field

from specdsl.ops.rule import (
    RF,
    Args,
    Inferred,
    OpRule,
    PositiveFloat,
    PositiveInt,
    RuleContext,
    RuleViolation,
    Shape,
    axis_name,
    check_in,
    fmt_shape,
    numel,
    per_axis,
    require_rank,
    rf_flat,
)

_MODES_BY_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


class UpsampleArgs(Args):
    scale: PositiveFloat | list[PositiveFloat] | None = Field(default=None, description="scale_factor")
    size: PositiveInt | list[PositiveInt] | None = Field(default=None, description="output size")
    mode: Literal["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear"] = "nearest"
    align_corners: bool | None = None


class FlattenArgs(Args):
    start_dim: int = Field(default=1, description="PyTorch numbering: 0 is the batch axis")
    end_dim: int = -1


class LinearArgs(Args):
    out: PositiveInt = Field(description="output features")
    bias: bool = True
    in_: PositiveInt | None = Field(default=None, alias="in", description="expected input features (checked)")


class ConcatArgs(Args):
    dim: int = Field(default=1, description="PyTorch numbering: 1 is channels")


class MergeArgs(Args):
    pass


def infer_upsample(args: UpsampleArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    rank = require_rank(x, (1, 2, 3), "upsample")
    if (args.scale is None) == (args.size is None):
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
            "E313", f"align_corners applies only to interpolating modes; received mode '{args.mode}'",
            field="align_corners",
        )
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
    return Inferred((x[0], *sizes), {"size": sizes, "scale": scales, "mode": args.mode,
                                     "align_corners": args.align_corners})


def upsample_ops(a: dict[str, Any], ins: Sequence[Shape], out: Shape) -> int:
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
    return Inferred(shape, {"start_dim": start, "end_dim": end})


def rf_flatten(a: dict[str, Any], ins: Sequence[RF]) -> RF:
    return rf_flat(a, ins)


def infer_linear(args: LinearArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    features = x[-1]
    check_in(args.in_, features, "feature")
    if len(x) > 1:
        ctx.warn(
            "W302",
            f"linear acts on the last axis only: input {fmt_shape(x)} gives {fmt_shape((*x[:-1], args.out))}",
            hint="add `flatten` (or a global pool) before it to use every feature",
        )
    return Inferred((*x[:-1], args.out), {"in_features": features, "out_features": args.out, "bias": args.bias})


def linear_params(a: dict[str, Any], ins: Sequence[Shape], out: Shape) -> tuple[int, int]:
    return a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0), 0


def linear_macs(a: dict[str, Any], ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) * a["in_features"]


def linear_bias(a: dict[str, Any], ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) if a["bias"] else 0


def _equal_shapes(ins: Sequence[Shape], op: str) -> Shape:
    first = ins[0]
    for i, other in enumerate(ins[1:], start=2):
        if other != first:
            what = "channels" if len(other) == len(first) and other[1:] == first[1:] else "shapes"
            raise RuleViolation(
                "E312",
                f"{op} needs inputs of equal shape; received {fmt_shape(first)} (input 1) "
                f"and {fmt_shape(other)} (input {i}): the {what} differ",
                hint="project one branch (e.g. a 1×1 conv, stride as needed) so both agree",
            )
    return first


def infer_add(args: MergeArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    return Inferred(_equal_shapes(ins, "add"), {"n_inputs": len(ins)})


def infer_mean(args: MergeArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    return Inferred(_equal_shapes(ins, "mean"), {"n_inputs": len(ins)})


def infer_concat(args: ConcatArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    first = ins[0]
    ndim = len(first) + 1
    dim = args.dim + ndim if args.dim < 0 else args.dim
    if not 1 <= dim < ndim:
        raise RuleViolation(
            "E311",
            f"concat dim must be a non-batch axis (1..{ndim - 1}); received dim={args.dim}",
            hint="dim 1 concatenates channels",
            field="dim",
        )
    axis = dim - 1
    total = 0
    for i, s in enumerate(ins, start=1):
        if len(s) != len(first) or any(a != b for k, (a, b) in enumerate(zip(s, first)) if k != axis):
            raise RuleViolation(
                "E312",
                f"concat needs inputs that agree on every axis but dim {dim}; received "
                f"{fmt_shape(first)} (input 1) and {fmt_shape(s)} (input {i})",
                hint="resize or pad the branches so their other axes match",
            )
        total += s[axis]
    return Inferred((*first[:axis], total, *first[axis + 1:]), {"dim": dim, "n_inputs": len(ins)})


def merge_adds(a: dict[str, Any], ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) * (len(ins) - 1)


def mean_ops(a: dict[str, Any], ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) * len(ins)


def rf_merge(a: dict[str, Any], ins: Sequence[RF]) -> RF:
    """The largest field over all inputs; alignment is checked by the analysis pass."""
    if any(r is None for r in ins):
        return None
    axes = []
    for per_input in zip(*ins, strict=True):  # type: ignore[misc]
        axes.append(max(per_input, key=lambda ax: ax.size))
    return tuple(axes)


def rf_unknown(a: dict[str, Any], ins: Sequence[RF]) -> RF:
    # Interpolation breaks the integer grid the formulas assume; report no field.
    return None


RULES = [
    OpRule("upsample", "resize", UpsampleArgs, infer_upsample, extra=upsample_ops, rf=rf_unknown,
           ranks=frozenset({1, 2, 3}), doc="nn.Upsample: nearest or (bi/tri)linear / bicubic"),
    OpRule("flatten", "shape", FlattenArgs, infer_flatten, rf=rf_flatten, doc="nn.Flatten"),
    OpRule("linear", "linear", LinearArgs, infer_linear, linear_params, linear_macs, linear_bias, rf_flat,
           doc="fully connected layer on the last axis (nn.Linear)", aliases=("fc",)),
    OpRule("add", "merge", MergeArgs, infer_add, extra=merge_adds, rf=rf_merge, min_inputs=2, max_inputs=None,
           doc="element-wise sum of equal-shape inputs"),
    OpRule("concat", "merge", ConcatArgs, infer_concat, rf=rf_merge, min_inputs=2, max_inputs=None,
           doc="concatenation along dim (channels by default)", aliases=("cat",)),
    OpRule("mean", "merge", MergeArgs, infer_mean, extra=mean_ops, rf=rf_merge, min_inputs=2, max_inputs=None,
           doc="element-wise mean of equal-shape inputs (fractal join)"),
]



class JoinArgs(Args):
    """FractalNet's join: element-wise mean, with drop-path settings for training."""

    drop_local: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    drop_global: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    columns: list[int] | None = Field(default=None, description="column index of each input")


def infer_join(args: JoinArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    shape = _equal_shapes(ins, "join")
    if args.columns is not None and len(args.columns) != len(ins):
        raise RuleViolation("E316", f"join lists {len(args.columns)} columns for {len(ins)} inputs")
    return Inferred(shape, {"n_inputs": len(ins), "drop_local": args.drop_local,
                            "drop_global": args.drop_global, "columns": tuple(args.columns or ())})


RULES.append(
    OpRule("join", "merge", JoinArgs, infer_join, extra=mean_ops, rf=rf_merge, min_inputs=2, max_inputs=None,
           doc="fractal join: element-wise mean with drop-path settings"),
)
