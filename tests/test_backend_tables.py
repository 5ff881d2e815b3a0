"""Every backend lowers every op through one table, and a missing entry fails loudly.

A table keyed by op name must cover ``specdsl.ops.OPS`` exactly: an op without an
entry must stop ``to_torch`` and ``specdsl build`` with an error that names it, never
fall through to some other op's code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import specdsl
from specdsl.backends.torch import lowerings
from specdsl.backends.torch.emit import emit
from specdsl.backends.torch.lowerings import (
    LOWERINGS,
    FunctionLowering,
    ModuleLowering,
    ParameterLowering,
    lowering_for,
)
from specdsl.backends.torch.source_expr import SourceExpr, as_source

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------- torch (needs torch only to run)

# One small spec per kind of entry: a module (relu), a function (add, mean, concat).
USES = """
model: t
input: [4, 6, 6]
layers:
  - {conv: {out: 4, k: 1}, name: a}
  - {relu: null, name: r}
  - {add: null, inputs: [a, r], name: s}
  - {mean: null, inputs: [a, s], name: m}
  - {concat: null, inputs: [m, r]}
"""


def test_torch_lowering_entries_are_modules_or_functions() -> None:
    for op, entry in LOWERINGS.items():
        assert isinstance(entry, (ModuleLowering, FunctionLowering, ParameterLowering)), op


def test_parameter_lowerings_are_the_ops_whose_tensor_is_the_node_itself() -> None:
    """A ParameterLowering (a parameter of the node's container) exactly where the op rule says its one
    tensor is the node itself (TensorSpec.of_container): the one place every backend asks."""
    model = specdsl.load("convnext_tiny")
    for node in model.graph.nodes[1:]:
        weights = model.analysis.figures[node.index].weights
        own = any(w.of_container for w in weights)
        assert isinstance(LOWERINGS[node.op], ParameterLowering) == own, node.op
        assert not own or len(weights) == 1


def test_function_lowerings_render_their_source() -> None:
    model = specdsl.load(USES)
    figs = {n.op: model.analysis.figures[n.index].attrs for n in model.graph.nodes}
    add, mean, concat = (LOWERINGS[op] for op in ("add", "mean", "concat"))
    assert isinstance(add, FunctionLowering) and isinstance(mean, FunctionLowering)
    assert isinstance(concat, FunctionLowering)
    assert add.source(["a", "b", "c"], figs["add"]) == "a + b + c"
    assert mean.source(["a", "b"], figs["mean"]) == "(a + b) / 2"
    assert concat.source(["a", "b"], figs["concat"]) == "torch.cat([a, b], dim=1)"
    assert concat.channels is not None and concat.channels(["c", "d"], figs["concat"]) == "c + d"


def test_source_expressions_follow_python_precedence() -> None:
    a, b, c = SourceExpr("a"), SourceExpr("b"), SourceExpr("c")
    assert (a - (b + c)).text == "a - (b + c)"
    assert ((a - b) - c).text == "a - b - c"
    assert (a * (b / c)).text == "a * (b / c)"
    assert (2 * (a + b) / c).text == "2 * (a + b) / c"
    assert as_source([a, (b,), None, -1.5]).text == "[a, (b,), None, -1.5]"


def test_a_missing_lowering_is_an_error_naming_the_op() -> None:
    with pytest.raises(KeyError, match="'no_such_op' has no PyTorch lowering"):
        lowering_for("no_such_op")


@pytest.mark.parametrize("op", ["relu", "add", "mean", "concat", "conv"])
def test_emit_fails_loudly_without_an_entry(monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    model = specdsl.load(USES)
    monkeypatch.delitem(lowerings.LOWERINGS, op)
    with pytest.raises(match=f"'{op}' has no PyTorch lowering"):
        emit(model)


@pytest.mark.parametrize("op", ["relu", "add", "mean", "concat", "conv"])
def test_to_torch_fails_loudly_without_an_entry(monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    pytest.importorskip("torch")
    from specdsl.backends.torch.fx import to_torch

    model = specdsl.load(USES)
    monkeypatch.delitem(lowerings.LOWERINGS, op)
    with pytest.raises(match=f"'{op}' has no PyTorch lowering"):
        to_torch(model)


def test_emitted_helpers_are_the_classes_to_torch_runs() -> None:
    """GlobalPool, FractalPath and Join exist once, in modules.py; the emitted file carries their exact text."""
    text = (ROOT / "backends" / "torch" / "modules.py").read_text(encoding="utf-8")
    classes = {n.name: ast.get_source_segment(text, n) for n in ast.parse(text).body if isinstance(n, ast.ClassDef)}
    assert {"GlobalPool", "FractalPath", "Join", "UpsampleTo", "CenterCrop"} <= set(classes)
    source = emit(specdsl.load("fractalnet_cifar10"))
    for name in ("FractalPath", "Join"):
        assert f"\n\n\n{classes[name]}\n\n\n" in source, name
    assert "class GlobalPool" not in source
    assert f"\n\n\n{classes['GlobalPool']}\n\n\n" in emit(specdsl.load("resnet18"))


EMIT_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now fails
import specdsl
from specdsl.backends.torch.emit import emit
for name in ("fractalnet_cifar10", "googlenet", "densenet121", "unet"):
    assert "class " in emit(specdsl.load(name))
"""


def test_emitting_needs_no_torch() -> None:
    proc = subprocess.run([sys.executable, "-c", EMIT_WITHOUT_TORCH], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
