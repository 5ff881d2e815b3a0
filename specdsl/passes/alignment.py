"""The alignment pass: W320 where a merge's inputs see shifted windows of the input.

Two inputs of an add, concat or join are aligned on an axis when their receptive
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
from specdsl.ops.rule import RF, axis_name
from specdsl.passes.diagnostics import located
from specdsl.passes.figures import NodeFigures


def misaligned(graph: Graph, figures: Sequence[NodeFigures]) -> dict[int, Diagnostic]:
    """The W320 warning of each merge node whose inputs are not aligned, by node index."""
    found: dict[int, Diagnostic] = {}
    for node in graph.nodes:
        if len(node.inputs) > 1 and figures[node.index].shape is not None:
            warning = check_node(graph, node, [figures[i].rf for i in node.inputs])
            if warning is not None:
                found[node.index] = warning
    return found


def check_node(graph: Graph, node: Node, in_rfs: Sequence[RF]) -> Diagnostic | None:
    """W320 for one merge node given its inputs' receptive fields (the first misaligned pair)."""
    known = [(i, r) for i, r in zip(node.inputs, in_rfs) if r is not None]
    # A DenseNet concat has hundreds of inputs, each an input of many concats: the centres
    # (Fraction arithmetic) come from a cache so the whole pass stays linear in the edges.
    for (i, a), (k, b) in itertools.pairwise(known):
        if a is b:
            continue
        for axis, (x, y) in enumerate(zip(a, b)):
            if x.stride != y.stride or _centre(x.size, x.pad) != _centre(y.size, y.pad):
                na, nb = graph.nodes[i].label, graph.nodes[k].label
                return located(
                    node, "W320",
                    f"inputs of {node.op} are not aligned along {axis_name(len(a), axis)}: "
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
