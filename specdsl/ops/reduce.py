"""A new axis and its sum: ``stack`` (inputs side by side along a new axis) and ``sum`` (a sum over axes).

Split attention (ResNeSt, timm's SplitAttn) and selective kernels (SKNet, timm's SelectiveKernel)
weigh a few branches by a softmax over the branch axis and add them up: the branches stand along a
new axis (``torch.stack(paths, dim=1)``, or a reshape of [R·C, H, W] to [R, C, H, W]), their sum
over that axis feeds the attention (``x.sum(dim=1)``), and the weighted sum is the output::

    [@p0, @p1] -> stack(1) as x      # [2, C, H, W]
    @x -> sum(1) -> gap(keepdims=true) -> conv(...) ... -> reshape([2, C, 1, 1]) -> softmax(1) as w
    [@x, @w] -> mul -> sum(1)        # [C, H, W]

Axes use PyTorch's numbering, the batch 0 included (as ``concat`` and ``softmax``), and the batch
itself is refused. Receptive field: specdsl's field has one entry per sample axis after the first;
a stacked axis sees one element of each input (a unit field), a sum over the first sample axis drops
the entry of the axis that becomes first, and a sum over a spatial axis sees all of it (the whole
input where it is kept, as ``gap``'s; unknown where the axis goes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, NamedTuple

from specdsl.ops.merge import WHOLE, rf_merge
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
    fmt_shape,
    numel,
)

# A sample axis that no window moves along: each output element sees one element of it.
UNIT = AxisRF(1, 1, 0)


class StackArgs(Args):
    dim: int = Field(default=1, description="where the new axis goes in the stacked (batched) output, PyTorch "
                                            "numbering with the batch 0; 1 puts it first in the sample")


class SumArgs(Args):
    dim: int | Annotated[list[int], Field(min_length=1, max_length=4)] = Field(
        description="the axis or axes summed over, PyTorch numbering with the batch 0 (refused)")
    keepdims: bool = Field(default=False, description="keep each summed axis with size 1 (torch's keepdim)")


class StackAttrs(NamedTuple):
    dim: int  # PyTorch numbering over the output's axes, non-negative
    n_inputs: int


class SumAttrs(NamedTuple):
    dims: tuple[int, ...]  # PyTorch numbering over the input's axes, non-negative, ascending
    keepdims: bool
    written: int | tuple[int, ...]  # as the spec wrote it, for labels and emitted code


def _axis(dim: int, ndim: int, op: str, x: Shape) -> int:
    """``dim`` over ``ndim`` batched axes, made non-negative; the batch axis refused."""
    d = dim + ndim if dim < 0 else dim
    if not 1 <= d < ndim:
        raise RuleViolation(
            "E311", f"{op} dim must be a non-batch axis (1..{ndim - 1} or -{ndim - 1}..-1, PyTorch numbering) for "
                    f"input {fmt_shape(x)}; received dim={dim}",
            hint="the batch is axis 0: the first axis of a sample is 1", field="dim")
    return d


def infer_stack(args: StackArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    for i, other in enumerate(ins[1:], start=2):
        if other != x:
            raise RuleViolation(
                "E312", f"stack needs inputs of equal shape; received {fmt_shape(x)} (input 1) and "
                        f"{fmt_shape(other)} (input {i})",
                hint="make the branches agree (channels, stride, padding) before stacking them")
    d = _axis(args.dim, len(x) + 2, "stack", x)  # the new axis may go after the last one
    return Inferred((*x[:d - 1], len(ins), *x[d - 1:]), StackAttrs(d, len(ins)))


def infer_sum(args: SumArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    written = args.dim if isinstance(args.dim, int) else tuple(args.dim)
    dims = sorted(_axis(d, len(x) + 1, "sum", x) for d in (written if isinstance(written, tuple) else (written,)))
    if len(set(dims)) != len(dims):
        raise RuleViolation("E311", f"sum names an axis twice; received dim={args.dim} for input {fmt_shape(x)}",
                            hint="name each axis once", field="dim")
    if not args.keepdims and len(dims) == len(x):
        raise RuleViolation(
            "E311", f"sum over every axis of a sample would leave no axis; received dim={args.dim} for input "
                    f"{fmt_shape(x)}", hint="write keepdims=true to keep them with size 1", field="dim")
    out = tuple(1 if k + 1 in dims else n for k, n in enumerate(x)) if args.keepdims else \
        tuple(n for k, n in enumerate(x) if k + 1 not in dims)
    return Inferred(out, SumAttrs(tuple(dims), args.keepdims, written))


def rf_stack(a: StackAttrs, ins: Sequence[RF]) -> RF:
    """The inputs' field (per axis the largest: the branches of a selective kernel differ in dilation),
    with a unit field for the axis that the new one pushes off the front, or for the new one itself."""
    rf = rf_merge(None, ins) if len(ins) > 1 else ins[0]
    if rf is None:
        return None
    at = max(a.dim - 2, 0)
    return (*rf[:at], UNIT, *rf[at:])


def rf_sum(a: SumAttrs, ins: Sequence[RF]) -> RF:
    rf = ins[0]
    if rf is None:
        return None
    axes = list(rf)
    for d in reversed(a.dims):
        k = d - 2  # the field's entry of sample axis d - 1 (the first sample axis has none)
        if a.keepdims:
            if k >= 0:
                axes[k] = WHOLE
        elif k >= 0:
            return None  # a spatial axis summed away: seen whole, then gone
        elif axes:
            axes.pop(0)  # the second sample axis comes first: its entry goes
    return tuple(axes) if axes else None


def sum_adds(a: SumAttrs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(ins[0]) - numel(out)


def stack_detail(op: str, a: StackAttrs) -> str:
    return f"dim {a.dim}"


def sum_detail(op: str, a: SumAttrs) -> str:
    dims = ", ".join(map(str, a.dims))
    return f"dim {dims}" + (", keepdims" if a.keepdims else "")


RULES = [
    # Not a merge: a stack of one input has a new axis, where a merge of one is its input.
    OpRule("stack", "shape", StackArgs, infer_stack, rf=rf_stack, min_inputs=1, max_inputs=None,
           positional=("dim",), detail=stack_detail,
           doc="inputs of equal shape side by side along a new axis dim (torch.stack; SKNet's branches)"),
    OpRule("sum", "shape", SumArgs, infer_sum, extra=sum_adds, rf=rf_sum, positional=("dim",), detail=sum_detail,
           doc="sum over the axis or axes dim, PyTorch numbering (x.sum(dim); split attention's radix sum)"),
]
