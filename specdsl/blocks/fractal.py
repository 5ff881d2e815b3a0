"""fractal: FractalNet's self-similar columns of a base block, joined by averaging."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from specdsl.blocks.base import BlockExpander, BlockRule, Frame, LayerList, int_arg
from specdsl.ops.model import Field
from specdsl.ops.rule import Args, Probability
from specdsl.source import PathKey

if TYPE_CHECKING:
    from specdsl.schema.layer import LayerSpec

MAX_FRACTAL_COLUMNS = 12


class FractalArgs(Args):
    columns: Annotated[int, Field(ge=1, le=MAX_FRACTAL_COLUMNS)]
    base: LayerList = Field(description="the base block f1")
    drop_local: Probability = 0.15
    drop_global: Probability = 0.5


def expand(ex: BlockExpander, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
    args = ex.validate(FractalArgs, spec.raw_args, src, frame, "'fractal'")
    if args is None:
        return None
    counters: dict[int, int] = {}
    joins = [0]

    def base(z: int, column: int) -> int | None:
        k = counters.get(column, 0)
        counters[column] = k + 1
        return ex.seq(args.base, (*src, "base"), f"{out}.col{column}[{k}]", z, {"input": z}, frame)

    def join(cols: list[tuple[int, int]]) -> int:
        if len(cols) == 1:
            return cols[0][1]
        joins[0] += 1
        return ex.prim("join", tuple(y for _, y in cols), f"{out}.join{joins[0]}", frame, spec.loc,
                       drop_local=args.drop_local, drop_global=args.drop_global,
                       columns=[c for c, _ in cols],
                       notes=("fractal columns are averaged and must agree in shape",))

    def fract(c: int, z: int, offset: int) -> list[tuple[int, int]] | None:
        # f1 = base; f(C+1) = (fC ∘ fC) ⊕ base; joins flattened as in the FractalNet paper.
        # Column offset+1 is this sub-fractal's shallowest; deeper columns follow.
        shallow = base(z, offset + 1)
        if shallow is None:
            return None
        if c == 1:
            return [(offset + 1, shallow)]
        first = fract(c - 1, z, offset + 1)
        if first is None:
            return None
        second = fract(c - 1, join(first), offset + 1)
        if second is None:
            return None
        return [*second, (offset + 1, shallow)]

    cols = fract(args.columns, x, 0)
    return None if cols is None else join(sorted(cols, key=lambda t: -t[0]))


def estimate(raw: Any, nested: Callable[[Any], int]) -> int:
    columns = min(int_arg(raw, "columns"), 64)
    base = raw.get("base") if isinstance(raw, dict) else None
    return (2**columns - 1) * nested(base or []) + columns * 2 ** (columns - 1)


RULE = BlockRule("fractal", FractalArgs, expand, estimate, doc="built-in fractal block",
                 sections=("base",))
