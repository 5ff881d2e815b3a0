"""dense: a DenseNet dense block, each layer fed the concatenation of all before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field

from specdsl.blocks.base import BlockExpander, BlockRule, Frame, int_arg
from specdsl.ops.rule import Args, PositiveInt, Probability
from specdsl.source import PathKey

if TYPE_CHECKING:
    from specdsl.schema.layer import LayerSpec


class DenseArgs(Args):
    n: PositiveInt = Field(description="number of dense layers")
    growth: PositiveInt = Field(description="growth rate k: channels each layer adds")
    bottleneck: PositiveInt | None = Field(default=4, description="1x1 conv to bottleneck·k first; null for none")
    drop: Probability = 0.0


def expand(ex: BlockExpander, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
    args = ex.validate(DenseArgs, spec.raw_args, src, frame, "'dense'")
    if args is None:
        return None
    loc = spec.loc
    features = [x]
    for i in range(args.n):
        p = f"{out}.dense[{i}]"
        h = features[0] if len(features) == 1 else ex.prim("concat", tuple(features), f"{p}.cat", frame, loc)
        if args.bottleneck is not None:
            h = ex.prim("bn", (h,), f"{p}.norm1", frame, loc)
            h = ex.prim("relu", (h,), f"{p}.relu1", frame, loc)
            h = ex.prim("conv", (h,), f"{p}.conv1", frame, loc, out=args.bottleneck * args.growth, k=1, bias=False)
            h = ex.prim("bn", (h,), f"{p}.norm2", frame, loc)
            h = ex.prim("relu", (h,), f"{p}.relu2", frame, loc)
            h = ex.prim("conv", (h,), f"{p}.conv2", frame, loc, out=args.growth, k=3, pad=1, bias=False)
        else:
            h = ex.prim("bn", (h,), f"{p}.norm", frame, loc)
            h = ex.prim("relu", (h,), f"{p}.relu", frame, loc)
            h = ex.prim("conv", (h,), f"{p}.conv", frame, loc, out=args.growth, k=3, pad=1, bias=False)
        if args.drop > 0:
            h = ex.prim("dropout", (h,), f"{p}.drop", frame, loc, p=args.drop)
        features.append(h)
    return ex.prim("concat", tuple(features), f"{out}.cat", frame, loc)


def estimate(raw: Any, nested: Callable[[Any], int]) -> int:
    n = min(int_arg(raw, "n"), 10**9)
    return 8 * n + 1 + n * (n + 1) // 2  # layer i concatenates i + 1 tensors


RULE = BlockRule("dense", DenseArgs, expand, estimate, doc="built-in dense block")
