"""Import patterns of the pools, resampling, reshapes and layout ops (see imports_table.py).

Each function takes the :class:`Reader` and the ONNX node a pattern ends with and returns a
:class:`Match` (the spec op's arguments as a spec writes them, defaults left out) or None where
the node is outside what the op means in PyTorch: such a node is reported unmapped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import NodeProto

from specdsl.backends.onnx.imports_layers import PAD_MODES, read_pad
from specdsl.backends.onnx.imports_reader import Match, MatchFn, Reader, attrs, decimal, one

# ---------------------------------------------------------------------------- pools


def pool(kind: str, divided: bool = False) -> MatchFn:
    """MaxPool / AveragePool; end padding beyond the start's is ceil_mode's last window. ``divided``:
    an AveragePool counting that padding, times the correction to PyTorch's clipped windows."""
    def match(r: Reader, node: NodeProto) -> Match | None:
        a = attrs(node)
        x = node.input[0]
        if a.get("auto_pad", "NOTSET") != "NOTSET" or r.is_weight(x) or len([o for o in node.output if o]) > 1:
            return None
        k = list(a["kernel_shape"])
        rank = len(k)
        pads = a.get("pads", [0] * 2 * rank)
        before, after = list(pads[:rank]), list(pads[rank:])
        ceil = bool(a.get("ceil_mode", 0))
        if before != after:
            if ceil or any(q < p for p, q in zip(before, after, strict=True)):
                return None
            ceil = True  # the shape check after lifting confirms the windows
        include = kind == "max" or bool(a.get("count_include_pad", 0))
        if kind == "avg" and before != after and include and not divided:
            return None  # ONNX would count the extra end padding; PyTorch clips its windows
        strides = a.get("strides", [1] * rank)
        args: dict[str, Any] = {"k": one(k)}
        if list(strides) != k:
            args["stride"] = one(strides)
        if any(before):
            args["pad"] = one(before)
        if kind == "max" and any(d != 1 for d in a.get("dilations", [1] * rank)):
            args["dilation"] = one(a["dilations"])
        if ceil:
            args["ceil_mode"] = True
        if kind == "avg" and not include:
            args["count_include_pad"] = False
        return Match(args, [x], [node])
    return match


def avgpool_divided(r: Reader, node: NodeProto) -> Match | None:
    """specdsl's ceil_mode average pool counting the padding: AveragePool times, per output
    position, kernel size / PyTorch's window (clipped to the padded input)."""
    from specdsl.backends.onnx.layers import _avg_divisor as divisor

    pool_name, factor_name = (node.input if r.const(node.input[1]) is not None else tuple(reversed(node.input)))
    avg, factor = r.made_by(pool_name, "AveragePool"), r.const(factor_name)
    found = pool("avg", divided=True)(r, avg) if avg is not None else None
    xs, ys = r.shape(pool_name), r.shape(node.output[0])
    if found is None or factor is None or avg is None or xs is None or ys is None:
        return None
    a = attrs(avg)
    k, strides, pads = a["kernel_shape"], a.get("strides", [1] * len(xs[1:])), a.get("pads", [0] * 2 * len(xs[1:]))
    inputs = r.shape(avg.input[0]) or ()
    want = np.ones((1,) * len(k))
    for i, (n, kk, st, p, o) in enumerate(zip(inputs[1:], k, strides, pads[:len(k)], ys[1:], strict=True)):
        shape = [1] * len(k)
        shape[i] = o
        want = want * (kk / divisor(n, kk, st, p, o)).reshape(shape)
    if not np.allclose(factor.reshape(want.shape) if factor.size == want.size else factor, want, rtol=1e-6):
        return None
    return Match(found.args, found.inputs, [node, avg])


def reduce_spatial(r: Reader, node: NodeProto) -> Match | None:
    """ReduceMean / ReduceMax over every spatial axis: global pooling."""
    a = attrs(node)
    x = node.input[0]
    axes = r.ints(node.input[1]) if len(node.input) > 1 and node.input[1] else a.get("axes")
    full = r.full(x)
    if axes is None or full is None or r.is_weight(x) or len(full) < 3:
        return None
    rank = len(full)
    if sorted(ax % rank for ax in axes) != list(range(2, rank)):
        return None
    return Match({"keepdims": True} if a.get("keepdims", 1) else {}, [x], [node])


def global_pool(r: Reader, node: NodeProto) -> Match | None:
    return Match({"out": 1}, [node.input[0]], [node]) if not r.is_weight(node.input[0]) else None


