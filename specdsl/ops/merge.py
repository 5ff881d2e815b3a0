"""Merges: several inputs become one — add, mul, mean, concat and FractalNet's join.

add and mul follow PyTorch's broadcasting over the non-batch axes (a [C, 1, 1] gate
scales a [C, H, W] map); mean and join need equal shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, NamedTuple

from specdsl.ops.model import Field
from specdsl.ops.rule import (
    RF,
    Args,
    AxisRF,
    Inferred,
    OpRule,
    RuleContext,
    RuleViolation,
    Shape,
    Trait,
    axis_name,
    fmt_shape,
    numel,
)

# The receptive field of a unit that sees the whole model input (a global pool, and anything it
# gates): effective stride 0, so every unit sees the same window, on every later layer too
# (r += (k-1)·0, P += p·0). Size and padding 0 mark it; reports print "whole input".
WHOLE = AxisRF(0, 0, 0)


def sees_whole(axis: AxisRF) -> bool:
    return axis.stride == 0


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
    # Per input, per non-batch axis (channels first): True where the input has size 1 there and
    # the output more (PyTorch repeats it). Empty where the inputs have equal shapes.
    broadcast: tuple[tuple[bool, ...], ...] = ()


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


def _broadcast(ins: Sequence[Shape], op: str) -> Shape:
    """PyTorch's broadcasting with the batch axis kept: equal ranks, and on every axis the sizes
    agree or one of them is 1."""
    first = ins[0]
    for i, other in enumerate(ins[1:], start=2):
        if len(other) != len(first):
            short, long = (first, other) if len(first) < len(other) else (other, first)
            raise RuleViolation(
                "E312",
                f"{op} needs inputs with the same axes (PyTorch broadcasts from the last axis, and the "
                f"batch axis comes first); received {fmt_shape(first)} (input 1) and {fmt_shape(other)} "
                f"(input {i})",
                hint=f"keep the pooled axes: gap(keepdims=true) gives {fmt_shape((short[0], *(1,) * (len(long) - 1)))}"
                if len(short) == 1 and short[0] == long[0] else "reshape one input so both have the same axes",
            )
    out = list(first)
    for i, other in enumerate(ins[1:], start=2):
        for axis, (a, b) in enumerate(zip(out, other)):
            if a != b and 1 not in (a, b):
                raise RuleViolation("E312", _mismatch(op, ins, i, axis, a, b), hint=_mismatch_hint(op, out, other, i))
            out[axis] = max(a, b)
    return tuple(out)


def _mismatch(op: str, ins: Sequence[Shape], i: int, axis: int, a: int, b: int) -> str:
    where = "the channels differ" if axis == 0 else f"the sizes along {axis_name(len(ins[0]) - 1, axis - 1)} differ"
    return (f"{op} needs inputs of equal shape, or shapes that broadcast (on every axis equal sizes, or 1); "
            f"received {fmt_shape(ins[0])} (input 1) and {fmt_shape(ins[i - 1])} (input {i}): {where} ({a} vs {b})")


def _mismatch_hint(op: str, want: Sequence[int], got: Shape, i: int) -> str:
    """What repairs the first mismatch: a projection for channels or a stride, padding for a
    few pixels, a global pool for a gate."""
    spatial = [(a, b) for a, b in zip(want[1:], got[1:]) if a != b and 1 not in (a, b)]
    if want[0] != got[0] and got[0] != 1:
        # The projection goes on the larger input, with the stride that brings it down.
        ratios = {b // a for a, b in spatial if b > a and b % a == 0}
        if len(ratios) == 1 and len(spatial) == len(want) - 1:
            return f"project input {i} with a 1×1 conv: conv({want[0]}, k=1, stride={ratios.pop()})"
        return f"make the channels agree: a 1×1 conv on one branch, e.g. conv({want[0]}, k=1) on input {i}"
    big, small = max(spatial[0]), min(spatial[0])
    if big % small == 0 and big // small >= 2:
        how = (f"one path is downsampled ×{big // small}: give the other the same stride "
               f"(a shortcut conv with stride {big // small}) or upsample the smaller one")
        if op == "mul":
            how += "; a per-channel gate is gap(keepdims=true) of its branch, [C, 1, 1]"
        return how
    # Off by a few pixels: a padding slip, which no projection or pooling repairs.
    return (f"the sizes differ by {big - small}: check the padding on both paths "
            "(pad=(k-1)/2 keeps the size of a k×k stride-1 conv, or pad='same')")


def _broadcast_attrs(ins: Sequence[Shape], out: Shape) -> MergeAttrs:
    if all(s == out for s in ins):
        return MergeAttrs(len(ins))
    return MergeAttrs(len(ins), tuple(tuple(n == 1 < m for n, m in zip(s, out)) for s in ins))


def infer_add(args: MergeArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    out = _broadcast(ins, "add")
    return Inferred(out, _broadcast_attrs(ins, out))


def infer_mul(args: MergeArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    out = _broadcast(ins, "mul")
    return Inferred(out, _broadcast_attrs(ins, out))


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
    """Per axis the largest field over the inputs, or the whole input where one input sees it
    (a gate from a global pool); alignment is checked by the analysis pass.

    An input repeated along an axis (broadcast) adds one fixed window to every output unit: a
    whole-input window keeps the form above, any other union has no (size, stride, pad) form.
    """
    if any(r is None for r in ins):
        return None
    broadcast = getattr(a, "broadcast", ())
    axes = []
    for k, per_input in enumerate(zip(*ins, strict=True)):
        if any(sees_whole(ax) for ax in per_input):
            axes.append(WHOLE)
            continue
        if broadcast and any(flags[1 + k] for flags in broadcast):
            return None
        axes.append(max(per_input, key=lambda ax: ax.size))
    return tuple(axes)


def concat_detail(op: str, a: ConcatAttrs) -> str:
    parts = [f"{a.n_inputs} inputs"] if a.n_inputs > 2 else []
    return ", ".join([*parts, f"dim {a.dim}"] if a.dim != 1 else parts)


_MERGE = frozenset({Trait.MERGE, Trait.OVERWRITABLE_OUTPUT, Trait.KEEPS_CHANNELS})

RULES = [
    OpRule("add", "merge", MergeArgs, infer_add, extra=merge_adds, rf=rf_merge, min_inputs=2, max_inputs=None,
           traits=_MERGE | {Trait.SUM}, doc="element-wise sum, PyTorch broadcasting over the non-batch axes"),
    OpRule("mul", "merge", MergeArgs, infer_mul, extra=merge_adds, rf=rf_merge, min_inputs=2, max_inputs=None,
           traits=_MERGE, doc="element-wise product, PyTorch broadcasting (a [C, 1, 1] gate scales [C, H, W])"),
    OpRule("concat", "merge", ConcatArgs, infer_concat, rf=rf_merge, min_inputs=2, max_inputs=None,
           positional=("dim",), detail=concat_detail, traits=frozenset({Trait.MERGE, Trait.OVERWRITABLE_OUTPUT}),
           doc="concatenation along dim (channels by default)", aliases=("cat",)),
    OpRule("mean", "merge", MergeArgs, infer_mean, extra=mean_ops, rf=rf_merge, min_inputs=2, max_inputs=None,
           traits=_MERGE, doc="element-wise mean of equal-shape inputs (fractal join)"),
    OpRule("join", "merge", JoinArgs, infer_join, extra=mean_ops, rf=rf_merge, min_inputs=2, max_inputs=None,
           traits=_MERGE, doc="fractal join: element-wise mean with drop-path settings"),
]
