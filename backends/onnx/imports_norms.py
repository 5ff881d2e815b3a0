"""Import patterns of the norms specdsl's export writes out of smaller ops (see imports_table.py):
a batch norm keeping no running statistics (normalised by the batch's) and a group norm, each
ReduceMean/Sub/Mul/ReduceMean/Add/Sqrt/Div over its axes, then the per-channel affine."""

from __future__ import annotations

from typing import Any

from onnx import NodeProto

from specdsl.backends.onnx.imports_layers import _normalized, _per_channel
from specdsl.backends.onnx.imports_reader import Match, Reader, Tensor


def _affine(r: Reader, node: NodeProto) -> tuple[NodeProto, dict[str, Tensor], list[NodeProto]] | None:
    """The node before a per-channel affine (Mul by Unsqueeze(weight), Add of Unsqueeze(bias)) that
    ends at ``node``, its weights and the nodes it covers; ``node`` itself where there is none."""
    weights: dict[str, Tensor] = {}
    covered: list[NodeProto] = []
    for op, name in (("Add", "bias"), ("Mul", "weight")):
        if node.op_type != op:
            continue
        for y, w in (tuple(node.input), tuple(reversed(node.input))):
            found, before = _per_channel(r, w), r.producer.get(y)
            if found is not None and before is not None and r.free(before) and not r.is_weight(y):
                weights[name] = r.tensor(found[0])
                covered += [node, *([found[1]] if found[1] is not None else [])]
                node = before
                break
        else:
            return None
    return node, weights, covered


def batch_statistics(r: Reader, node: NodeProto) -> Match | None:
    """bn(track_running_stats=false): normalised over the batch and spatial axes."""
    found = _affine(r, node)
    if found is None or found[0].op_type != "Div":
        return None
    div, weights, covered = found
    rank = len(r.full(div.output[0]) or ())
    stats = _normalized(r, div, (0, *range(2, rank))) if rank >= 2 else None
    if stats is None or len(weights) == 1:
        return None
    x, eps, inner = stats
    args: dict[str, Any] = {"track_running_stats": False}
    if not weights:
        args["affine"] = False
    if eps != 1e-5:
        args["eps"] = eps
    return Match(args, [x], [*covered, div, *inner] if covered else [div, *inner], weights)


def groupnorm(r: Reader, node: NodeProto) -> Match | None:
    """Reshape(x, (N, G, rest)), normalised over rest, Reshape back, then the per-channel affine."""
    found = _affine(r, node)
    if found is None or found[0].op_type != "Reshape":
        return None
    back, weights, covered = found
    div = r.made_by(back.input[0], "Div")
    stats = _normalized(r, div, (2,)) if div is not None else None
    view = r.made_by(stats[0], "Reshape") if stats is not None else None
    groups = r.shape(view.output[0]) if view is not None else None
    if stats is None or view is None or div is None or groups is None or len(groups) != 2 or len(weights) == 1 \
            or r.shape(view.input[0]) != r.shape(back.output[0]):
        return None
    eps = stats[1]
    args: dict[str, Any] = {"groups": int(groups[0])}
    if not weights:
        args["affine"] = False
    if eps != 1e-5:
        args["eps"] = eps
    nodes = [*covered, back] if covered else [back]
    return Match(args, [view.input[0]], [*nodes, div, *stats[2], view], weights)
