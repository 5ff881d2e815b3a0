"""The shape pass: each node's output shape and attrs, from its op's shape rule.

For each node, in topological order, the op's ``infer`` rule runs on its inputs'
shapes and gives the output shape plus the op's typed attrs (the arguments
resolved against the input), which every later pass and backend reads; the
rule's errors and warnings become located diagnostics. The expander runs it
node by node as it builds (blocks such as ``shortcut: auto`` need shapes), and
hands the results on so that the analysis never infers a shape twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from specdsl.errors import Diagnostic
from specdsl.ir import Graph, Node
from specdsl.ops import OPS
from specdsl.ops.channels import PART
from specdsl.ops.rule import RuleContext, RuleViolation, Shape, fmt_shape
from specdsl.passes.diagnostics import located

AXIS_MAX = 2**63 - 1


class NodeShape:
    """One node's result of the shape pass.

    ``shape``: None where the node's rule failed, or an input's did (then ``failed`` without
    a diagnostic here). ``attrs``: the op's typed attrs (see specdsl.ops.rule.Inferred); None
    for the input and failed nodes. ``diagnostics``: the shape rule's errors and warnings.
    ``parts``: the shapes of a multi-output node's outputs (split, chunk), else None.
    """

    # A plain slotted class: a dataclass costs about a millisecond to create at import.
    __slots__ = ("attrs", "diagnostics", "failed", "parts", "shape")

    def __init__(self, shape: Shape | None = None, attrs: Any = None, failed: bool = False,
                 diagnostics: tuple[Diagnostic, ...] = (), parts: tuple[Shape, ...] | None = None) -> None:
        self.shape = shape
        self.attrs = attrs
        self.failed = failed
        self.diagnostics = diagnostics
        self.parts = parts

    def __repr__(self) -> str:
        return (f"NodeShape({self.shape!r}, {self.attrs!r}, failed={self.failed}, "
                f"diagnostics={self.diagnostics!r}, parts={self.parts!r})")


def infer_node(node: Node, shapes: Sequence[NodeShape], input_shape: Shape) -> NodeShape:
    """The shape of one node from its inputs' (already inferred: topological order)."""
    if node.is_input:
        return NodeShape(input_shape)
    in_shapes = []
    for i in node.inputs:
        s = shapes[i].shape
        if s is None:
            return NodeShape(failed=True)  # an upstream error already explains this node
        in_shapes.append(s)
    ctx = RuleContext()
    if any(shapes[i].parts is not None for i in node.inputs):
        if node.op != PART:
            return NodeShape(failed=True, diagnostics=(_whole_of_split(node, shapes),))
        ctx.input_parts = [shapes[i].parts for i in node.inputs]
    try:
        inferred = OPS[node.op].infer(node.args, in_shapes, ctx)
    except RuleViolation as v:
        return NodeShape(failed=True, diagnostics=(located(node, v.code, v.message, v.hint, v.field),))
    except OverflowError:
        # Float shape math (upsample scales) with absurd numbers; the axis check below catches the rest.
        return NodeShape(failed=True, diagnostics=(located(
            node, "E301", "output size out of range: the arguments make an axis too large to compute",
            "use sizes and scales a model could hold", None),))
    diags = tuple(located(node, code, message, hint, fieldname, severity="warning")
                  for code, message, hint, fieldname in ctx.warnings) if ctx.warnings else ()
    shape = inferred.shape
    if any(d <= 0 for d in shape):
        return NodeShape(failed=True, diagnostics=(*diags, located(
            node, "E301", f"output shape {fmt_shape(shape)} has a non-positive axis",
            "an earlier layer shrank the input too far", None)))
    if any(d > AXIS_MAX for d in shape):
        # PyTorch sizes are int64; stopping here also keeps every later figure a small integer.
        return NodeShape(failed=True, diagnostics=(*diags, located(
            node, "E301", f"output shape {_short_shape(shape)} has an axis larger than 2^63-1",
            "an earlier layer grew the input too far", None)))
    return NodeShape(shape, inferred.attrs, diagnostics=diags, parts=inferred.parts)


def _whole_of_split(node: Node, shapes: Sequence[NodeShape]) -> Diagnostic:
    k = next(k for k, i in enumerate(node.inputs) if shapes[i].parts is not None)
    parts = shapes[node.inputs[k]].parts or ()
    listed = ", ".join(fmt_shape(p) for p in parts)
    return located(node, "E344", f"'{node.op}' is given a split's outputs as one input: it has {len(parts)} "
                   f"parts ({listed}); a layer takes one of them",
                   "name the split (`as s`) and refer to one part, e.g. `@s.0` (YAML: `inputs: [s.0]`)", None)


def infer_shapes(graph: Graph) -> list[NodeShape]:
    """The shape pass over a whole graph."""
    shapes: list[NodeShape] = []
    for node in graph.nodes:
        shapes.append(infer_node(node, shapes, graph.input_shape))
    return shapes


def _short_shape(shape: Shape) -> str:
    return "[" + ", ".join(str(d) if d <= AXIS_MAX else f"~2^{d.bit_length() - 1}" for d in shape) + "]"
