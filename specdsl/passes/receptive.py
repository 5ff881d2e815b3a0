"""The receptive-field pass: each node's size, effective stride and padding per spatial axis.

Computed from the shape pass's attrs by each op's ``rf`` rule. The expander runs
it node by node as it builds, next to the shape pass (a projection shortcut
matches the body's effective stride), and hands the results on to the figures
and alignment passes.

Local field and global context. A squeeze-and-excitation gate (global pool -> 1x1 convs ->
sigmoid, multiplied into the feature map) lets every output unit see the whole input, so the
plain union of paths would call every later field "the whole input" and hide what the
convolutions see. The field reported is the *local* one: the union over every path that does
not go through a global pool. Where a merge's input sees the whole input on every axis (the
SE gate of ``x * sigmoid(fc(gap(x)))``), that input is left out of the union, and the result
is a :class:`GatedRF`: the local field of ``x``, marked "+ global" because the output also
depends on the whole input through the gate. A node whose every path goes through a global
pool (the gap before a classifier) keeps the whole-input field. The alignment pass (W320) and
the residual block's projection stride read the local field too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from specdsl.ir import Graph, Node
from specdsl.ops import OPS
from specdsl.ops.merge import sees_whole
from specdsl.ops.rule import RF, AxisRF, Shape, Trait
from specdsl.passes.shapes import NodeShape


class GatedRF(tuple[AxisRF, ...]):
    """The local receptive field (per axis) of an output that also sees the whole input through
    a gate from a global pool. A tuple of AxisRF like any RF, so every consumer reads it as the
    local field; :func:`sees_global` tells the two apart."""

    __slots__ = ()


def sees_global(rf: RF) -> bool:
    """Whether an output depends on the whole input through a global pool (on some axis)."""
    return isinstance(rf, GatedRF) or (rf is not None and any(sees_whole(a) for a in rf))


def only_global(rf: RF) -> bool:
    """Whether every path to an output goes through a global pool (no local field on any axis)."""
    return rf is not None and len(rf) > 0 and all(sees_whole(a) for a in rf)


def local_field(rf: RF) -> tuple[AxisRF, ...] | None:
    """The local field where there is one (None for a non-spatial or only-global output)."""
    return None if rf is None or only_global(rf) else tuple(rf)


def global_suffix(rf: RF) -> str:
    """' + global' after a local field that also sees the whole input through a gate."""
    return " + global" if isinstance(rf, GatedRF) else ""


def input_rf(shape: Shape) -> RF:
    """The model input: every element sees itself."""
    if len(shape) < 2:
        return None
    return tuple(AxisRF(1, 1, 0) for _ in shape[1:])


def node_rf(node: Node, shape: NodeShape, rfs: Sequence[RF]) -> RF:
    """One node's receptive field from its inputs' (already computed); None where its shape failed."""
    if shape.shape is None:
        return None
    if node.is_input:
        return input_rf(shape.shape)
    rule = OPS[node.op]
    ins = [rfs[i] for i in node.inputs]
    attrs = shape.attrs
    if len(ins) == 1 and (ins[0] is None or (type(ins[0]) is not GatedRF and all(a.stride for a in ins[0]))):
        return rule.rf(attrs, ins)  # the common case, kept fast: nothing global behind it
    if len(ins) > 1 and rule.has(Trait.MERGE):
        kept = [k for k, r in enumerate(ins) if not only_global(r)]
        if kept and len(kept) < len(ins):
            # A gate: the merge's local field is that of its other inputs.
            local = rule.rf(_only_inputs(attrs, kept), [ins[k] for k in kept]) if len(kept) > 1 else ins[kept[0]]
            return None if local is None else GatedRF(local)
    rf = rule.rf(attrs, ins)
    if rf is not None and not isinstance(rf, GatedRF) and not only_global(rf) and any(map(sees_global, ins)):
        return GatedRF(rf)
    return rf


def _only_inputs(attrs: Any, kept: Sequence[int]) -> Any:
    """A merge's attrs for a subset of its inputs (the per-input broadcast flags follow them)."""
    broadcast = getattr(attrs, "broadcast", ())
    if broadcast and hasattr(attrs, "_replace"):
        return attrs._replace(broadcast=tuple(broadcast[k] for k in kept))
    return attrs


def receptive_fields(graph: Graph, shapes: Sequence[NodeShape]) -> list[RF]:
    """The receptive-field pass over a whole graph."""
    rfs: list[RF] = []
    for node, s in zip(graph.nodes, shapes, strict=True):
        rfs.append(node_rf(node, s, rfs))
    return rfs
