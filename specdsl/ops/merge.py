"""Merges: several inputs become one — add, mean, concat and FractalNet's join."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, NamedTuple

from pydantic import Field

from specdsl.ops.rule import (
    RF,
    Args,
    Inferred,
    OpRule,
    RuleContext,
    RuleViolation,
    Shape,
    Trait,
    fmt_shape,
    numel,
)


class MergeArgs(Args):
    pass


class ConcatArgs(Args):
    dim: int = Field(default=1, description="PyTorch numbering: 1 is channels")


class JoinArgs(Args):
    """FractalNet's join: element-wise mean, with drop-path settings for training."""

    drop_local: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    drop_global: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    columns: list[int] | None = Field(default=None, description="column index of each input")


class MergeAttrs(NamedTuple):
    n_inputs: int


class ConcatAttrs(NamedTuple):
    dim: int  # PyTorch numbering, made non-negative
    n_inputs: int


class JoinAttrs(NamedTuple):
    n_inputs: int
    drop_local: float
    drop_global: float
    columns: tuple[int, ...]  # column index of each input (empty: not given)


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
    return Inferred(_equal_shapes(ins, "add"), MergeAttrs(len(ins)))


def infer_mean(args: MergeArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    return Inferred(_equal_shapes(ins, "mean"), MergeAttrs(len(ins)))


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
    return Inferred((*first[:axis], total, *first[axis + 1:]), ConcatAttrs(dim, len(ins)))


def infer_join(args: JoinArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    shape = _equal_shapes(ins, "join")
    if args.columns is not None and len(args.columns) != len(ins):
        raise RuleViolation("E316", f"join lists {len(args.columns)} columns for {len(ins)} inputs")
    return Inferred(shape, JoinAttrs(len(ins), args.drop_local, args.drop_global, tuple(args.columns or ())))



def merge_adds(a: object, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) * (len(ins) - 1)


def mean_ops(a: object, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) * len(ins)


def rf_merge(a: object, ins: Sequence[RF]) -> RF:
    """The largest field over all inputs; alignment is checked by the analysis pass."""
    if any(r is None for r in ins):
        return None
    axes = []
    for per_input in zip(*ins, strict=True):  # type: ignore[misc]
        axes.append(max(per_input, key=lambda ax: ax.size))
    return tuple(axes)


def concat_detail(op: str, a: ConcatAttrs) -> str:
    parts = [f"{a.n_inputs} inputs"] if a.n_inputs > 2 else []
    return ", ".join([*parts, f"dim {a.dim}"] if a.dim != 1 else parts)


_MERGE = frozenset({Trait.MERGE, Trait.OVERWRITABLE_OUTPUT, Trait.KEEPS_CHANNELS})

RULES = [
    OpRule("add", "merge", MergeArgs, infer_add, extra=merge_adds, rf=rf_merge, min_inputs=2, max_inputs=None,
           traits=_MERGE | {Trait.SUM}, doc="element-wise sum of equal-shape inputs"),
    OpRule("concat", "merge", ConcatArgs, infer_concat, rf=rf_merge, min_inputs=2, max_inputs=None,
           positional=("dim",), detail=concat_detail, traits=frozenset({Trait.MERGE, Trait.OVERWRITABLE_OUTPUT}),
           doc="concatenation along dim (channels by default)", aliases=("cat",)),
    OpRule("mean", "merge", MergeArgs, infer_mean, extra=mean_ops, rf=rf_merge, min_inputs=2, max_inputs=None,
           traits=_MERGE, doc="element-wise mean of equal-shape inputs (fractal join)"),
    OpRule("join", "merge", JoinArgs, infer_join, extra=mean_ops, rf=rf_merge, min_inputs=2, max_inputs=None,
           traits=_MERGE, doc="fractal join: element-wise mean with drop-path settings"),
]
