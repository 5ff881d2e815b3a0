"""dense: a DenseNet dense block, each layer fed the concatenation of all before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from specdsl.blocks.base import BlockExpander, BlockRule, Frame, int_arg
from specdsl.blocks.expr import ExprError
from specdsl.blocks.names import fill_template
from specdsl.errors import SourceLoc
from specdsl.ops.model import Field
from specdsl.ops.rule import Args, PositiveInt, Probability
from specdsl.source import PathKey

if TYPE_CHECKING:
    from specdsl.schema.layer import LayerSpec


class DenseArgs(Args):
    n: PositiveInt = Field(description="number of dense layers")
    growth: PositiveInt = Field(description="growth rate k: channels each layer adds")
    bottleneck: PositiveInt | None = Field(default=4, description="1x1 conv to bottleneck·k first; null for none")
    drop: Probability = 0.0
    layer_names: str | None = Field(default=None, description="each dense layer's module name, a template on its "
                                    "index i from 0 ('denselayer{i + 1}': torchvision's); unset: dense[i]")


def expand(ex: BlockExpander, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
    args = ex.validate(DenseArgs, spec.raw_args, src, frame, "'dense'")
    if args is None:
        return None
    loc = spec.loc
    features = [x]
    for i in range(args.n):
        p = _layer_path(ex, args.layer_names, i, src, out, frame, loc)
        if p is None:
            return None
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


def _layer_path(ex: BlockExpander, template: str | None, i: int, src: PathKey, out: str, frame: Frame,
                loc: SourceLoc | None) -> str | None:
    """Dense layer i's module: ``dense[i]``, or a child of the block named by the template."""
    if template is None:
        return f"{out}.dense[{i}]"
    try:
        name = fill_template(template, {"i": i})
    except ExprError as exc:
        ex.error("E380", f"cannot fill the name template '{template}': {exc}", (*src, "layer_names"), frame,
                 path=out, hint="use the layer's index in braces: layer_names: \"denselayer{i + 1}\"")
        return None
    return ex.claim(out, name, loc, frame)


def estimate(raw: Any, nested: Callable[[Any], int]) -> int:
    n = min(int_arg(raw, "n"), 10**9)
    return 8 * n + 1 + n * (n + 1) // 2  # layer i concatenates i + 1 tensors


RULE = BlockRule("dense", DenseArgs, expand, estimate, doc="built-in dense block")
