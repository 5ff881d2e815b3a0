"""stage: a group of layers (`stage: [...]` or `stage: {layers: [...]}`).

Named (`stage { ... } as layer1`), it is a container of that name; unnamed, it is transparent:
its layers continue the numbering of the container around it (the engine decides which).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from specdsl.blocks.base import BlockExpander, BlockRule, Frame, LayerList
from specdsl.ops.rule import Args
from specdsl.source import PathKey

if TYPE_CHECKING:
    from specdsl.schema.layer import LayerSpec


class StageArgs(Args):
    layers: LayerList


def expand(ex: BlockExpander, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
    raw = spec.raw_args
    if isinstance(raw, list):
        return ex.seq(raw, src, out, x, {"input": x}, frame)
    args = ex.validate(StageArgs, raw, src, frame, "'stage'")
    if args is None:
        return None
    return ex.seq(args.layers, (*src, "layers"), out, x, {"input": x}, frame)


def estimate(raw: Any, nested: Callable[[Any], int]) -> int:
    return nested(raw if isinstance(raw, list) else (raw.get("layers") if isinstance(raw, dict) else None) or [])


RULE = BlockRule("stage", StageArgs, expand, estimate, doc="a group of layers", body=False, list_form=True,
                 validate_detached=False, sections=("layers",), sequence=True)
