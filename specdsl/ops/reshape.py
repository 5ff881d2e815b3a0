"""Ops that give a sample's elements a new shape without moving them: reshape (alias view),
unsqueeze and squeeze.

Axis numbers. specdsl's shapes leave the batch out ([C, H, W]); the batch always stays first and
whole, so what these ops change is the sample's shape:

* ``reshape(shape)`` takes the new SAMPLE shape, the list that follows the batch in PyTorch's
  ``x.reshape(x.shape[0], *shape)``: ECA-Net's ``x.mean((2, 3)).view(x.shape[0], 1, -1)`` is
  ``gap -> reshape([1, -1])`` ([C, 1, 1] -> [1, C], so the conv after it is a Conv1d over the
  channels) and ``y.view(x.shape[0], -1, 1, 1)`` is ``reshape([-1, 1, 1])``. One size may be -1,
  inferred from the rest.
* ``unsqueeze(dim)`` and ``squeeze(dim)`` number the axes as PyTorch does, the batch included as
  axis 0 (as ``permute`` does), so ``x.unsqueeze(2)`` is ``unsqueeze(2)``; a negative dim counts from
  the end as in PyTorch. The batch axis itself (dim 0) is refused: it is not the sample's.
  ``squeeze`` needs its axis to have size 1 (PyTorch silently leaves any other axis alone, which
  never is what a spec means).

All three are views of their input where PyTorch's are (``saved.py`` and the memory pass follow
PyTorch's stride rule; ``view`` is ``reshape``'s alias: where ``x.view`` succeeds, ``x.reshape``
returns that same view). A receptive field survives where the spatial sizes do; a global pool's
"sees the whole input" survives any reshape (ECA's gate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, NamedTuple

from specdsl.ops.merge import sees_whole
from specdsl.ops.model import Field
from specdsl.ops.reduce import UNIT
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
)

# A sample has at most 4 axes ([C, D, H, W]); a size is positive, or -1 once (inferred).
SampleShape = Annotated[list[Annotated[int, Field(ge=-1)]], Field(min_length=1, max_length=4)]


class ReshapeArgs(Args):
    shape: SampleShape = Field(description="the new shape of one sample (the batch stays first and is not "
                                           "written), one size may be -1: inferred, as in torch.reshape")


class AxisArgs(Args):
    dim: int = Field(description="the axis in PyTorch numbering, the batch axis 0 included (0 itself is refused)")


class ReshapeAttrs(NamedTuple):
    shape: tuple[int, ...]  # as written (-1 kept): the emitted code says what the spec said
    out: Shape  # the resolved sample shape
    inp: Shape = ()  # the input's sample shape (the receptive field follows the axes it keeps)


class AxisAttrs(NamedTuple):
    dim: int  # PyTorch numbering, batch included, non-negative
    out: Shape
    inp: Shape = ()


def infer_reshape(args: ReshapeArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    total = math.prod(x)
    wanted = list(args.shape)
    hint = f"the input {fmt_shape(x)} holds {total} elements per sample; write sizes whose product is {total}, " \
           "or -1 for one of them"
    if 0 in wanted:
        raise RuleViolation("E391", f"reshape sizes must be positive or -1; received {args.shape}", hint=hint,
                            field="shape")
    if wanted.count(-1) > 1:
        raise RuleViolation("E391", f"reshape can infer only one size (-1); received {args.shape}", hint=hint,
                            field="shape")
    known = math.prod(d for d in wanted if d != -1)
    if -1 in wanted:
        if total % known:
            raise RuleViolation(
                "E391", f"reshape's sizes must divide the {total} elements of a sample to infer -1; received "
                        f"{args.shape} for input {fmt_shape(x)}", hint=hint, field="shape")
        wanted[wanted.index(-1)] = total // known
    elif known != total:
        raise RuleViolation(
            "E391", f"reshape must keep the {total} elements of a sample; received {args.shape} ({known} elements) "
                    f"for input {fmt_shape(x)}", hint=hint, field="shape")
    out = tuple(wanted)
    return Inferred(out, ReshapeAttrs(tuple(args.shape), out, x))


def _axis(dim: int, ndim: int, op: str, x: Shape) -> int:
    """``dim`` in PyTorch numbering over ``ndim`` axes (the batch included), made non-negative."""
    d = dim + ndim if dim < 0 else dim
    if not 0 <= d < ndim:
        raise RuleViolation(
            "E392", f"{op} dim must be in [{-ndim}, {ndim - 1}] for input {fmt_shape(x)} (PyTorch numbering, the batch "
                    f"is axis 0); received dim={dim}", hint="count the batch as axis 0: the channels are axis 1",
            field="dim")
    if d == 0:
        raise RuleViolation(
            "E392", f"{op} acts on a sample's axes, not the batch (axis 0); received dim={dim}",
            hint="the channels are axis 1 in PyTorch numbering", field="dim")
    return d


def infer_unsqueeze(args: AxisArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    if len(x) >= 4:
        raise RuleViolation("E392", f"unsqueeze would give a sample more than 4 axes; received input {fmt_shape(x)}",
                            field="dim")
    d = _axis(args.dim, len(x) + 2, "unsqueeze", x)  # the new axis may go after the last one
    out = (*x[:d - 1], 1, *x[d - 1:])
    return Inferred(out, AxisAttrs(d, out, x))


def infer_squeeze(args: AxisArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    d = _axis(args.dim, len(x) + 1, "squeeze", x)
    if x[d - 1] != 1:
        raise RuleViolation(
            "E392", f"squeeze needs an axis of size 1; received dim={args.dim}, of size {x[d - 1]} in input "
                    f"{fmt_shape(x)} (PyTorch would leave it as it is)",
            hint="name an axis of size 1, or use reshape", field="dim")
    if len(x) == 1:
        raise RuleViolation("E392", f"squeeze would leave a sample with no axis; received input {fmt_shape(x)}",
                            field="dim")
    out = (*x[:d - 1], *x[d:])
    return Inferred(out, AxisAttrs(d, out, x))


def rf_reshape(a: ReshapeAttrs | AxisAttrs, ins: Sequence[RF]) -> RF:
    """Every output sees the whole input where every input did (a global pool's gate, reshaped for
    ECA's conv over channels); otherwise the field is kept where the spatial sizes are, or where the
    trailing axes are kept and only channel-like axes (a unit field) regroup before them: split
    attention's [R·C, H, W] -> [R, C, H, W] gives the new C axis a unit field, and back. Else unknown."""
    rf = ins[0]
    if rf is None:
        return None
    rank = len(a.out) - 1
    if rf and all(sees_whole(axis) for axis in rf):
        return (rf[0],) * rank if rank else None
    if len(rf) == rank:
        return rf
    kept = 0
    while a.inp and kept < min(len(rf), rank) and a.inp[len(a.inp) - 1 - kept] == a.out[len(a.out) - 1 - kept]:
        kept += 1
    if a.inp and all(axis == UNIT for axis in rf[:len(rf) - kept]):
        return (UNIT,) * (rank - kept) + rf[len(rf) - kept:]
    return None


def reshape_detail(op: str, a: ReshapeAttrs) -> str:
    return fmt_shape(a.shape)


def axis_detail(op: str, a: AxisAttrs) -> str:
    return f"dim {a.dim}"


_VIEW = frozenset({Trait.VIEW})

RULES = [
    OpRule("reshape", "shape", ReshapeArgs, infer_reshape, rf=rf_reshape, positional=("shape",),
           detail=reshape_detail, traits=_VIEW, aliases=("view",),
           doc="gives a sample a new shape, the batch kept first (x.reshape(x.shape[0], *shape)); one size may be "
               "-1; a view where PyTorch's is (ECA-Net: gap -> reshape([1, -1]) -> conv1d over the channels)"),
    OpRule("unsqueeze", "shape", AxisArgs, infer_unsqueeze, rf=rf_reshape, positional=("dim",),
           detail=axis_detail, traits=_VIEW,
           doc="inserts an axis of size 1 at dim, PyTorch numbering with the batch 0 (torch.unsqueeze); a view"),
    OpRule("squeeze", "shape", AxisArgs, infer_squeeze, rf=rf_reshape, positional=("dim",),
           detail=axis_detail, traits=_VIEW,
           doc="removes the axis dim of size 1, PyTorch numbering with the batch 0 (torch.squeeze); a view"),
]
