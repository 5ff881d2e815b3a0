"""Import patterns of the activations, merges, splits and per-channel scales (see imports_table.py).

Each function takes the :class:`Reader` and the ONNX node a pattern ends with and returns a
:class:`Match` or None. Decompositions (silu as x·sigmoid(x), gelu through Erf) are matched
from their last node back; the lifter checks that no covered node's output leaks out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import NodeProto

from specdsl.backends.onnx.imports_reader import Match, MatchFn, Reader, attrs, decimal

SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)


def _data(r: Reader, name: str) -> bool:
    return bool(name) and not r.is_weight(name)


def unary(args: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None) -> MatchFn:
    """One ONNX op of one data input; ``args`` turns its attributes into the spec's (None: refuse)."""
    def match(r: Reader, node: NodeProto) -> Match | None:
        if not _data(r, node.input[0]) or len(node.output) != 1:
            return None
        made = {} if args is None else args(attrs(node))
        return None if made is None else Match(made, [node.input[0]], [node])
    return match


def _clip_bounds(r: Reader, node: NodeProto) -> tuple[float | None, float | None] | None:
    a = attrs(node)
    if "min" in a or "max" in a:  # opset < 11
        return a.get("min"), a.get("max")
    lo = r.scalar(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    hi = r.scalar(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if (len(node.input) > 1 and node.input[1] and lo is None) or (len(node.input) > 2 and node.input[2] and hi is None):
        return None  # a bound computed at run time
    return lo, hi


def relu6(r: Reader, node: NodeProto) -> Match | None:
    bounds = _clip_bounds(r, node)
    if bounds != (0.0, 6.0) or not _data(r, node.input[0]):
        return None
    return Match({}, [node.input[0]], [node])


def hardtanh(r: Reader, node: NodeProto) -> Match | None:
    bounds = _clip_bounds(r, node)
    if bounds is None or None in bounds or not _data(r, node.input[0]):
        return None
    lo, hi = bounds
    assert lo is not None and hi is not None
    args = {k: decimal(v) for k, v, d in (("min_val", lo, -1.0), ("max_val", hi, 1.0)) if decimal(v) != d}
    return Match(args, [node.input[0]], [node])


def selu(a: dict[str, Any]) -> dict[str, Any] | None:
    ok = math.isclose(a.get("alpha", SELU[0]), SELU[0], rel_tol=1e-6) and math.isclose(
        a.get("gamma", SELU[1]), SELU[1], rel_tol=1e-6)
    return {} if ok else None


def hardsigmoid(a: dict[str, Any]) -> dict[str, Any] | None:
    # PyTorch's hardsigmoid is relu6(x + 3) / 6; ONNX's defaults (0.2, 0.5) are another function.
    ok = math.isclose(a.get("alpha", 0.2), 1 / 6, rel_tol=1e-6) and math.isclose(a.get("beta", 0.5), 0.5)
    return {} if ok else None


def prelu(r: Reader, node: NodeProto) -> Match | None:
    x, slope = node.input[0], node.input[1]
    nodes = [node]
    made = r.made_by(slope, "Unsqueeze")  # specdsl writes a [C] slope as (C, 1, 1)
    if made is not None and r.is_weight(made.input[0]):
        nodes.append(made)
        slope = made.input[0]
    shape = r.weight_shape(slope)
    if not _data(r, x) or shape is None:
        return None
    n = math.prod(shape)
    args = {} if n == 1 else {"num_parameters": n}
    return Match(args, [x], nodes, {"weight": r.tensor(slope, lambda a: a.reshape(-1))})


def _mul_of(r: Reader, node: NodeProto, x: str) -> str | None:
    """The other input of the Mul ``node`` when one input is ``x``."""
    if node.op_type != "Mul":
        return None
    a, b = node.input
    return b if a == x else a if b == x else None


def silu(r: Reader, node: NodeProto) -> Match | None:
    for x, other in (tuple(node.input), tuple(reversed(node.input))):
        sig = r.made_by(other, "Sigmoid")
        if sig is not None and sig.input[0] == x and _data(r, x):
            return Match({}, [x], [node, sig])
    return None


def mish(r: Reader, node: NodeProto) -> Match | None:
    for x, other in (tuple(node.input), tuple(reversed(node.input))):
        tanh = r.made_by(other, "Tanh")
        soft = r.made_by(tanh.input[0], "Softplus") if tanh is not None else None
        if soft is not None and tanh is not None and soft.input[0] == x and _data(r, x):
            return Match({}, [x], [node, tanh, soft])
    return None


def _scalar_operand(r: Reader, node: NodeProto | None, op: str) -> tuple[str, float] | None:
    """(the data input, the constant) of a binary ``op`` node with one scalar constant."""
    if node is None or node.op_type != op:
        return None
    a, b = node.input
    if r.scalar(b) is not None and _data(r, a):
        return a, float(r.scalar(b) or 0.0)
    if r.scalar(a) is not None and _data(r, b) and op in ("Mul", "Add"):
        return b, float(r.scalar(a) or 0.0)
    return None


def gelu_op(a: dict[str, Any]) -> dict[str, Any]:
    return {"approximate": "tanh"} if a.get("approximate", "none") == "tanh" else {}


def gelu_erf(r: Reader, node: NodeProto) -> Match | None:
    """½x(1 + erf(x/√2)) in the orders specdsl and torch.onnx write it: Mul(Mul(x, ½), 1 + erf)
    or Mul(Mul(x, 1 + erf), ½), the argument x·(1/√2) or x / √2."""
    found = _half_times(r, node)
    if found is None:
        return None
    x, one_plus, covered = found
    plus = r.producer.get(one_plus)
    step = _scalar_operand(r, plus, "Add")
    erf = r.made_by(step[0], "Erf") if step and math.isclose(step[1], 1.0) else None
    if erf is None or plus is None:
        return None
    scaled = r.producer.get(erf.input[0])
    inner = _scalar_operand(r, scaled, "Mul") or _scalar_operand(r, scaled, "Div")
    if inner is None or inner[0] != x or scaled is None:
        return None
    factor = inner[1] if scaled.op_type == "Mul" else 1 / inner[1]
    if not math.isclose(factor, math.sqrt(0.5), rel_tol=1e-5):
        return None
    return Match({}, [x], [*covered, plus, erf, scaled])


def _half_times(r: Reader, node: NodeProto) -> tuple[str, str, list[NodeProto]] | None:
    """x and the other factor of ½·x·other written as Mul(Mul(x, ½), other) or Mul(Mul(x, other), ½)."""
    if node.op_type != "Mul":
        return None
    outer = _scalar_operand(r, node, "Mul")
    if outer is not None and math.isclose(outer[1], 0.5):  # Mul(Mul(x, other), ½)
        prod = r.producer.get(outer[0])
        if prod is not None and prod.op_type == "Mul" and r.free(prod):
            for x, other in (tuple(prod.input), tuple(reversed(prod.input))):
                if _data(r, x) and r.producer.get(other) is not None and r.producer[other].op_type == "Add":
                    return x, other, [node, prod]
        return None
    for half_name, other in (tuple(node.input), tuple(reversed(node.input))):
        half = _scalar_operand(r, r.producer.get(half_name), "Mul")
        if half is not None and math.isclose(half[1], 0.5):
            return half[0], other, [node, r.producer[half_name]]
    return None


def gelu_tanh(r: Reader, node: NodeProto) -> Match | None:
    """specdsl's ½x(1 + tanh(√(2/π)(x + 0.044715x³)))."""
    found = _half_times(r, node)
    if found is None:
        return None
    x, one_plus, covered = found
    plus = r.producer.get(one_plus)
    step = _scalar_operand(r, plus, "Add")
    tanh = r.made_by(step[0], "Tanh") if step and math.isclose(step[1], 1.0) else None
    scaled = r.producer.get(tanh.input[0]) if tanh is not None else None
    outer = _scalar_operand(r, scaled, "Mul")
    if outer is None or plus is None or tanh is None or scaled is None:
        return None
    inner = r.producer.get(outer[0])
    if inner is None or inner.op_type != "Add" or x not in inner.input:
        return None
    cubic_name = inner.input[1] if inner.input[0] == x else inner.input[0]
    cubic = r.producer.get(cubic_name)
    c = _scalar_operand(r, cubic, "Mul")
    x3 = r.producer.get(c[0]) if c else None
    x2 = r.producer.get(x3.input[0]) if x3 is not None and x3.op_type == "Mul" else None
    if cubic is None or x3 is None or x2 is None or x2.op_type != "Mul" or set(x2.input) != {x}:
        return None
    return Match({"approximate": "tanh"}, [x], [*covered, plus, tanh, scaled, inner, cubic, x3, x2])


def softplus_where(r: Reader, node: NodeProto) -> Match | None:
    """specdsl's Where(βx > threshold, x, softplus(βx)/β)."""
    cond, x, soft = node.input
    greater = r.made_by(cond, "Greater")
    gt = _scalar_operand(r, greater, "Greater")
    if gt is None or greater is None or not _data(r, x):
        return None
    z, threshold = gt
    covered = [node, greater]
    beta = 1.0
    if z != x:
        scaled = _scalar_operand(r, r.producer.get(z), "Mul")
        if scaled is None or scaled[0] != x:
            return None
        beta = scaled[1]
        covered.append(r.producer[z])
        over = _scalar_operand(r, r.producer.get(soft), "Div")
        if over is None or not math.isclose(over[1], beta):
            return None
        covered.append(r.producer[soft])
        soft = over[0]
    sp = r.made_by(soft, "Softplus")
    if sp is None or sp.input[0] != z:
        return None
    args = {k: decimal(v) for k, v, d in (("beta", beta, 1.0), ("threshold", threshold, 20.0)) if decimal(v) != d}
    return Match(args, [x], [*covered, sp])


def softmax(a: dict[str, Any]) -> dict[str, Any] | None:
    axis = a.get("axis", -1)
    return None if axis < 0 else {"dim": axis} if axis != 1 else {}


def dropout(r: Reader, node: NodeProto) -> Match | None:
    ratio = r.scalar(node.input[1]) if len(node.input) > 1 and node.input[1] else attrs(node).get("ratio", 0.5)
    if ratio is None or not _data(r, node.input[0]) or (len(node.output) > 1 and node.output[1]):
        return None
    return Match({} if math.isclose(ratio, 0.5) else {"p": decimal(ratio)}, [node.input[0]], [node])


# ---------------------------------------------------------------------------- merges


def merge(min_inputs: int = 2, max_inputs: int | None = None) -> MatchFn:
    """A merge of data tensors (no constant operand: that is a scale, a bias or an activation)."""
    def match(r: Reader, node: NodeProto) -> Match | None:
        ins = list(node.input)
        if len(ins) < min_inputs or (max_inputs and len(ins) > max_inputs) or not all(_data(r, i) for i in ins):
            return None
        return Match({}, ins, [node])
    return match


def concat(r: Reader, node: NodeProto) -> Match | None:
    axis = attrs(node).get("axis", 1)
    if axis <= 0 or not all(_data(r, i) for i in node.input):
        return None
    return Match({} if axis == 1 else {"dim": axis}, list(node.input), [node])


def layer_scale(r: Reader, node: NodeProto) -> Match | None:
    """x · γ with γ a parameter shaped (C, 1, ...) (torchvision's CNBlock.layer_scale), or timm's flat
    γ [C] applied as (1, C, 1, ...): a Reshape of the [C] parameter (specdsl's export, dynamo's), or
    the reshape folded into a (1, C, 1, ...) constant (TorchScript's constant folding)."""
    for x, g in (tuple(node.input), tuple(reversed(node.input))):
        xs = r.shape(x)
        if not _data(r, x) or xs is None or r.is_weight(x) or xs[0] <= 1:
            continue
        flat = _flat_gamma(r, g, node, xs)
        if flat is not None:
            gamma, nodes, convert = flat
        elif (shape := r.weight_shape(g)) is not None and len(shape) == len(xs) and shape[0] == xs[0] \
                and all(d == 1 for d in shape[1:]):
            gamma, nodes, convert = g, [node], None
        else:
            continue
        values = r.const(gamma)
        args: dict[str, object] = {"flat": True} if flat is not None else {}
        if values is not None and values.size and np.all(values == values.reshape(-1)[0]):
            args["init"] = decimal(float(values.reshape(-1)[0]))
        return Match(args, [x], nodes, {"": r.tensor(gamma, convert)})
    return None


def _flat_gamma(r: Reader, g: str, node: NodeProto, xs: tuple[int, ...]
                ) -> tuple[str, list[NodeProto], Callable[[np.ndarray], np.ndarray] | None] | None:
    """Where ``g`` is a [C] parameter viewed (1, C, 1, ...) against x (sample shape ``xs``): the
    parameter, the nodes the match takes, and how its value becomes [C]."""
    view = [1, xs[0], *([1] * (len(xs) - 1))]
    shape = r.weight_shape(g)
    if shape is not None:
        return (g, [node], lambda a: a.reshape(-1)) if list(shape) == view else None
    reshape = r.made_by(g, "Reshape", node)
    if reshape is None or r.weight_shape(reshape.input[0]) != (xs[0],):
        return None
    target = r.ints(reshape.input[1])
    if target is None or len(target) != len(view) or \
            any(t != v and not (i == 1 and t == -1) for i, (t, v) in enumerate(zip(target, view))):
        return None
    return reshape.input[0], [node, reshape], None


_WRITTEN_OP = re.compile(r"\((\w+)\)$")


def written_as(op: str, inner: MatchFn) -> MatchFn:
    """``inner``'s match where the node's doc string (specdsl's export: ``file:line: path (op)``)
    names ``op``: an op ONNX cannot tell from another at inference (join from mean, dropout from
    identity) keeps its name. Arguments that act only in training (p) are not in the file."""
    def match(r: Reader, node: NodeProto) -> Match | None:
        found = _WRITTEN_OP.search(node.doc_string)
        if found is None or found.group(1) != op:
            return None
        m = inner(r, node)
        if m is not None:
            m.args = {}
        return m
    return match


def identity(r: Reader, node: NodeProto) -> Match | None:
    """An Identity inside the graph (a dropout's, an nn.Identity's); one that only renames a
    tensor as a graph output is no layer."""
    if not _data(r, node.input[0]) or node.output[0] in r.graph_outputs:
        return None
    return Match({}, [node.input[0]], [node])


def scale(r: Reader, node: NodeProto) -> Match | None:
    """x times (or divided by) a one-value constant."""
    found = _scalar_operand(r, node, node.op_type)
    if found is None:
        return None
    value = found[1] if node.op_type == "Mul" else 1 / found[1] if found[1] else None
    return None if value is None else Match({"value": decimal(value)}, [found[0]], [node])
