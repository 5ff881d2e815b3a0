"""Import patterns of the multi-output ops: split and chunk, each output a part (see imports_table.py).

ONNX writes them three ways: Split (torch.onnx's dynamo exporter, older opsets), Slices of one
tensor tiling an axis (the TorchScript exporter, bounds computed from Shape and folded by the
lifter), or specdsl's own Identity read by Slices. Each covers the slices and names every output
a part; chunk's pattern takes the sizes torch.chunk gives, split's every other tiling.
"""

from __future__ import annotations

from onnx import NodeProto

from specdsl.backends.onnx.imports_reader import Match, MatchFn, Reader, attrs


def _data(r: Reader, name: str) -> bool:
    return bool(name) and not r.is_weight(name)


def _split_sizes(r: Reader, node: NodeProto) -> list[int] | None:
    split = r.ints(node.input[1]) if len(node.input) > 1 and node.input[1] else attrs(node).get("split")
    if split:
        return list(split)
    shapes = [r.full(o) for o in node.output]
    axis = attrs(node).get("axis", 0)
    if any(s is None for s in shapes):
        return None
    return [int(s[axis]) for s in shapes if s is not None]


def split(equal: bool) -> MatchFn:
    """ONNX Split into parts: chunk where torch.chunk's rule gives the sizes (``equal``), else split."""
    def match(r: Reader, node: NodeProto) -> Match | None:
        axis = attrs(node).get("axis", 0)
        sizes = _split_sizes(r, node)
        if axis <= 0 or not sizes or not _data(r, node.input[0]):
            return None
        return _parts(sizes, axis, equal, node.input[0], [node], list(node.output))
    return match


def _parts(sizes: list[int], axis: int, equal: bool, x: str, nodes: list[NodeProto], parts: list[str]) -> Match | None:
    n, total = len(sizes), sum(sizes)
    step = -(-total // n)
    chunked = all(s == step for s in sizes[:-1]) and 0 < sizes[-1] <= step and len(sizes) == -(-total // step)
    if chunked != equal:
        return None
    dim = {} if axis == 1 else {"dim": axis}
    args = {"chunks": n, **dim} if equal else {"sizes": sizes, **dim}
    return Match(args, [x], nodes, parts=parts)


def sliced(equal: bool) -> MatchFn:
    """specdsl's split: an Identity whose readers are Slices tiling one axis (each a part)."""
    def match(r: Reader, node: NodeProto) -> Match | None:
        users = r.users.get(node.output[0], [])
        if node.output[0] in r.graph_outputs or not users or not _data(r, node.input[0]):
            return None
        cuts = []
        for s in users:
            starts, ends, axes = (r.ints(s.input[k]) if len(s.input) > k else None for k in (1, 2, 3))
            steps = r.ints(s.input[4]) if len(s.input) > 4 and s.input[4] else [1]
            if s.op_type != "Slice" or not r.free(s) or not starts or not ends or not axes or steps != [1]:
                return None
            cuts.append((axes[0], starts[0], ends[0], s))
        if len({c[0] for c in cuts}) != 1 or cuts[0][0] <= 0:
            return None
        cuts.sort(key=lambda c: c[1])
        whole = r.full(node.input[0])
        tiled = [c[1] for c in cuts] == [0, *(c[2] for c in cuts[:-1])]
        if whole is None or not tiled or cuts[-1][2] < int(whole[cuts[0][0]]):
            return None
        sizes = [c[2] - c[1] for c in cuts[:-1]] + [int(whole[cuts[0][0]]) - cuts[-1][1]]
        return _parts(sizes, cuts[0][0], equal, node.input[0], [node, *(c[3] for c in cuts)],
                      [str(c[3].output[0]) for c in cuts])
    return match


def slices(equal: bool) -> MatchFn:
    """torch.onnx's chunk or split: Slices of one tensor tiling one axis (bounds folded from Shape)."""
    def match(r: Reader, node: NodeProto) -> Match | None:
        x = node.input[0]
        whole = r.full(x)
        siblings = [u for u in r.users.get(x, []) if u.op_type == "Slice" and r.free(u)]
        if not _data(r, x) or whole is None or node not in siblings or r.made_by(x, "Identity") is not None:
            return None  # (Slices of a free Identity: specdsl's split, taken with the Identity)
        cuts = []
        for s in siblings:
            cut = _cut(r, s, whole)
            if cut is None:
                return None
            cuts.append((*cut, s))
        axis = cuts[0][0]
        if len({c[0] for c in cuts}) != 1 or axis <= 0 or not isinstance(whole[axis], int):
            return None
        cuts.sort(key=lambda c: c[1])
        if [c[1] for c in cuts] != [0, *(c[2] for c in cuts[:-1])] or cuts[-1][2] != whole[axis]:
            return None
        others = [c[3] for c in cuts if c[3] is not node]
        return _parts([c[2] - c[1] for c in cuts], axis, equal, x, [node, *others], [str(c[3].output[0]) for c in cuts])
    return match


def _cut(r: Reader, s: NodeProto, whole: tuple[int | str, ...]) -> tuple[int, int, int] | None:
    """(axis, start, end) of a Slice of one axis with step 1, the end clipped to the axis."""
    starts, ends, axes = (r.ints(s.input[k]) if len(s.input) > k and s.input[k] else None for k in (1, 2, 3))
    steps = r.ints(s.input[4]) if len(s.input) > 4 and s.input[4] else [1]
    if not starts or not ends or not axes or len(axes) != 1 or steps != [1]:
        return None
    axis = axes[0] % len(whole)
    size = whole[axis]
    if not isinstance(size, int) or starts[0] < 0:
        return None
    return axis, starts[0], min(ends[0], size)