def global_pool_strided(r: Reader, node: NodeProto) -> Match | None:
    """torch.onnx's dynamo export of adaptive_avg_pool(1) on a small map (convnext's head at 64 px):
    ReduceMean over the spatial axes, keepdims, then its as_strided as Reshape(-1) -> Gather of every
    index in order (the same tensor)."""
    flat = r.inner(node.input[0], "Reshape")
    index = r.const(node.input[1])
    mean = r.inner(flat.input[0], "ReduceMean") if flat is not None else None
    if mean is None or flat is None or index is None or attrs(node).get("axis", 0) != 0 \
            or r.ints(flat.input[1]) != [-1] or not attrs(mean).get("keepdims", 1):
        return None
    pooled = reduce_spatial(r, mean)
    full = r.full(mean.output[0])
    if pooled is None or full is None or tuple(index.shape) != tuple(full) \
            or not np.array_equal(index.reshape(-1), np.arange(index.size)):
        return None
    return Match({"out": 1}, pooled.inputs, [node, flat, mean])


# ---------------------------------------------------------------------------- resampling and layout


RESIZE_MODES = {("nearest", "asymmetric", "floor"): "nearest",
                ("nearest", "half_pixel", "round_prefer_ceil"): "nearest-exact"}
LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


def resize(r: Reader, node: NodeProto) -> Match | None:
    a = attrs(node)
    x = node.input[0]
    xs, ys = r.shape(x), r.shape(node.output[0])
    if xs is None or ys is None or r.is_weight(x) or xs[0] != ys[0]:
        return None
    rank = len(xs) - 1
    mode, coords = a.get("mode", "nearest"), a.get("coordinate_transformation_mode", "half_pixel")
    args: dict[str, Any] = {}
    if mode == "nearest":
        name = RESIZE_MODES.get((mode, coords, a.get("nearest_mode", "round_prefer_floor")))
        if name is None:
            return None
        if name != "nearest":
            args["mode"] = name
    elif coords not in ("half_pixel", "pytorch_half_pixel", "align_corners") or a.get("exclude_outside", 0):
        return None
    elif mode == "linear":
        args["mode"] = LINEAR[rank]
    elif mode == "cubic" and rank == 2 and math.isclose(a.get("cubic_coeff_a", -0.75), -0.75):
        args["mode"] = "bicubic"
    else:
        return None
    if mode != "nearest":
        args["align_corners"] = coords == "align_corners"
    scales = r.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if scales is not None and scales.size == rank + 2:
        args["scale"] = _one_float([float(s) for s in scales[2:]])
    else:
        args["size"] = one(ys[1:])
    return Match(args, [x], [node])


