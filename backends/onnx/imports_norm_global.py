"""Import patterns of grn, rmsnorm and simplenorm as specdsl's export writes them (norm_global.py),
read from the node each ends with back to its input (see imports_table.py):

* grn: Add(x, Add(Mul(weight, Mul(x, Div(g, Add(ReduceMean_c(g), eps)))), bias)), g = ReduceL2 over
  the spatial axes;
* rmsnorm: Div(x, Sqrt(Add(ReduceMean_c(Mul(x, x)), eps))), then Mul(weight) when affine;
* simplenorm: the same with Div(ReduceSumSquare_c(Sub(x, ReduceMean_c(x))), n − 1) as the variance.

The channel axis is 1, or the last axis (channels_last); a weight is [C] itself or Unsqueezed to
(C, 1, ...)."""

from __future__ import annotations

from typing import Any

from onnx import NodeProto

from specdsl.backends.onnx.imports_layers import _per_channel
from specdsl.backends.onnx.imports_reader import Match, Reader, Tensor, attrs, decimal


def _axes(r: Reader, node: NodeProto) -> list[int] | None:
    """A reduction's axes (an input from opset 18, an attribute before), counted from 0, if it keeps them."""
    if not attrs(node).get("keepdims", 1):
        return None
    axes = r.ints(node.input[1]) if len(node.input) > 1 and node.input[1] else attrs(node).get("axes")
    rank = len(r.full(node.input[0]) or ())
    return None if axes is None or not rank else sorted(a % rank for a in axes)


def _channel_axis(r: Reader, node: NodeProto) -> int | None:
    """The one axis a reduction runs over when it is the channels (1) or the last axis, else None."""
    axes, rank = _axes(r, node), len(r.full(node.input[0]) or ())
    return axes[0] if axes is not None and len(axes) == 1 and axes[0] in (1, rank - 1) and rank >= 2 else None


def _args(eps: float, axis: int, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {} if decimal(eps) == 1e-6 else {"eps": decimal(eps)}
    if axis != 1:
        args["channels_last"] = True
    return args | extra


def _either(node: NodeProto) -> tuple[tuple[str, str], tuple[str, str]]:
    a, b = node.input
    return (a, b), (b, a)


def _plus_eps(r: Reader, name: str, op: str) -> tuple[NodeProto, NodeProto, float] | None:
    """Add(op(...), eps): the Add, the op node and eps."""
    plus = r.inner(name, "Add")
    if plus is None:
        return None
    for v, e in _either(plus):
        made, eps = r.inner(v, op), r.scalar(e)
        if made is not None and eps is not None:
            return plus, made, eps
    return None


def grn(r: Reader, node: NodeProto) -> Match | None:
    for x, shifted_name in _either(node):
        shifted = r.inner(shifted_name, "Add")
        if shifted is None or r.is_weight(x):
            continue
        for weighted_name, b in _either(shifted):
            bias, weighted = _per_channel(r, b), r.inner(weighted_name, "Mul")
            if bias is None or weighted is None:
                continue
            for w, resp_name in _either(weighted):
                weight, resp = _per_channel(r, w), r.inner(resp_name, "Mul")
                if weight is None or resp is None:
                    continue
                found = _grn_response(r, x, resp)
                if found is not None:
                    axis, eps, covered = found
                    extra = [n for n in (bias[1], weight[1]) if n is not None]
                    return Match(_args(eps, axis), [x], [node, shifted, weighted, *covered, *extra],
                                 {"weight": r.tensor(weight[0]), "bias": r.tensor(bias[0])})
    return None


def _grn_response(r: Reader, x: str, resp: NodeProto) -> tuple[int, float, list[NodeProto]] | None:
    """Mul(x, Div(g, Add(ReduceMean_c(g), eps))), g = ReduceL2(x) over the axes but the channels."""
    if x not in resp.input:
        return None
    div = r.inner(resp.input[1] if resp.input[0] == x else resp.input[0], "Div")
    if div is None:
        return None
    g_name, den = div.input
    found = _plus_eps(r, den, "ReduceMean")
    g = r.producer.get(g_name)
    if found is None or g is None or g.op_type != "ReduceL2" or not r.free(g) or g.input[0] != x \
            or len(r.users.get(g_name, [])) != 2 or found[1].input[0] != g_name:
        return None
    plus, mean, eps = found
    axis, rank = _channel_axis(r, mean), len(r.full(x) or ())
    if axis is None or _axes(r, g) != [a for a in range(1, rank) if a != axis]:
        return None
    return axis, eps, [resp, div, plus, mean, g]


def _rms(r: Reader, node: NodeProto) -> Match | None:
    weights: dict[str, Tensor] = {}
    covered: list[NodeProto] = [node]
    div: NodeProto | None = node if node.op_type == "Div" else None
    if node.op_type == "Mul":
        for y, w in _either(node):
            weight, div = _per_channel(r, w), r.inner(y, "Div")
            if weight is not None and div is not None:
                weights["weight"] = r.tensor(weight[0])
                covered += [div, *([weight[1]] if weight[1] is not None else [])]
                break
        else:
            return None
    assert div is not None
    x, root_name = div.input
    root = r.inner(root_name, "Sqrt")
    if root is None or r.is_weight(x):
        return None
    for op, read in (("ReduceMean", _mean_square), ("Div", _unbiased_var)):
        found = _plus_eps(r, root.input[0], op)
        stats = read(r, x, found[1]) if found is not None else None
        if found is not None and stats is not None:
            axis, inner, centred = stats
            args = _args(found[2], axis, **({} if weights else {"affine": False}))
            return Match(args | {"_centred": centred}, [x], [*covered, root, found[0], found[1], *inner], weights)
    return None


def _mean_square(r: Reader, x: str, mean: NodeProto) -> tuple[int, list[NodeProto], bool] | None:
    sq = r.inner(mean.input[0], "Mul")
    axis = _channel_axis(r, mean)
    if sq is None or list(sq.input) != [x, x] or axis is None:
        return None
    return axis, [sq], False


def _unbiased_var(r: Reader, x: str, var: NodeProto) -> tuple[int, list[NodeProto], bool] | None:
    """Div(ReduceSumSquare_c(Sub(x, ReduceMean_c(x))), n − 1)."""
    ss, n1 = r.inner(var.input[0], "ReduceSumSquare"), r.scalar(var.input[1])
    sub = r.inner(ss.input[0], "Sub") if ss is not None else None
    mean = r.inner(sub.input[1], "ReduceMean") if sub is not None else None
    if ss is None or sub is None or mean is None or n1 is None or sub.input[0] != x or mean.input[0] != x:
        return None
    axis, shape = _channel_axis(r, ss), r.full(x)
    if axis is None or _channel_axis(r, mean) != axis or shape is None or shape[axis] != n1 + 1:
        return None
    return axis, [ss, sub, mean], True


def _which(centred: bool) -> Any:
    def match(r: Reader, node: NodeProto) -> Match | None:
        found = _rms(r, node)
        if found is None or found.args.pop("_centred") != centred:
            return None
        return found

    return match


rmsnorm = _which(centred=False)
simplenorm = _which(centred=True)
