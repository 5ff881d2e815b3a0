"""transition: DenseNet's bn, relu, 1x1 conv (compressing channels) and 2x2 average pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from specdsl.blocks.base import BlockExpander, BlockRule, Frame
from specdsl.ops.model import Field
from specdsl.ops.rule import Args, PositiveInt
from specdsl.source import PathKey

# Its modules, named as torchvision's _Transition, with their ops (import reads transitions back by them).
LAYERS = (("norm", "bn"), ("relu", "relu"), ("conv", "conv"), ("pool", "avgpool"))

if TYPE_CHECKING:
    from specdsl.schema.layer import LayerSpec


class TransitionArgs(Args):
    theta: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(default=None, description="compression")
    out: PositiveInt | None = None


def expand(ex: BlockExpander, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
    args = ex.validate(TransitionArgs, spec.raw_args, src, frame, "'transition'")
    if args is None:
        return None
    if (args.theta is None) == (args.out is None):
        ex.error("E313", "transition needs exactly one of theta (compression) or out (channels)", src,
                 frame, hint="write transition: {theta: 0.5}", path=out)
        return None
    shape = ex.shape(x)
    if shape is None:
        return None
    channels = args.out if args.out is not None else int(shape[0] * args.theta)
    if channels < 1:
        ex.error("E301", f"transition compresses {shape[0]} channels to {channels}", src, frame, path=out)
        return None
    loc = spec.loc
    norm, relu, conv, pool = (op for _, op in LAYERS)
    h = ex.prim(norm, (x,), f"{out}.norm", frame, loc)
    h = ex.prim(relu, (h,), f"{out}.relu", frame, loc)
    h = ex.prim(conv, (h,), f"{out}.conv", frame, loc, out=channels, k=1, bias=False)
    return ex.prim(pool, (h,), f"{out}.pool", frame, loc, k=2, stride=2)


def estimate(raw: Any, nested: Callable[[Any], int]) -> int:
    return 4


RULE = BlockRule("transition", TransitionArgs, expand, estimate, doc="built-in transition block")