def _one_float(values: list[float]) -> float | list[float]:
    values = [decimal(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


def nearest_gather(r: Reader, node: NodeProto) -> Match | None:
    """specdsl's nearest upsampling at fixed sizes: a Gather per spatial axis of PyTorch's indices."""
    from specdsl.backends.numpy.interpolate import _nearest_index as nearest_index

    chain, cur = [], node
    while True:
        index = r.ints(cur.input[1])
        if index is None or r.const(cur.input[1]) is None or r.const(cur.input[1]).ndim != 1:  # type: ignore[union-attr]
            return None
        chain.append((int(attrs(cur).get("axis", 0)), index, cur))
        before = r.made_by(cur.input[0], "Gather")
        seen = {axis for axis, _, _ in chain}
        if before is None or r.const(before.input[1]) is None or attrs(before).get("axis", 0) in seen:
            break  # (a Gather on an axis this upsampling has done is the previous layer's)
        cur = before
    x = cur.input[0]
    xs, ys = r.shape(x), r.shape(node.output[0])
    if xs is None or ys is None or r.is_weight(x) or any(ax < 2 for ax, _, _ in chain):
        return None
    for exact in (False, True):
        for by_scale in (True, False):
            got = _nearest_args(xs, ys, chain, exact, by_scale, nearest_index)
            if got is not None:
                return Match(got, [x], [c[2] for c in chain])
    return None


def _nearest_args(xs: tuple[int, ...], ys: tuple[int, ...], chain: list[Any], exact: bool, by_scale: bool,
                  nearest_index: Any) -> dict[str, Any] | None:
    sizes = list(ys[1:])
    scales = [o / n for n, o in zip(xs[1:], sizes, strict=True)]
    if by_scale and not all(s == int(s) for s in scales):
        return None
    for axis, index, _ in chain:
        n, o = xs[axis - 1], ys[axis - 1]
        want = nearest_index(n, o, scales[axis - 2] if by_scale else None, exact, np.float32)
        if list(want) != index:
            return None
    args: dict[str, Any] = {"scale": _one_float(scales)} if by_scale else {"size": one(sizes)}
    return {**args, "mode": "nearest-exact"} if exact else args


def flatten(r: Reader, node: NodeProto) -> Match | None:
    return Match({}, [node.input[0]], [node]) if attrs(node).get("axis", 1) == 1 and not r.is_weight(node.input[0]) \
        else None


def reshape_flatten(r: Reader, node: NodeProto) -> Match | None:
    """A Reshape that keeps the batch and folds a run of axes into one: flatten(start_dim, end_dim)."""
    x = node.input[0]
    xf, yf = r.full(x), r.full(node.output[0])
    xs, ys = r.shape(x), r.shape(node.output[0])
    if xf is None or yf is None or xs is None or ys is None or xf[0] != yf[0] or r.is_weight(x) or len(ys) >= len(xs):
        return None
    p = 0
    while p < len(ys) - 1 and xs[p] == ys[p]:
        p += 1
    q = len(ys) - p - 1
    if math.prod(xs[p:len(xs) - q]) != ys[p] or list(xs[len(xs) - q:]) != list(ys[p + 1:]):
        return None
    args: dict[str, Any] = {}
    if p != 0:
        args["start_dim"] = p + 1
    if q != 0:
        args["end_dim"] = len(xs) - q
    return Match(args, [x], [node])


def pad(r: Reader, node: NodeProto) -> Match | None:
    p = read_pad(r, node)
    if p is None or p.mode not in PAD_MODES or r.is_weight(node.input[0]):
        return None
    widths = [w for b, e in zip(reversed(p.before), reversed(p.after), strict=True) for w in (b, e)]
    args: dict[str, Any] = {"pad": widths[0] if len(set(widths)) == 1 else widths}
    if p.mode != "constant":
        args["mode"] = PAD_MODES[p.mode][1]
    elif p.value != 0:
        args["value"] = decimal(p.value)
    return Match(args, [node.input[0]], [node])


def permute(a: dict[str, Any]) -> dict[str, Any] | None:
    perm = a.get("perm")
    return None if not perm or perm[0] != 0 else {"dims": list(perm)}


def pixel_shuffle(a: dict[str, Any]) -> dict[str, Any] | None:
    return {"factor": int(a["blocksize"])} if a.get("mode", "DCR") == "CRD" else None


def _reshape_transpose_reshape(r: Reader, node: NodeProto
                               ) -> tuple[str, tuple[int, ...], list[int], list[NodeProto]] | None:
    """x, the middle view's shape (no batch) and the perm of Reshape(Transpose(Reshape(x)))."""
    t = r.made_by(node.input[0], "Transpose")
    first = r.made_by(t.input[0], "Reshape") if t is not None else None
    if t is None or first is None:
        return None
    x, view = first.input[0], r.shape(first.output[0])
    xf, yf, vf = r.full(x), r.full(node.output[0]), r.full(first.output[0])
    if view is None or xf is None or yf is None or vf is None or not (xf[0] == yf[0] == vf[0]) or r.is_weight(x):
        return None
    return x, view, list(attrs(t).get("perm", [])), [node, t, first]


def channel_shuffle(r: Reader, node: NodeProto) -> Match | None:
    found = _reshape_transpose_reshape(r, node)
    if found is None:
        return None
    x, view, perm, nodes = found
    if r.shape(x) != r.shape(node.output[0]) or len(view) < 2 or perm[:3] != [0, 2, 1] \
            or perm[3:] != list(range(3, len(perm))) or r.shape(x) is None or view[0] * view[1] != r.shape(x)[0]:  # type: ignore[index]
        return None
    return Match({"groups": int(view[0])}, [x], nodes)


def pixel_unshuffle(r: Reader, node: NodeProto) -> Match | None:
    found = _reshape_transpose_reshape(r, node)
    if found is None:
        return None
    x, view, perm, nodes = found
    xs = r.shape(x)
    if xs is None or len(xs) != 3 or len(view) != 5 or perm != [0, 1, 3, 5, 2, 4] or view[2] != view[4] \
            or view[1] * view[2] != xs[1]:
        return None
    return Match({"factor": int(view[2])}, [x], nodes)


def reshape(r: Reader, node: NodeProto) -> Match | None:
    """Any other Reshape that keeps the batch first: reshape to its inferred shape."""
    x = node.input[0]
    xf, yf, ys = r.full(x), r.full(node.output[0]), r.shape(node.output[0])
    if xf is None or yf is None or ys is None or xf[0] != yf[0] or r.is_weight(x) or not ys:
        return None
    return Match({"shape": list(ys)}, [x], [node])


def axis_op(r: Reader, node: NodeProto) -> Match | None:
    """Unsqueeze / Squeeze of one non-batch axis."""
    x = node.input[0]
    axes = r.ints(node.input[1]) if len(node.input) > 1 and node.input[1] else attrs(node).get("axes")
    rank = len(r.full(node.output[0] if node.op_type == "Unsqueeze" else x) or ())
    if not axes or len(axes) != 1 or not rank or r.is_weight(x) or axes[0] % rank == 0:
        return None
    return Match({"dim": int(axes[0] % rank)}, [x], [node])


def blurpool(r: Reader, node: NodeProto) -> Match | None:
    """Pad -> depthwise Conv with the binomial filter as a constant (timm's BlurPool2d)."""
    from specdsl.ops.fixed import binomial_row

    a = attrs(node)
    filt = r.const(node.input[1])
    made = r.made_by(node.input[0], "Pad")
    p = read_pad(r, made) if made is not None else None
    if filt is None or p is None or made is None or len(node.input) > 2 or filt.ndim != 4 or filt.shape[1] != 1 \
            or a.get("group", 1) != filt.shape[0] or any(a.get("pads", [0])) or p.before != p.after:
        return None
    n, stride = filt.shape[-1], a.get("strides", [1, 1])
    row = np.array(binomial_row(n), dtype=np.float64) / 2 ** (n - 1)
    if filt.shape[2] != n or not np.allclose(filt, np.outer(row, row), rtol=1e-6) or p.mode not in PAD_MODES \
            or len(set(stride)) != 1 or p.before != [(stride[0] - 1 + n - 1) // 2] * 2 or p.value != 0:
        return None
    args: dict[str, Any] = {}
    if n != 3:
        args["filt"] = int(n)
    if a.get("strides", [1])[0] != 2:
        args["stride"] = int(a.get("strides", [1])[0])
    if PAD_MODES[p.mode][1] != "reflect":
        args["pad_mode"] = PAD_MODES[p.mode][1]
    return Match(args, [made.input[0]], [node, made])


def _bins(n: int, o: int) -> np.ndarray:
    """PyTorch's adaptive average bins as an (n, o) averaging matrix (specdsl's export writes it)."""
    idx = np.arange(o)
    start, end = (idx * n) // o, -((-(idx + 1) * n) // o)
    m = ((np.arange(n) >= start[:, None]) & (np.arange(n) < end[:, None])) / (end - start)[:, None]
    return np.asarray(m.T)


def adaptive_bins(r: Reader, node: NodeProto) -> Match | None:
    """adaptive_avgpool whose bins do not divide: per axis a MatMul by the bins matrix, the axis
    moved last by a Transpose and back where it is not the last."""
    nodes: list[NodeProto] = []
    cur, y = node, node.output[0]
    while True:
        last = cur.op_type == "MatMul"
        mm = cur if last else r.made_by(cur.input[0], "MatMul")
        if mm is None or mm.op_type != "MatMul":
            break
        inner = None if last else r.made_by(mm.input[0], "Transpose")
        matrix = r.const(mm.input[1])
        if matrix is None or matrix.ndim != 2 or (not last and inner is None):
            break
        n, o = matrix.shape
        if not np.allclose(matrix, _bins(int(n), int(o)), rtol=1e-6):
            break
        step = [cur] if last else [cur, mm, inner]
        nodes.extend(n_ for n_ in step if n_ is not None)
        y = mm.input[0] if last else inner.input[0]  # type: ignore[union-attr]
        before = r.producer.get(y)
        if before is None or before.op_type not in ("MatMul", "Transpose") or not r.free(before):
            break
        cur = before
    xs, ys = r.shape(y), r.shape(node.output[0])
    if not nodes or xs is None or ys is None or r.is_weight(y) or xs[0] != ys[0]:
        return None
    return Match({"out": one(ys[1:])}, [y], nodes)


def adaptive_window(r: Reader, node: NodeProto) -> Match | None:
    """A pool whose kernel is its stride, unpadded: adaptive pooling whose bins divide the input."""
    a = attrs(node)
    k, ys = list(a.get("kernel_shape", [])), r.shape(node.output[0])
    if not k or list(a.get("strides", [])) != k or any(a.get("pads", [0])) or a.get("ceil_mode", 0) \
            or any(d != 1 for d in a.get("dilations", [1])) or ys is None or r.is_weight(node.input[0]) \
            or len([o for o in node.output if o]) > 1:
        return None
    return Match({"out": one(ys[1:])}, [node.input[0]], [node])
