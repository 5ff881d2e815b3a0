"""Every per-op table keeps one contract, and every op is tested in every backend.

Tables: the op rules (``specdsl.ops.OPS``), the PyTorch and NumPy lowerings, the saved-for-backward
entries. Each is an ``OpTable`` covering the op table exactly, and a missing entry is one error type
naming the file to edit. Oracles: an op must appear in the tests that hold each backend to an
outside truth (PyTorch's own figures and outputs, the NumPy reference, ONNX Runtime), either by
name or through the random-spec strategy those tests draw from, so a new op cannot pass CI
untested anywhere. These tests import no torch.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from specdsl.backends.numpy import lowerings as numpy_lowerings
from specdsl.backends.onnx import imports_table as onnx_imports
from specdsl.backends.onnx import lowerings as onnx_lowerings
from specdsl.backends.torch import imports as torch_imports
from specdsl.backends.torch import lowerings as torch_lowerings
from specdsl.ops import OPS, saved
from specdsl.ops.registry import MissingEntry, OpTable

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

TABLES = {
    "rules": OPS,
    "torch": torch_lowerings.LOWERINGS,
    "numpy": numpy_lowerings.LOWERINGS,
    "onnx": onnx_lowerings.LOWERINGS,
    "onnx_import": onnx_imports.IMPORTS,
    "saved": saved.SAVED,
    "torch import": torch_imports.IMPORTS,
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_is_an_op_table_covering_the_ops_exactly(name: str) -> None:
    table = TABLES[name]
    assert isinstance(table, OpTable)
    assert table.coverage(OPS) is None, table.coverage(OPS)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_a_missing_entry_names_the_op_and_a_file_that_exists(name: str) -> None:
    table = TABLES[name]
    with pytest.raises(MissingEntry) as caught:
        table["no_such_op"]
    message = str(caught.value)
    assert message.startswith(f"op 'no_such_op' has no {table.what}")
    assert f"to {table.variable} in " in message
    if table.where is None:  # a single file: it is where the message says, from the repo root
        assert (ROOT / table.source).is_file(), table.source
        assert table.source.startswith(("backends/", "specdsl/")), table.source


def test_coverage_names_what_is_missing_and_what_is_extra() -> None:
    table = OpTable("test entry", "T", __name__, {"relu": 1, "gone": 2})
    message = table.coverage({"relu", "conv"})
    assert message is not None
    assert "ops with no test entry: conv" in message and "the op table does not have: gone" in message
    assert message.startswith("T in tests/test_op_tables.py")


def test_an_op_added_twice_is_refused() -> None:
    table = OpTable("test entry", "T", __name__)
    table.add("relu", 1)
    with pytest.raises(ValueError, match="two entries"):
        table.add("relu", 2)


# -- oracles -----------------------------------------------------------------------------

# Which test files hold each backend to an outside truth, and whether they draw random specs from
# tests/strategies.py (whose proposers cover every single-input op: tests/test_properties.py).
# A file that runs the whole zoo (tests/zoo_inputs.py) also covers every op the zoo uses.
ORACLES: dict[str, tuple[tuple[str, ...], bool]] = {
    "rule figures vs PyTorch and textbooks": (
        ("test_ops.py", "test_ops_modern.py", "test_torch_oracle.py", "test_torch_oracle_modern.py",
         "test_gating.py", "test_split.py", "test_blocks.py", "test_ops_fixed.py", "test_ops_norm_global.py",
         "test_ops_reduce.py", "test_ops_norm_evo.py", "test_ops_condconv.py"), False),
    "PyTorch lowering vs PyTorch's own layers": (
        ("test_torch_oracle.py", "test_torch_oracle_modern.py", "test_outputs.py", "test_split.py",
         "test_torch_backend.py", "test_ops_fixed.py", "test_ops_norm_global.py", "test_ops_reduce.py",
         "test_ops_norm_evo.py", "test_ops_condconv.py"), True),
    "NumPy reference vs PyTorch": (("test_numpy_backend.py", "test_ops_condconv.py"), True),
    "saved tensors vs autograd's hooks": (("test_train_memory.py", "test_ops_condconv.py"), True),
    "ONNX export vs ONNX Runtime": (("test_export.py",), False),
    "ONNX backend vs the NumPy reference and PyTorch": (("test_onnx_backend.py",), True),
}
# Ops only a built-in block makes: a case of the block is a case of the op.
MADE_BY_BLOCK = {"join": "fractal"}


@functools.cache
def _zoo_ops() -> frozenset[str]:
    import specdsl
    from specdsl import zoo

    return frozenset(n.op for name in zoo.names() for n in specdsl.load(name, warn=False).graph.nodes)


def _mentions(path: Path) -> str:
    """All the string constants of a test file, joined: op names stand in them as "op", in YAML
    (`op:`) or in DSL text (`op(`, `-> op`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return "\n".join(node.value for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and isinstance(node.value, str))


def _mentioned(op: str, text: str) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(word)}(?![\w])", text) is not None
               for word in (op, MADE_BY_BLOCK.get(op, op)))


def _draws_random_specs(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return re.search(r"^from strategies import .*\b(specs|spec_text|propose)\b", text, re.M) is not None


def _runs_the_zoo(path: Path) -> bool:
    return re.search(r"^from zoo_inputs import", path.read_text(encoding="utf-8"), re.M) is not None


def _single_input(op: str) -> bool:
    return OPS[op].max_inputs == 1


@pytest.mark.parametrize("oracle", sorted(ORACLES))
def test_every_op_has_a_case_in_every_oracle(oracle: str) -> None:
    files, random_ok = ORACLES[oracle]
    texts = {name: _mentions(TESTS / name) for name in files}
    drawn = random_ok and any(_draws_random_specs(TESTS / name) for name in files)
    zoo_ops = _zoo_ops() if any(_runs_the_zoo(TESTS / name) for name in files) else frozenset()
    untested = [op for op in OPS
                if not any(_mentioned(op, t) for t in texts.values()) and not (drawn and _single_input(op))
                and op not in zoo_ops]
    assert not untested, (f"ops with no case in the {oracle} tests: {', '.join(sorted(untested))}; "
                          f"add one to {' or '.join('tests/' + f for f in files)}")
