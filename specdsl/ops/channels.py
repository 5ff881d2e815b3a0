"""Ops that partition or reorder a tensor along an axis: split, chunk, their parts, channel shuffle.

``split`` and ``chunk`` are the multi-output ops: their rule gives the shape of every part
(:attr:`Inferred.parts`), and a spec refers to part k as ``@name.k`` (YAML ``name.k``), which
the expander turns into a ``part`` node — the same shape torch.fx gives a tuple output and
its ``getitem`` users. All three are views of their input, as in PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, NamedTuple

from specdsl.ops.model import Field
from specdsl.ops.rule import (
    RF,
    Args,
    Inferred,
    NonNegInt,
    OpRule,
    PositiveInt,
    RuleContext,
    RuleViolation,
    Shape,
    Trait,
    fmt_shape,
)

# The op a `@name.k` reference becomes.
PART = "part"


class SplitArgs(Args):
    sizes: Annotated[list[PositiveInt], Field(min_length=1, max_length=4096)] = Field(
        description="the size of each part along dim; they must add up to the axis")
    dim: int = Field(default=1, description="PyTorch numbering: 1 is channels")


class ChunkArgs(Args):
    chunks: Annotated[int, Field(ge=1, le=4096)] = Field(description="number of parts (torch.chunk's rule)")
    dim: int = Field(default=1, description="PyTorch numbering: 1 is channels")


class PartArgs(Args):
    index: NonNegInt = Field(description="which output of a split or chunk (written @name.index)")


class ShuffleArgs(Args):
    groups: PositiveInt = Field(description="channel groups to interleave (ShuffleNet)")


class SplitAttrs(NamedTuple):
    sizes: tuple[int, ...]
    dim: int  # PyTorch numbering, made non-negative


class PartAttrs(NamedTuple):
    index: int  # type: ignore[assignment]  # the field hides tuple.index, never called
    of: int  # how many parts the producer has
    dim: int  # PyTorch numbering
    start: int  # where the part begins along dim


class ShuffleAttrs(NamedTuple):
    groups: int
    channels: int


def _axis(dim: int, shape: Shape, op: str) -> int:
    """PyTorch's dim (batch is 0) made non-negative; the batch axis cannot be split."""
    ndim = len(shape) + 1
    resolved = dim + ndim if dim < 0 else dim
    if not 1 <= resolved < ndim:
        raise RuleViolation(
            "E340", f"{op} dim must be a non-batch axis (1..{ndim - 1}) of input {fmt_shape(shape)}; "
            f"received dim={dim}", hint="dim 1 splits the channels", field="dim")
    return resolved


def _parts(shape: Shape, dim: int, sizes: Sequence[int]) -> tuple[Shape, ...]:
    axis = dim - 1
    return tuple((*shape[:axis], size, *shape[axis + 1:]) for size in sizes)


def infer_split(args: SplitArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    shape = ins[0]
    dim = _axis(args.dim, shape, "split")
    extent = shape[dim - 1]
    if sum(args.sizes) != extent:
        what = "channels" if dim == 1 else f"axis dim={dim}"
        raise RuleViolation(
            "E341", f"split sizes {args.sizes} add up to {sum(args.sizes)}, but the input has {extent} {what} "
            f"(input {fmt_shape(shape)})",
            hint=f"make the sizes add up to {extent}, or use chunk(n) for equal parts", field="sizes")
    return Inferred(shape, SplitAttrs(tuple(args.sizes), dim), _parts(shape, dim, args.sizes))


def chunk_sizes(extent: int, chunks: int) -> tuple[int, ...]:
    """torch.chunk: parts of ceil(extent / chunks), the last smaller, so there may be fewer parts."""
    step = -(-extent // chunks)
    return tuple(min(step, extent - start) for start in range(0, extent, step))


def infer_chunk(args: ChunkArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    shape = ins[0]
    dim = _axis(args.dim, shape, "chunk")
    extent = shape[dim - 1]
    sizes = chunk_sizes(extent, args.chunks)
    if extent % args.chunks:
        ctx.warn("W340", f"chunk({args.chunks}) of an axis of {extent} gives {len(sizes)} unequal parts "
                 f"{list(sizes)} (torch.chunk's rule)",
                 hint=f"use split({list(sizes)}) to say so, or a chunk count that divides {extent}",
                 field="chunks")
    return Inferred(shape, SplitAttrs(sizes, dim), _parts(shape, dim, sizes))


def infer_part(args: PartArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    parts = ctx.input_parts[0] if ctx.input_parts else None
    if parts is None:
        raise RuleViolation(
            "E342", f"a part (.{args.index}) can only be taken of a split or chunk; this input has one "
            f"output {fmt_shape(ins[0])}", hint="refer to the node without `.k`", field="index")
    if args.index >= len(parts):
        raise RuleViolation(
            "E342", f"part .{args.index} does not exist: the split has {len(parts)} parts "
            f"(.0 to .{len(parts) - 1})", hint=f"use an index below {len(parts)}", field="index")
    whole = ins[0]
    # The split axis is where the parts differ from the whole (any axis when there is one part).
    axis = next((k for k in range(len(whole)) if any(p[k] != whole[k] for p in parts)), 0)
    start = sum(p[axis] for p in parts[:args.index])
    return Inferred(parts[args.index], PartAttrs(args.index, len(parts), axis + 1, start))


def infer_shuffle(args: ShuffleArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    shape = ins[0]
    if len(shape) < 2:
        raise RuleViolation("E306", f"channel_shuffle needs an input with spatial axes; received {fmt_shape(shape)}",
                            hint="shuffle before flatten or global pooling")
    channels = shape[0]
    if channels % args.groups:
        raise RuleViolation(
            "E343", f"channel_shuffle groups must divide the channels; received groups={args.groups}, "
            f"channels={channels}", hint="use a divisor of the channels", field="groups")
    return Inferred(shape, ShuffleAttrs(args.groups, channels))


def rf_same(attrs: object, ins: Sequence[RF]) -> RF:
    return ins[0]


def split_detail(op: str, a: SplitAttrs) -> str:
    where = "" if a.dim == 1 else f" dim {a.dim}"
    return "+".join(map(str, a.sizes)) + where


def part_summary(op: str, a: PartAttrs) -> str:
    return f"part {a.index} of {a.of}"


def shuffle_detail(op: str, a: ShuffleAttrs) -> str:
    return f"{a.groups} groups"


_VIEW = frozenset({Trait.VIEW})

RULES = [
    OpRule("split", "channels", SplitArgs, infer_split, rf=rf_same, positional=("sizes", "dim"), detail=split_detail,
           traits=_VIEW, doc="torch.split into parts of the given sizes, referred to as @name.0, @name.1, ..."),
    OpRule("chunk", "channels", ChunkArgs, infer_chunk, rf=rf_same, positional=("chunks", "dim"),
           detail=split_detail, traits=_VIEW, doc="torch.chunk into n parts, referred to as @name.0, @name.1, ..."),
    OpRule(PART, "channels", PartArgs, infer_part, rf=rf_same, positional=("index",), summary=part_summary,
           traits=_VIEW, doc="one output of a split or chunk (what @name.k stands for)"),
    OpRule("channel_shuffle", "channels", ShuffleArgs, infer_shuffle, rf=rf_same, positional=("groups",),
           detail=shuffle_detail, traits=frozenset({Trait.KEEPS_CHANNELS}),
           doc="ShuffleNet's channel shuffle (nn.ChannelShuffle)"),
]
