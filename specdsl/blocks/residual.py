"""residual: a body and a shortcut, summed (ResNet, pre-activation ResNet, MobileNetV2)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from specdsl.blocks.base import BlockExpander, BlockRule, Frame, LayerList
from specdsl.blocks.names import child
from specdsl.errors import SourceLoc
from specdsl.ops.model import Field
from specdsl.ops.rule import Args, fmt_shape
from specdsl.source import PathKey

# The op that joins the body and the shortcut (import reads residual blocks back by it).
JOIN = "add"

if TYPE_CHECKING:
    from specdsl.schema.layer import LayerSpec


class ResidualArgs(Args):
    body: LayerList = Field(description="the residual branch")
    shortcut: Literal["auto", "identity", "projection", "identity_if_same"] | LayerList = Field(
        default="auto",
        description="auto: 1x1 conv + bn exactly when stride or channels change; identity_if_same: "
        "no shortcut at all when they change (MobileNetV2)")
    pre: LayerList | None = Field(default=None, description="pre-activation layers shared by both paths")
    post: str | LayerList | None = Field(default=None, description="layers after the sum, e.g. relu")
    shortcut_name: str = Field(default="downsample", description="the module name of the shortcut's layers "
                               "(torchvision's ResNet: downsample; RegNet: proj)")


def expand(ex: BlockExpander, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
    args = ex.validate(ResidualArgs, spec.raw_args, src, frame, "'residual'")
    if args is None:
        return None
    # pre, body and post layers are the block's own children (BasicBlock's conv1, bn1, ...), numbered
    # together; the shortcut is a container of its own (torchvision's `downsample`).
    scope = {"input": x}
    start: int | None = x
    if args.pre is not None:
        start = ex.seq(args.pre, (*src, "pre"), out, x, scope, frame)
    body = ex.seq(args.body, (*src, "body"), out, start, dict(scope), frame)
    if body is None or start is None:
        return None
    in_shape, body_shape = ex.shape(x), ex.shape(body)
    notes: tuple[str, ...] = ()
    shortcut: int | None
    mode = args.shortcut
    if mode == "identity_if_same" and in_shape != body_shape:
        y = body  # shapes change: the block is a plain sequence
    elif isinstance(mode, list):
        path = ex.claim(out, args.shortcut_name, spec.loc, frame)
        shortcut = None if path is None else ex.seq(mode, (*src, "shortcut"), path, start, dict(scope), frame)
    elif mode in ("identity", "identity_if_same") or (
            mode == "auto" and (in_shape == body_shape or None in (in_shape, body_shape))):
        shortcut = x
        if mode == "identity" and in_shape is not None and body_shape is not None and in_shape != body_shape:
            notes = (f"the identity shortcut carries the block input {fmt_shape(in_shape)} unchanged, "
                     f"but the body gives {fmt_shape(body_shape)}; use `shortcut: auto` to project",)
    else:
        path = ex.claim(out, args.shortcut_name, spec.loc, frame)
        shortcut = None if path is None else projection(ex, start, body, path, frame, spec.loc)
    if mode != "identity_if_same" or in_shape == body_shape:
        if shortcut is None:
            return None
        y = ex.prim(JOIN, (body, shortcut), f"{out}.add", frame, spec.loc, notes=notes)
    if args.post is not None:
        post_src = (*src, "post")
        if isinstance(args.post, str):
            return ex.layer(args.post, post_src, out, y, dict(scope), frame)
        return ex.seq(args.post, post_src, out, y, dict(scope), frame)
    return y


def projection(ex: BlockExpander, x: int, body: int, path: str, frame: Frame, loc: SourceLoc | None) -> int | None:
    """1x1 conv (no bias) + batch norm matching the body's channels and stride."""
    in_shape, body_shape = ex.shape(x), ex.shape(body)
    if in_shape is None or body_shape is None or len(in_shape) != len(body_shape) or len(in_shape) < 2:
        # No 1x1 conv can bridge a change of rank; the add's own rule reports the mismatch.
        return x
    stride = []
    in_rf, out_rf = ex.rf(x), ex.rf(body)
    for axis in range(len(in_shape) - 1):
        s = None
        # Stride 0: the field is the whole input (after a global pool); the shapes decide instead.
        if in_rf is not None and out_rf is not None and in_rf[axis].stride and out_rf[axis].stride:
            ratio = Fraction(out_rf[axis].stride) / Fraction(in_rf[axis].stride)
            s = int(ratio) if ratio.denominator == 1 and ratio >= 1 else None
        if s is None:
            s = max(1, -(-in_shape[1 + axis] // body_shape[1 + axis]))
        stride.append(s)
    conv = ex.prim("conv", (x,), child(path, 0), frame, loc, out=body_shape[0], k=1,
                   stride=stride if len(set(stride)) > 1 else stride[0], bias=False)
    return ex.prim("bn", (conv,), child(path, 1), frame, loc)


def estimate(raw: Any, nested: Callable[[Any], int]) -> int:
    a = raw if isinstance(raw, dict) else {}
    size = 3 + sum(nested(a.get(k) or []) for k in ("body", "pre", "post"))
    if isinstance(a.get("shortcut"), list):
        size += nested(a["shortcut"])
    return size


RULE = BlockRule("residual", ResidualArgs, expand, estimate, doc="built-in residual block",
                 sections=("body", "pre", "shortcut", "post"))
