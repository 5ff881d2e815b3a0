"""The alignment pass: W320 where a merge's inputs see shifted windows of the input, and
W321 where a fixed upsample size sets the output's size although the input has another.

Two inputs of an add, mul, concat or join are aligned on an axis when their receptive
fields have the same effective stride and centre; otherwise the merged features
come from windows offset against each other (a padding mistake on one path).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from specdsl.errors import Diagnostic
from specdsl.ir import Graph, Node
from specdsl.ops import OPS
from specdsl.ops.merge import sees_whole
from specdsl.ops.rule import RF, Trait, axis_name, fmt_shape
from specdsl.passes.diagnostics import located
from specdsl.passes.figures import NodeFigures


def misaligned(graph: Graph, figures: Sequence[NodeFigures]) -> dict[int, Diagnostic]:
    """The W320 warning of each merge node whose inputs are not aligned, by node index."""
    found: dict[int, Diagnostic] = {}
    for node in graph.nodes:
        # Only merges combine features position by position; crop and upsample read a second
        # input for its size alone.
        if len(node.inputs) > 1 and figures[node.index].shape is not None and OPS[node.op].has(Trait.MERGE):
            broadcast = getattr(figures[node.index].attrs, "broadcast", ())
            warning = check_node(graph, node, [figures[i].rf for i in node.inputs], broadcast)
            if warning is not None:
                found[node.index] = warning
        elif not node.is_input and OPS[node.op].has(Trait.FIXED_SIZE) and figures[node.index].attrs is not None:
            warning = fixed_size(graph, node, figures)
            if warning is not None:
                found[node.index] = warning
    return found


def fixed_size(graph: Graph, node: Node, figures: Sequence[NodeFigures]) -> Diagnostic | None:
    """W321 where a fixed upsample size gives the model's output its spatial size although the
    model input has another: an FCN / DeepLab head written for one input size (`size=[520, 520]`)
    and checked or run with another (`--input 3,256,256`) resizes to the old size, silently."""
    a = figures[node.index].attrs
    out = figures[graph.output].shape
    n_in = graph.input_shape[1:]
    if a.scale is not None or a.like or out is None or tuple(out[1:]) != tuple(a.size) or tuple(a.size) == n_in:
        return None
    return located(
        node, "W321",
        f"upsample to the fixed size {list(a.size)} sets the output's spatial size {fmt_shape(out)}, but the "
        f"model input is {fmt_shape(graph.input_shape)}: the output does not follow the input",
        "take the size from the input at run time: `[@x, @input] -> upsample(mode=bilinear)` "
        "(YAML: `inputs: [x, input]`)", "size", severity="warning")


def check_node(graph: Graph, node: Node, in_rfs: Sequence[RF],
               broadcast: Sequence[Sequence[bool]] = ()) -> Diagnostic | None:
    """W320 for one merge node given its inputs' receptive fields (the first misaligned pair).

    On each axis, inputs that see the whole input (a gate from a global pool) or that are
    repeated along it (broadcast) have no position to be aligned, and are left out.
    """
    known = [(k, i, r) for k, (i, r) in enumerate(zip(node.inputs, in_rfs)) if r is not None]
    if not known:
        return None
    # A DenseNet concat has hundreds of inputs, each an input of many concats: the centres
    # (Fraction arithmetic) come from a cache so the whole pass stays linear in the edges.
    for axis in range(len(known[0][2])):
        placed = [(i, r[axis]) for k, i, r in known
                  if not sees_whole(r[axis]) and not (broadcast and broadcast[k][1 + axis])]
        for (i, x), (k, y) in itertools.pairwise(placed):
            if x is y:
                continue
            if x.stride != y.stride or _centre(x.size, x.pad) != _centre(y.size, y.pad):
                na, nb = graph.nodes[i].label, graph.nodes[k].label
                return located(
                    node, "W320",
                    f"inputs of {node.op} are not aligned along {axis_name(len(known[0][2]), axis)}: "
                    f"'{na}' has stride {_num(x.stride)}, centre {_num(x.centre)}; "
                    f"'{nb}' has stride {_num(y.stride)}, centre {_num(y.centre)}",
                    "the merged features come from shifted input windows; check padding on both paths",
                    None, severity="warning")
    return None


@functools.lru_cache(maxsize=4096)
def _centre(size: Any, pad: Any) -> Any:
    """AxisRF.centre, memoised on (size, pad)."""
    return Fraction(size - 1, 2) - pad


def _num(x: object) -> str:
    """Fractions from the receptive-field algebra, written as decimals."""
    if isinstance(x, Fraction) and x.denominator != 1:
        return f"{float(x):g}"
    return str(int(x)) if isinstance(x, Fraction) else str(x)
