"""se: squeeze-and-excitation (Hu et al. 2018), laid out as torchvision's SqueezeExcitation.

gap(keepdims) -> fc1 (1×1 conv to the squeeze channels, bias) -> activation -> fc2 (1×1 conv
back to the block's channels, bias) -> gate, and the gate scales the block's input channel by
channel. The parameters come out as fc1.weight, fc1.bias, fc2.weight, fc2.bias, so a
torchvision checkpoint maps by position.

The block's channels are an argument, as in SqueezeExcitation(input_channels,
squeeze_channels): a block holds no shape math, and it checks the argument against its input
instead. The squeeze width is given directly (`squeeze`, what EfficientNet and MobileNetV3
compute with their own rounding) or as `reduction` r, giving channels // r (the paper's r = 16).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from specdsl.blocks.base import BlockExpander, BlockRule, Frame
from specdsl.ops import lookup
from specdsl.ops.model import Field
from specdsl.ops.rule import Args, PositiveInt
from specdsl.source import PathKey

if TYPE_CHECKING:
    from specdsl.schema.layer import LayerSpec


class SEArgs(Args):
    channels: PositiveInt = Field(description="channels of the block's input (and of its output)")
    squeeze: PositiveInt | None = Field(default=None, description="channels of the bottleneck (fc1's output)")
    reduction: PositiveInt | None = Field(default=None, description="or: squeeze = channels // reduction")
    act: str = Field(default="relu", description="activation between fc1 and fc2 (an activation op)")
    gate: Literal["sigmoid", "hardsigmoid"] = Field(default="sigmoid", description="the gate after fc2")


def expand(ex: BlockExpander, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
    args = ex.validate(SEArgs, spec.raw_args, src, frame, "'se'")
    if args is None:
        return None
    if (args.squeeze is None) == (args.reduction is None):
        ex.error("E313", "se needs exactly one of squeeze (channels) or reduction; received "
                 + ("both" if args.squeeze is not None else "neither"), src, frame,
                 hint="write se(channels=64, squeeze=16) or se(channels=64, reduction=4)", path=out)
        return None
    squeeze = args.squeeze if args.squeeze is not None else args.channels // (args.reduction or 1)
    if squeeze < 1:
        ex.error("E301", f"se reduction {args.reduction} leaves no squeeze channels of {args.channels}: "
                 f"{args.channels} // {args.reduction} = 0", src, frame,
                 hint=f"use a reduction of at most {args.channels}, or give squeeze", path=out)
        return None
    if lookup(args.gate) is None:
        ex.error("E204", f"se gate '{args.gate}' is not an op of this version", src, frame, hint="use gate=sigmoid",
                 path=out)
        return None
    act = lookup(args.act)
    if act is None or act.family != "activation":
        ex.error("E375", f"se act must be an activation op; received '{args.act}'", src, frame,
                 hint="e.g. act=relu (torchvision's default) or act=silu (EfficientNet)", path=out)
        return None
    shape = ex.shape(x)
    if shape is None:
        return None
    if shape[0] != args.channels:
        ex.error("E302", f"channel mismatch: se declares channels={args.channels} but receives {shape[0]} "
                 f"(input {list(shape)})", src, frame,
                 hint=f"set `channels: {shape[0]}` in YAML, `channels={shape[0]}` in the DSL, "
                 "or fix the layer that feeds it",
                 path=out)
        return None
    loc = spec.loc
    s = ex.prim("gap", (x,), f"{out}.avgpool", frame, loc, keepdims=True)
    s = ex.prim("conv", (s,), f"{out}.fc1", frame, loc, out=squeeze, k=1)
    s = ex.prim(act.name, (s,), f"{out}.activation", frame, loc)
    s = ex.prim("conv", (s,), f"{out}.fc2", frame, loc, out=args.channels, k=1)
    s = ex.prim(args.gate, (s,), f"{out}.scale_activation", frame, loc)
    return ex.prim("mul", (x, s), f"{out}.scale", frame, loc)


def estimate(raw: Any, nested: Callable[[Any], int]) -> int:
    return 6


RULE = BlockRule("se", SEArgs, expand, estimate, doc="built-in squeeze-and-excitation block (torchvision layout)")
