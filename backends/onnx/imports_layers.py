"""Import patterns of the layers with weights, the norms, pools, resampling and layout ops.

Each function takes the :class:`Reader` and the ONNX node a pattern ends with and returns a
:class:`Match` (the spec op's arguments as a spec writes them, defaults left out) or None where
the node is outside what the op means in PyTorch (asymmetric padding, ONNX-only modes): such a
node is reported unmapped, never approximated.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from onnx import NodeProto

from specdsl.backends.onnx.imports_reader import Match, Reader, attrs, complement, decimal, one

# ONNX Pad's modes by PyTorch's name for them (conv's padding_mode, the pad op's mode).
PAD_MODES = {"constant": ("zeros", "constant"), "reflect": ("reflect", "reflect"),
             "edge": ("replicate", "replicate"), "wrap": ("circular", "circular")}


class Padding(NamedTuple):
    before: list[int]
    after: list[int]
    mode: str  # ONNX's
    value: float


def read_pad(r: Reader, node: NodeProto) -> Padding | None:
    """A Pad over the spatial axes alone (None otherwise)."""
    a = attrs(node)
    pads = r.ints(node.input[1]) if len(node.input) > 1 and node.input[1] else a.get("pads")
    if (len(node.input) > 3 and node.input[3]) or not pads or len(pads) % 2:
        return None  # an axes input, or pads computed at run time
    n = len(pads) // 2
    before, after = list(pads[:n]), list(pads[n:])
    if before[:2] != [0, 0] or after[:2] != [0, 0] or min(pads) < 0:
        return None
    value = r.scalar(node.input[2]) if len(node.input) > 2 and node.input[2] else a.get("value", 0.0)
    if value is None:
        return None
    return Padding(before[2:], after[2:], a.get("mode", "constant"), float(value))


def _window_args(a: dict[str, Any], rank: int, k: list[int]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    strides = a.get("strides", [1] * rank)
    if any(s != 1 for s in strides):
        args["stride"] = one(strides)
    return args


def conv(r: Reader, node: NodeProto) -> Match | None:
    """Conv (+ bias), with a Pad before it for a padding mode other than zeros."""
    a = attrs(node)
    x, w = node.input[0], node.input[1]
    ws = None if r.is_weight(w) else _standardised(r, w)
    if ws is not None:
        w = ws.weight
    wshape = r.weight_shape(w)
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or wshape is None or r.is_weight(x):
        return None
    rank = len(wshape) - 2
    pads = a.get("pads", [0] * 2 * rank)
    same_tf = pads[:rank] != pads[rank:]
    if same_tf and pads != _same_tf(r.shape(x), list(wshape[2:]), a, rank):
        return None
    nodes, mode, padding = [node], "zeros", list(pads[:rank])
    made = r.made_by(x, "Pad")
    if made is not None and not any(pads):
        p = read_pad(r, made)
        if p is not None and p.before == p.after and p.mode in PAD_MODES and p.mode != "constant":
            nodes.append(made)
            x, mode, padding = made.input[0], PAD_MODES[p.mode][0], p.before
    k = list(wshape[2:])
    args: dict[str, Any] = {"out": int(wshape[0]), "k": one(k), **_window_args(a, rank, k)}
    if same_tf:
        args["pad"] = "same_tf"
    elif any(padding):
        args["pad"] = one(padding)
    if any(d != 1 for d in a.get("dilations", [1] * rank)):
        args["dilation"] = one(a["dilations"])
    if a.get("group", 1) != 1:
        args["groups"] = int(a["group"])
    has_bias = len(node.input) > 2 and bool(node.input[2])
    if not has_bias:
        args["bias"] = False
    if mode != "zeros":
        args["padding_mode"] = mode
    weights = {"weight": r.tensor(w)} | ({"bias": r.tensor(node.input[2])} if has_bias else {})
    if ws is not None:
        args |= ws.args
        nodes.extend(ws.nodes)
        weights |= {"gain": r.tensor(ws.gain)} if ws.gain else {}
    return Match(args, [x], nodes, weights)


class Standardised(NamedTuple):
    weight: str
    gain: str | None
    args: dict[str, Any]
    nodes: list[NodeProto]


def _standardised(r: Reader, name: str) -> Standardised | None:
    """specdsl's ws conv weight: Reshape(W to rows) standardised per row (ReduceMean/Sub/Mul/
    ReduceMean/Add/Sqrt/Div), times Reshape(gain) · gamma/√fan_in where it has a gain, shaped back."""
    back = r.made_by(name, "Reshape")
    y = r.producer.get(back.input[0]) if back is not None else None
    if back is None or y is None or not r.free(y):
        return None
    nodes, gain = [back], None
    args: dict[str, Any] = {"ws": True}
    if y.op_type == "Mul":
        scaled = next((r.made_by(i, "Mul") for i in y.input if r.made_by(i, "Mul") is not None), None)
        div = next((r.made_by(i, "Div") for i in y.input if r.made_by(i, "Div") is not None), None)
        g = r.made_by(scaled.input[0], "Reshape") if scaled is not None else None
        factor = r.scalar(scaled.input[1]) if scaled is not None else None
        if scaled is None or div is None or g is None or factor is None or not r.is_weight(g.input[0]):
            return None
        nodes += [y, scaled, g]
        gain, y = g.input[0], div
        args["gain"] = True
    if y.op_type != "Div":
        return None
    stats = _normalized(r, y)
    flat = r.made_by(stats[0], "Reshape") if stats is not None else None
    if stats is None or flat is None or not r.is_weight(flat.input[0]):
        return None
    weight, eps = flat.input[0], stats[1]
    shape = r.weight_shape(weight) or (1,)
    if gain is not None:
        gamma = decimal((r.scalar(nodes[2].input[1]) or 0.0) * math.prod(shape[1:]) ** 0.5)
        args |= {"gamma": gamma} if gamma != 1.0 else {}
    if eps != 1e-6:
        args["eps"] = eps
    return Standardised(weight, gain, args, [*nodes, y, *stats[2], flat])


def _same_tf(xs: tuple[int, ...] | None, k: list[int], a: dict[str, Any], rank: int) -> list[int] | None:
    """TensorFlow's SAME pads at this input size (the odd pixel after), as ONNX pads."""
    if xs is None:
        return None
    strides, dilations = a.get("strides", [1] * rank), a.get("dilations", [1] * rank)
    before, after = [], []
    for n, kk, s, d in zip(xs[1:], k, strides, dilations, strict=True):
        total = max((-(-n // s) - 1) * s + (kk - 1) * d + 1 - n, 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return before + after


def deconv(r: Reader, node: NodeProto) -> Match | None:
    a = attrs(node)
    x, w = node.input[0], node.input[1]
    wshape = r.weight_shape(w)
    if a.get("auto_pad", "NOTSET") != "NOTSET" or "output_shape" in a or wshape is None or r.is_weight(x):
        return None
    rank = len(wshape) - 2
    pads = a.get("pads", [0] * 2 * rank)
    if pads[:rank] != pads[rank:]:
        return None
    group = int(a.get("group", 1))
    k = list(wshape[2:])
    args: dict[str, Any] = {"out": int(wshape[1]) * group, "k": one(k), **_window_args(a, rank, k)}
    if any(pads):
        args["pad"] = one(pads[:rank])
    if any(a.get("output_padding", [0])):
        args["output_padding"] = one(a["output_padding"])
    if any(d != 1 for d in a.get("dilations", [1] * rank)):
        args["dilation"] = one(a["dilations"])
    if group != 1:
        args["groups"] = group
    has_bias = len(node.input) > 2 and bool(node.input[2])
    if not has_bias:
        args["bias"] = False
    weights = {"weight": r.tensor(w)} | ({"bias": r.tensor(node.input[2])} if has_bias else {})
    return Match(args, [x], [node], weights)


# ---------------------------------------------------------------------------- linear


def gemm(r: Reader, node: NodeProto) -> Match | None:
    a = attrs(node)
    x, w = node.input[0], node.input[1]
    wshape = r.weight_shape(w)
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or wshape is None \
            or len(wshape) != 2 or r.is_weight(x):
        return None
    trans = bool(a.get("transB", 0))
    out = int(wshape[0] if trans else wshape[1])
    weights = {"weight": r.tensor(w, None if trans else np.transpose)}
    has_bias = len(node.input) > 2 and bool(node.input[2])
    if has_bias:
        if r.weight_shape(node.input[2]) not in ((out,), (1, out)):
            return None
        weights["bias"] = r.tensor(node.input[2], lambda b: b.reshape(-1))
    return Match({"out": out} if has_bias else {"out": out, "bias": False}, [x], [node], weights)


def _matmul(r: Reader, node: NodeProto) -> tuple[str, list[NodeProto], dict[str, Any]] | None:
    """x · W for a weight W [in, out] (torch.onnx's pre-transposed) or Transpose(W [out, in]) (specdsl's)."""
    x, w = node.input
    if r.is_weight(x):
        return None
    t = r.made_by(w, "Transpose")
    if t is not None and r.is_weight(t.input[0]) and attrs(t).get("perm", [1, 0]) == [1, 0]:
        return x, [node, t], {"weight": r.tensor(t.input[0])}
    shape = r.weight_shape(w)
    if shape is None or len(shape) != 2:
        return None
    return x, [node], {"weight": r.tensor(w, lambda m: np.ascontiguousarray(m.T))}


def matmul(r: Reader, node: NodeProto) -> Match | None:
    found = _matmul(r, node)
    if found is None:
        return None
    x, nodes, weights = found
    out = int(_out_features(r, weights["weight"].source, nodes))
    return Match({"out": out, "bias": False}, [x], nodes, weights)


def _out_features(r: Reader, source: str, nodes: list[NodeProto]) -> int:
    shape = r.weight_shape(source) or (0, 0)
    return int(shape[0] if len(nodes) > 1 else shape[1])


def matmul_add(r: Reader, node: NodeProto) -> Match | None:
    for prod, b in (tuple(node.input), tuple(reversed(node.input))):
        mm = r.made_by(prod, "MatMul")
        bias = r.weight_shape(b)
        if mm is None or bias is None:
            continue
        found = _matmul(r, mm)
        if found is None:
            continue
        x, nodes, weights = found
        out = _out_features(r, weights["weight"].source, nodes)
        if bias != (out,):
            continue
        return Match({"out": out}, [x], [node, *nodes], {**weights, "bias": r.tensor(b)})
    return None


# ---------------------------------------------------------------------------- norms


def _plain(r: Reader, name: str, value: float, part: str) -> bool:
    """A constant of ``value`` that no module owns: a norm without affine parameters."""
    array = r.const(name)
    return array is not None and not name.endswith("." + part) and bool(np.all(array == value))


def batchnorm(r: Reader, node: NodeProto) -> Match | None:
    a = attrs(node)
    x, scale, shift, mean, var = node.input[:5]
    if a.get("training_mode", 0) or len([o for o in node.output if o]) > 1 or r.is_weight(x) \
            or not all(r.is_weight(n) for n in (scale, shift, mean, var)):
        return None
    args: dict[str, Any] = {}
    if decimal(a.get("epsilon", 1e-5)) != 1e-5:
        args["eps"] = decimal(a["epsilon"])
    if complement(a.get("momentum", 0.9)) != 0.1:
        args["momentum"] = complement(a["momentum"])
    weights = {"running_mean": r.tensor(mean), "running_var": r.tensor(var)}
    if _plain(r, scale, 1.0, "weight") and _plain(r, shift, 0.0, "bias"):
        args["affine"] = False
    else:
        weights |= {"weight": r.tensor(scale), "bias": r.tensor(shift)}
    return Match(args, [x], [node], weights)


def instancenorm(r: Reader, node: NodeProto) -> Match | None:
    eps = decimal(attrs(node).get("epsilon", 1e-5))
    x, scale, shift = node.input
    if r.is_weight(x) or not (r.is_weight(scale) and r.is_weight(shift)):
        return None
    args: dict[str, Any] = {} if eps == 1e-5 else {"eps": eps}
    if _plain(r, scale, 1.0, "weight") and _plain(r, shift, 0.0, "bias"):
        return Match(args, [x], [node])
    return Match({**args, "affine": True}, [x], [node], {"weight": r.tensor(scale), "bias": r.tensor(shift)})


def layernorm(r: Reader, node: NodeProto) -> Match | None:
    a = attrs(node)
    x, scale = node.input[0], node.input[1]
    xs = r.shape(x)
    if xs is None or r.is_weight(x) or not r.is_weight(scale) or len([o for o in node.output if o]) > 1:
        return None
    axis = a.get("axis", -1)
    k = -axis if axis < 0 else len(xs) + 1 - axis
    if not 1 <= k <= len(xs):
        return None
    shape = list(xs[-k:])
    args: dict[str, Any] = {"shape": shape[0] if k == 1 else shape}
    eps = decimal(a.get("epsilon", 1e-5))
    if eps != 1e-5:
        args["eps"] = eps
    has_bias = len(node.input) > 2 and bool(node.input[2])
    weights = {}
    if _plain(r, scale, 1.0, "weight") and not has_bias:
        args["elementwise_affine"] = False
    else:
        weights["weight"] = r.tensor(scale)
        if has_bias:
            weights["bias"] = r.tensor(node.input[2])
        else:
            args["bias"] = False
    return Match(args, [x], [node], weights)


def lrn(a: dict[str, Any]) -> dict[str, Any] | None:
    args: dict[str, Any] = {"size": int(a["size"])}
    for name, spec, default in (("alpha", "alpha", 1e-4), ("beta", "beta", 0.75), ("bias", "k", 1.0)):
        if decimal(a.get(name, default)) != default:
            args[spec] = decimal(a[name])
    return args


def _per_channel(r: Reader, name: str) -> tuple[str, NodeProto | None] | None:
    """A [C] weight, directly or through the Unsqueeze that shapes it (C, 1, ...)."""
    made = r.made_by(name, "Unsqueeze")
    if made is not None and r.is_weight(made.input[0]):
        return made.input[0], made
    shape = r.weight_shape(name)
    return (name, None) if shape is not None and len(shape) == 1 else None


def channel_norm(r: Reader, node: NodeProto) -> Match | None:
    """specdsl's channel_norm (torchvision's LayerNorm2d): (x − mean_c) / √(var_c + ε) · w + b."""
    found: tuple[NodeProto, tuple[str, NodeProto | None]] | None = None
    for scaled_name, b in (tuple(node.input), tuple(reversed(node.input))):
        scaled, shift = r.made_by(scaled_name, "Mul"), _per_channel(r, b)
        if scaled is not None and shift is not None:
            found = scaled, shift
            break
    if found is None:
        return None
    scaled, (bias, bias_node) = found
    weight, div = None, None
    for y, w in (tuple(scaled.input), tuple(reversed(scaled.input))):
        weight, div = _per_channel(r, w), r.made_by(y, "Div")
        if weight is not None and div is not None:
            break
    if weight is None or div is None:
        return None
    stats = _normalized(r, div)
    if stats is None:
        return None
    x, eps, covered = stats
    extra = [n for n in (bias_node, weight[1]) if n is not None]
    args = {} if eps == 1e-5 else {"eps": eps}
    return Match(args, [x], [node, scaled, div, *covered, *extra],
                 {"weight": r.tensor(weight[0]), "bias": r.tensor(bias)})


def _normalized(r: Reader, div: NodeProto, over: tuple[int, ...] = (1,)) -> tuple[str, float, list[NodeProto]] | None:
    """x and ε of Div(Sub(x, mean(x)), Sqrt(mean((x − mean)²) + ε)) over the axes ``over``."""
    d, std = div.input
    sub, sqrt = r.made_by(d, "Sub"), r.made_by(std, "Sqrt")
    plus = r.made_by(sqrt.input[0], "Add") if sqrt is not None else None
    if sub is None or sqrt is None or plus is None:
        return None
    var_name, eps_name = plus.input if r.scalar(plus.input[1]) is not None else tuple(reversed(plus.input))
    var, mean = r.made_by(var_name, "ReduceMean"), r.made_by(sub.input[1], "ReduceMean")
    sq = r.made_by(var.input[0], "Mul") if var is not None else None
    x = sub.input[0]
    if var is None or mean is None or sq is None or list(sq.input) != [d, d] or mean.input[0] != x:
        return None
    for m in (var, mean):
        axes = r.ints(m.input[1]) if len(m.input) > 1 else attrs(m).get("axes")
        if axes is None or tuple(axes) != over or not attrs(m).get("keepdims", 1):
            return None
    eps = r.scalar(eps_name)
    return None if eps is None else (x, decimal(eps), [sub, sqrt, plus, var, mean, sq])


def channel_norm_permuted(r: Reader, node: NodeProto) -> Match | None:
    """torchvision's LayerNorm2d as torch.onnx writes it: Transpose to channels-last, a
    LayerNormalization over the channels, Transpose back."""
    ln = r.made_by(node.input[0], "LayerNormalization")
    first = r.made_by(ln.input[0], "Transpose") if ln is not None else None
    if ln is None or first is None or attrs(node).get("perm") != [0, 3, 1, 2] \
            or attrs(first).get("perm") != [0, 2, 3, 1] or attrs(ln).get("axis", -1) not in (-1, 3) \
            or len(ln.input) < 3 or not ln.input[2] or len([o for o in ln.output if o]) > 1:
        return None
    eps = decimal(attrs(ln).get("epsilon", 1e-5))
    return Match({} if eps == 1e-5 else {"eps": eps}, [first.input[0]], [node, ln, first],
                 {"weight": r.tensor(ln.input[1]), "bias": r.tensor(ln.input[2])})
