"""ONNX import (issues 25 and 27): every zoo model exported by specdsl's ONNX backend reads back to
the same spec figures, node by node, and the lifted weights run to ONNX Runtime's outputs.

The lifted graph is checked as a spec would be: each node through its op's rule (``flat_model``
builds the graph IR from it), so shapes, parameters, buffers and MACs are the rules' own figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
sys.path.insert(0, str(Path(__file__).parent))
from zoo_inputs import SMALL  # noqa: E402

import specdsl  # noqa: E402
from specdsl import zoo  # noqa: E402
from specdsl.backends.naming import module_path  # noqa: E402
from specdsl.backends.onnx import to_onnx  # noqa: E402
from specdsl.backends.onnx.imports import lift_onnx  # noqa: E402
from specdsl.backends.onnx.imports_table import IMPORTS  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402
from specdsl.ir import Graph, Node  # noqa: E402
from specdsl.lift.graph import LiftedGraph  # noqa: E402
from specdsl.ops import OPS  # noqa: E402
from specdsl.passes.analysis import analyze  # noqa: E402

# Ops ONNX cannot tell apart at inference and specdsl's export cannot name (their p is required).
SAME_AT_INFERENCE = {"stochastic_depth": "identity"}
# Ops whose second input only gives a size: ONNX keeps the size, not the tensor.
SIZE_FROM_INPUT = {"upsample"}


def flat_model(lifted: LiftedGraph) -> specdsl.Model:
    """The lifted graph as a checked model, one node per lifted node (no blocks recovered)."""
    assert not lifted.unmapped, "\n".join(f"{u.path}: {u.origin}: {u.reason}" for u in lifted.unmapped)
    nodes = [Node(0, "input", None, (), "")]
    for i, n in enumerate(lifted.nodes[1:], start=1):
        path = n.path if n.is_module else f"{n.path}.{n.op}_{i}".lstrip(".")
        nodes.append(Node(i, n.op, OPS[n.op].args.model_validate(n.args), n.inputs, path))
    outputs = tuple((None, i) for i in lifted.outputs) if len(lifted.outputs) > 1 else ()
    graph = Graph(lifted.name, lifted.input_shape, lifted.dtype, nodes, lifted.outputs[0], outputs=outputs)
    analysis = analyze(graph)
    assert not [d for d in analysis.diagnostics if d.is_error], analysis.diagnostics
    return specdsl.Model(graph, analysis, {}, "<onnx>")


def small(name: str) -> specdsl.Model:
    shape = SMALL.get(name, (3, 64, 64))
    try:
        return specdsl.load(name, input=shape, warn=False) if shape else specdsl.load(name, warn=False)
    except SpecError:  # a model that needs its own input size
        return specdsl.load(name, warn=False)


def _kind(op: str) -> str:
    return SAME_AT_INFERENCE.get(op, op)


def assert_same_figures(model: specdsl.Model, lifted: LiftedGraph) -> specdsl.Model:
    """Node by node: op, inputs, module name, shape, parameters, buffers and MACs; then the totals."""
    back = flat_model(lifted)
    g, figs, bfigs = model.graph, model.analysis.figures, back.analysis.figures
    ours = [n for n in g.nodes if n.op != "part"]
    theirs = [n for n in back.graph.nodes if n.op != "part"]
    ops = [(_kind(n.op), n.path) for n in ours], [(n.op, n.path) for n in theirs]
    assert [o for o, _ in ops[0]] == [o for o, _ in ops[1]], next(
        (a, b) for a, b in zip(*ops, strict=False) if a[0] != b[0])
    where: dict[int, int] = {}
    for a, b in zip(ours, theirs, strict=True):
        where[a.index] = b.index
    parts = {(n.inputs[0], n.args.index): n.index for n in back.graph.nodes if n.op == "part"}
    for n in g.nodes:
        if n.op == "part":
            where[n.index] = parts[where[n.inputs[0]], n.args.index]
    for a in g.nodes[1:]:
        b = back.graph.nodes[where[a.index]]
        fa, fb = figs[a.index], bfigs[b.index]
        want = [where[i] for i in a.inputs]
        assert list(b.inputs) == (want[:len(b.inputs)] if a.op in SIZE_FROM_INPUT else want), (a.path, b.inputs, want)
        mine, back_figs = (fa.shape, fa.params, fa.buffers, fa.macs), (fb.shape, fb.params, fb.buffers, fb.macs)
        assert mine == back_figs, (a.path, mine, back_figs)
        tensors = [[(w.name, w.shape, w.role) for w in f.weights] for f in (fa, fb)]
        assert tensors[0] == tensors[1], a.path
        lifted_node = lifted.nodes[b.index]
        if lifted_node.is_module:
            assert lifted_node.path == module_path(a.path), (lifted_node.path, a.path)
        else:
            source = g.nodes[a.inputs[0]] if a.op == "part" else a  # a part sits where its split does
            assert lifted_node.path == module_path(source.path).rpartition(".")[0], (lifted_node.path, a.path)
    assert (model.totals.params, model.totals.buffers, model.totals.macs) == \
        (back.totals.params, back.totals.buffers, back.totals.macs)
    assert list(back.graph.output_nodes) == [where[i] for i in g.output_nodes]
    return back


def test_every_op_has_an_import_entry_or_a_documented_refusal() -> None:
    assert IMPORTS.coverage(OPS) is None
    for op, item in IMPORTS.items():
        assert bool(item.patterns) != bool(item.refusal), op
        assert all(p.reads for p in item.patterns), op


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_model_exported_by_specdsl_reads_back_to_the_same_figures(name: str) -> None:
    model = small(name)
    lifted = lift_onnx(to_onnx(model, False))  # the weights as graph inputs: names and shapes alone
    assert lifted.input_shape == model.graph.input_shape
    assert_same_figures(model, lifted)
