"""What the renderers share: the model they read, and how its figures read as text.

The table, the JSON and the diagram take any :class:`Checked` object (``specdsl.api.Model`` is
one): the graph and its analysis, nothing else. They never import ``specdsl.api``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from specdsl.ops import OPS
from specdsl.ops.rule import RF
from specdsl.passes.receptive import global_suffix

if TYPE_CHECKING:
    from specdsl.ir import Graph, Node
    from specdsl.passes.analysis import Analysis, NodeFigures

MACS_CONVENTION = "multiply-accumulates of conv, transposed conv and linear layers, bias excluded (torchvision)"
FULL_CONVENTION = ("MACs plus one op per bias add, norm, activation and merged element, "
                   "and per pooled window element (torchinfo-like)")


class Checked(Protocol):
    """A checked model as the renderers see it: its graph and the analysis of that graph."""

    @property
    def graph(self) -> Graph: ...

    @property
    def analysis(self) -> Analysis: ...


def node_figures(model: Checked) -> Iterator[tuple[Node, NodeFigures]]:
    """Every node with its figures, in graph order."""
    return zip(model.graph.nodes, model.analysis.figures, strict=True)


def human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip()


def op_summary(node: Node, fig: NodeFigures) -> str:
    """A short op description from the op's rule: ``conv 3×3 s2 p1``, ``maxpool 2×2``, ``linear``."""
    if node.is_input or fig.attrs is None:
        return node.op
    return OPS[node.op].summary(node.op, fig.attrs)


def op_detail(node: Node, fig: NodeFigures) -> str:
    """The key figure beside the summary (out channels, features, p, scale...), from the op's rule."""
    if node.is_input or fig.attrs is None:
        return ""
    return OPS[node.op].detail(node.op, fig.attrs)


def rf_text(rf: RF) -> str:
    """The local field, '+ global' where a gate also shows the output the whole input
    (specdsl.passes.receptive)."""
    if rf is None:
        return ""
    if any(a.stride == 0 for a in rf):  # specdsl.ops.merge.WHOLE: after a global pool
        return " × ".join("whole input" if a.stride == 0 else str(a) for a in rf) \
            if len(set(rf)) > 1 else "whole input"
    if len(set(rf)) == 1:
        return str(rf[0]) + global_suffix(rf)
    return " × ".join(str(a) for a in rf) + global_suffix(rf)


# `layer1[0].conv1` -> `layer1`, `[0]`, `conv1`: a path's module names, one level each (a position
# in a container, or a repeat's copy, is a level of its own).
_SEGMENT = re.compile(r"[^.\[\]]+|\[\d+\]")


def path_segments(path: str) -> list[str]:
    return _SEGMENT.findall(path)
