"""Import patterns of evonorm and frn as specdsl's export writes them (norm_evo.py), read from the node
each ends with back to its input (see imports_table.py):

* evonorm: Add(Mul(Reshape(Div(numerator, std), Shape(x)), weight), bias), std =
  Sqrt(Add(ReduceMean₂((xg − ReduceMean₂(xg))²), eps)) of xg = Reshape(x, (N, groups, −1)); the
  numerator is Reshape(Mul(x, Sigmoid(Mul(x, v))), (N, groups, −1)), or xg itself (apply_act=false,
  variant s0a; timm's S0 without its gate is a bare affine, which nothing tells from any other);
* frn: Max(Add(Mul(Div(x, Sqrt(Add(ReduceMean_spatial(Mul(x, x)), eps))), weight), bias), tau), or the
  Add alone (apply_act=false).

Weights are [C] or Unsqueezed to (C, 1, ...)."""

from __future__ import annotations

from typing import Any

from onnx import NodeProto

from specdsl.backends.onnx.imports_layers import _per_channel
from specdsl.backends.onnx.imports_norm_global import _axes, _either, _plus_eps
from specdsl.backends.onnx.imports_norms import _affine
from specdsl.backends.onnx.imports_reader import Match, Reader, decimal


def _group_std(r: Reader, std: str) -> tuple[str, float, list[NodeProto]] | None:
    """xg, eps and the nodes of Sqrt(Add(ReduceMean₂(Mul(d, d)), eps)), d = Sub(xg, ReduceMean₂(xg))."""
    sqrt = r.made_by(std, "Sqrt")
    found = _plus_eps(r, sqrt.input[0], "ReduceMean") if sqrt is not None else None
    if sqrt is None or found is None:
        return None
    plus, var, eps = found
    sq = r.inner(var.input[0], "Mul")
    # Mul(d, d) reads d twice: d's one reader is the Mul.
    sub = r.made_by(sq.input[0], "Sub") if sq is not None and sq.input[0] == sq.input[1] else None
    if sub is not None and not all(u is sq for u in r.users.get(sub.output[0], [])):
        return None
    mean = r.inner(sub.input[1], "ReduceMean") if sub is not None else None
    if sq is None or sub is None or mean is None or mean.input[0] != sub.input[0] \
            or _axes(r, var) != [2] or _axes(r, mean) != [2]:
        return None
    return sub.input[0], decimal(eps), [sqrt, plus, var, sq, sub, mean]


def _gated(r: Reader, num: str, x: str) -> tuple[str, list[NodeProto]] | None:
    """v and the nodes of Reshape(Mul(x, Sigmoid(Mul(x, Unsqueeze(v)))), (N, groups, −1))."""
    view = r.inner(num, "Reshape")
    gated = r.inner(view.input[0], "Mul") if view is not None else None
    if view is None or gated is None or x not in gated.input:
        return None
    gate = r.inner(gated.input[1] if gated.input[0] == x else gated.input[0], "Sigmoid")
    xv = r.inner(gate.input[0], "Mul") if gate is not None else None
    if gate is None or xv is None or x not in xv.input:
        return None
    v = _per_channel(r, xv.input[1] if xv.input[0] == x else xv.input[0])
    if v is None:
        return None
    return v[0], [view, gated, gate, xv, *([v[1]] if v[1] is not None else [])]


def evonorm(r: Reader, node: NodeProto) -> Match | None:
    found = _affine(r, node)
    if found is None or found[0].op_type != "Reshape" or len(found[1]) != 2:
        return None
    back, weights, covered = found
    # Shape(x) of static axes is folded (taken) before the patterns run: its node still names x.
    shape, div = r.producer.get(back.input[1]), r.inner(back.input[0], "Div")
    std = _group_std(r, div.input[1]) if div is not None else None
    if shape is None or shape.op_type != "Shape" or div is None or std is None:
        return None
    x, xg, (eps, stats) = shape.input[0], std[0], std[1:]
    view = r.made_by(xg, "Reshape")
    target = r.ints(view.input[1]) if view is not None else None
    if view is None or view.input[0] != x or target is None or len(target) != 3 or target[0] != 0 or target[2] != -1:
        return None
    args: dict[str, Any] = {"groups": target[1]} | ({} if eps == 1e-5 else {"eps": eps})
    if div.input[0] == xg:
        inner: list[NodeProto] = []
        args |= {"apply_act": False, "variant": "s0a"}
    else:
        gated = _gated(r, div.input[0], x)
        if gated is None:
            return None
        weights["v"] = r.tensor(gated[0])
        inner = gated[1]
    own = [shape] if r.free(shape) else []
    return Match(args, [x], [*covered, back, *own, div, *stats, view, *inner], weights)


def frn(r: Reader, node: NodeProto) -> Match | None:
    tau: tuple[str, NodeProto | None] | None = None
    if node.op_type == "Max":
        for y, t in _either(node):
            tau, add = _per_channel(r, t), r.inner(y, "Add")
            if tau is not None and add is not None:
                break
        else:
            return None
    else:
        add = node
    found = _affine(r, add)
    if found is None or found[0].op_type != "Div" or len(found[1]) != 2:
        return None
    div, weights, covered = found
    x, root_name = div.input
    root = r.inner(root_name, "Sqrt")
    stats = _plus_eps(r, root.input[0], "ReduceMean") if root is not None else None
    sq = r.inner(stats[1].input[0], "Mul") if stats is not None else None
    rank = len(r.full(x) or ())
    if root is None or stats is None or sq is None or list(sq.input) != [x, x] or rank < 3 \
            or _axes(r, stats[1]) != list(range(2, rank)):
        return None
    plus, mean, eps = stats
    args: dict[str, Any] = {} if decimal(eps) == 1e-5 else {"eps": decimal(eps)}
    nodes = [*covered, div, root, plus, mean, sq]
    if tau is None:
        args["apply_act"] = False
    else:
        weights["tau"] = r.tensor(tau[0])
        nodes = [node, *nodes, *([tau[1]] if tau[1] is not None else [])]
    return Match(args, [x], nodes, weights)
