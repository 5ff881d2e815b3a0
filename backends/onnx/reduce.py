"""ONNX for ``stack`` and ``sum`` (specdsl/ops/reduce.py), both ways: the lowerings and the import patterns.

ONNX has no Stack: a stack is an Unsqueeze of each input at the new axis and a Concat along it, which
is what torch.onnx writes for ``torch.stack`` too, so the import pattern reads that pair back. A sum
is ReduceSum with its axes as an input (opset 13 on).
"""

from __future__ import annotations

from onnx import NodeProto

from specdsl.backends.onnx.builder import Builder
from specdsl.backends.onnx.imports_reader import Match, Reader, attrs
from specdsl.backends.onnx.site import Site


def stack(b: Builder, s: Site) -> str:
    d = s.attrs.dim
    parts = [b.unsqueeze(x, [d], (*shape[:d - 1], 1, *shape[d - 1:]), name=f"unsqueeze{i}")
             for i, (x, shape) in enumerate(zip(s.ins, s.in_shapes, strict=True))]
    return b.op("Concat", parts, s.shape, axis=d)


def sum_(b: Builder, s: Site) -> str:
    return b.op("ReduceSum", [s.x, b.ints(list(s.attrs.dims), "axes")], s.shape, keepdims=int(s.attrs.keepdims))


def read_stack(r: Reader, node: NodeProto) -> Match | None:
    """Concat along axis d of tensors each made by an Unsqueeze at d (read by the Concat alone)."""
    rank = len(r.full(node.output[0]) or ())
    if not rank:
        return None
    d = attrs(node).get("axis", 0) % rank
    made = [r.made_by(x, "Unsqueeze", node) for x in node.input]
    if d == 0 or any(m is None for m in made):
        return None
    sources: list[str] = []
    for m in made:
        assert m is not None
        axes = r.ints(m.input[1]) if len(m.input) > 1 and m.input[1] else attrs(m).get("axes")
        if not axes or len(axes) != 1 or axes[0] % rank != d or r.is_weight(m.input[0]):
            return None
        sources.append(str(m.input[0]))
    return Match({"dim": d}, sources, [node, *(m for m in made if m is not None)])


def read_sum(r: Reader, node: NodeProto) -> Match | None:
    """ReduceSum over non-batch axes (given as an input, or as an attribute before opset 13)."""
    x = node.input[0]
    rank = len(r.full(x) or ())
    axes = r.ints(node.input[1]) if len(node.input) > 1 and node.input[1] else attrs(node).get("axes")
    if not axes or not rank or r.is_weight(x) or any(ax % rank == 0 for ax in axes):
        return None
    dims = sorted(ax % rank for ax in axes)
    args: dict[str, object] = {"dim": dims[0] if len(dims) == 1 else dims}
    if attrs(node).get("keepdims", 1):
        args["keepdims"] = True
    return Match(args, [x], [node])
