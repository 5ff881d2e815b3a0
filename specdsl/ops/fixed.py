"""Ops that compute with constants instead of learned weights: a constant scale and a blur-pool.

``scale(0.17)`` multiplies by a number written in the spec (``x * 0.17``), with no parameter:
Inception-ResNet-v2's residual scaling, NFNet's alpha and beta. (``layer_scale`` is learned and
is not this.)

``blurpool(filt=3, stride=2, pad_mode=reflect)`` is anti-aliased downsampling (Zhang 2019,
"Making Convolutional Networks Shift-Invariant Again"), as timm's ``BlurPool2d``: the input is
padded by ``((stride - 1) + (filt - 1)) // 2`` on every side (timm's ``get_padding``) in
``pad_mode``, then convolved depthwise, with ``stride``, by the binomial filter: the outer product
of the row ``C(filt-1, k) / 2^(filt-1)`` with itself. The filter is a buffer ``filt`` of shape
``[C, 1, filt, filt]`` registered with persistent=False, as timm does: it counts among the
model's buffers but is in no state_dict (every backend computes it from the attrs). Its MACs are
a depthwise conv's: ``filt² · C · H_out · W_out``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, NamedTuple

from specdsl.ops.model import Field
from specdsl.ops.rule import (
    Args,
    Inferred,
    OpRule,
    PositiveInt,
    RuleContext,
    RuleViolation,
    Shape,
    TensorSpec,
    Trait,
    Window,
    axis_name,
    numel,
    require_rank,
    rf_window,
)
from specdsl.ops.window import window_output


class ScaleArgs(Args):
    value: float = Field(description="the constant every element is multiplied by")


class BlurPoolArgs(Args):
    filt: Annotated[int, Field(ge=2, le=9)] = Field(
        default=3, description="size of the binomial filter (timm's filt_size; 3 and 5 in practice)")
    stride: PositiveInt = 2
    pad_mode: Literal["reflect", "constant", "replicate", "circular"] = Field(
        default="reflect", description="how the input is padded before the blur (F.pad's modes; timm: reflect)")


class BlurPoolAttrs(NamedTuple):
    channels: int
    filt: int
    stride: tuple[int, int]
    padding: tuple[int, int]  # both sides of each axis (timm pads evenly)
    pad_mode: str
    windows: tuple[Window, ...]
    kernel: tuple[int, int]  # read by the table's window label
    dilation: tuple[int, int]


def binomial_row(filt: int) -> list[int]:
    """C(filt-1, k) for k = 0..filt-1: the unnormalised 1-D blur (1 2 1 for 3, 1 4 6 4 1 for 5)."""
    row = [1]
    for _ in range(filt - 1):
        row = [a + b for a, b in zip([0, *row], [*row, 0], strict=True)]
    return row


def infer_scale(args: ScaleArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    return Inferred(ins[0], args)


def scale_ops(a: ScaleArgs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out)  # one multiplication per element


def scale_detail(op: str, a: ScaleArgs) -> str:
    return f"×{a.value:g}"


def infer_blurpool(args: BlurPoolArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    require_rank(x, (2,), "blurpool")
    pad = ((args.stride - 1) + (args.filt - 1)) // 2
    sizes = []
    for i, n in enumerate(x[1:]):
        if args.pad_mode == "reflect" and pad >= n:
            raise RuleViolation(
                "E309", f"reflect padding must be smaller than the input along {axis_name(2, i)} (PyTorch rule); "
                        f"blurpool pads {pad} for filt={args.filt}, stride={args.stride}, received size {n}",
                hint="use pad_mode=constant, or blur a larger input", field="pad_mode")
        if args.pad_mode == "circular" and pad > n:
            raise RuleViolation(
                "E309", f"circular padding may wrap around the input at most once along {axis_name(2, i)} (PyTorch "
                        f"rule); blurpool pads {pad} for filt={args.filt}, stride={args.stride}, received size {n}",
                hint="use pad_mode=constant, or blur a larger input", field="pad_mode")
        sizes.append(window_output(n, args.filt, args.stride, pad, pad, 1, rank=2, axis=i, ctx=ctx))
    window = Window(args.filt, args.stride, pad)
    attrs = BlurPoolAttrs(x[0], args.filt, (args.stride,) * 2, (pad, pad), args.pad_mode, (window, window),
                          (args.filt,) * 2, (1, 1))
    return Inferred((x[0], *sizes), attrs)


def blurpool_weights(a: BlurPoolAttrs) -> tuple[TensorSpec, ...]:
    return (TensorSpec("filt", (a.channels, 1, a.filt, a.filt), "buffer", persistent=False),)


def blurpool_macs(a: BlurPoolAttrs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) * a.filt * a.filt  # a depthwise conv: one input channel per output


def blurpool_summary(op: str, a: BlurPoolAttrs) -> str:
    text = f"{op} {a.filt}×{a.filt} s{a.stride[0]}"
    return text if a.pad_mode == "reflect" else f"{text} {a.pad_mode}"


RULES = [
    OpRule("scale", "norm", ScaleArgs, infer_scale, extra=scale_ops, positional=("value",),
           detail=scale_detail,
           traits=frozenset({Trait.KEEPS_CHANNELS, Trait.KEEPS_LAYOUT, Trait.OVERWRITABLE_OUTPUT}),
           doc="multiplies by a constant, no parameters (x * value: Inception-ResNet-v2's residual scale)"),
    OpRule("blurpool", "pool", BlurPoolArgs, infer_blurpool, blurpool_weights, blurpool_macs, rf=rf_window,
           summary=blurpool_summary, traits=frozenset({Trait.KEEPS_CHANNELS, Trait.OVERWRITABLE_OUTPUT}),
           ranks=frozenset({2}),
           doc="anti-aliased downsampling (timm's BlurPool2d): pad, then a depthwise conv by a fixed binomial "
               "filter, a non-persistent buffer `filt` [C, 1, filt, filt]; MACs counted as a depthwise conv's"),
]
