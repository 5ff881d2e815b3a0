"""inception: parallel branches from one input, concatenated (GoogLeNet, Inception v3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from specdsl.blocks.base import BlockExpander, BlockRule, Frame, LayerList
from specdsl.blocks.names import child
from specdsl.ops.model import Field
from specdsl.ops.rule import Args
from specdsl.schema.names import NAME_PATTERN, reserved_segment
from specdsl.source import PathKey

if TYPE_CHECKING:
    from specdsl.schema.layer import LayerSpec


class InceptionArgs(Args):
    branches: dict[Annotated[str, Field(pattern=NAME_PATTERN)], LayerList] | Annotated[
        list[LayerList], Field(min_length=1)]
    dim: int = 1
    # Branches numbered 0, 1, ... instead of named, as torchvision's nn.ModuleList of branches
    # (DeepLabV3's ASPP.convs): the branch names then only label the source.
    numbered: bool = False


def expand(ex: BlockExpander, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
    args = ex.validate(InceptionArgs, spec.raw_args, src, frame, "'inception'")
    if args is None:
        return None
    bad = [k for k in args.branches if isinstance(args.branches, dict) and reserved_segment(k)]
    if bad:
        ex.error("E315", f"inception branch name '{bad[0]}' is reserved (a PyTorch module attribute)",
                 (*src, "branches", bad[0]), frame, hint="rename the branch, e.g. b1, b3x3, pool", path=out)
        return None
    named = args.branches.items() if isinstance(args.branches, dict) else \
        ((f"branch{i}", b) for i, b in enumerate(args.branches))
    outs = []
    for i, (key, layers) in enumerate(named):
        bsrc = (*src, "branches", key if isinstance(args.branches, dict) else i)
        y = ex.seq(layers, bsrc, child(out, i) if args.numbered else f"{out}.{key}", x, {"input": x}, frame)
        if y is None:
            return None
        outs.append(y)
    if len(outs) == 1:
        return outs[0]
    return ex.prim("concat", tuple(outs), f"{out}.concat", frame, spec.loc, dim=args.dim,
                   notes=("inception branches are concatenated on channels and must agree on every other axis",))


def estimate(raw: Any, nested: Callable[[Any], int]) -> int:
    branches = raw.get("branches") if isinstance(raw, dict) else None
    items = branches.values() if isinstance(branches, dict) else branches if isinstance(branches, list) else []
    return 1 + sum(1 + nested(b) for b in items)


RULE = BlockRule("inception", InceptionArgs, expand, estimate, doc="built-in inception block",
                 sections=("branches",))
