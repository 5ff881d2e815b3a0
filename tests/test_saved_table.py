"""The saved-for-backward table covers every op exactly, and nothing on its path imports torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import specdsl
from specdsl.ops.saved import SAVED, SavedEntry, saved_for
from specdsl.passes.memory import saved_tensors


def test_saved_entries_are_well_formed() -> None:
    for op, entry in SAVED.items():
        assert isinstance(entry, SavedEntry), op
        assert entry.autocast in ("low", "fp32", "same"), op
        assert entry.grads in ("new", "pass", "slices"), op


def test_a_missing_entry_is_an_error_naming_the_op() -> None:
    with pytest.raises(KeyError, match="'no_such_op' has no saved-for-backward entry"):
        saved_for("no_such_op")


def test_the_pass_fails_loudly_without_an_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    model = specdsl.load("resnet18")
    table = dict(SAVED)
    del table["bn"]
    with pytest.raises(KeyError, match="bn"):
        saved_tensors(model.graph, model.analysis.figures, 2, table)


NO_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now fails
sys.modules["numpy"] = None
import specdsl
from specdsl.cli.main import main
m = specdsl.load("densenet121", batch=8)
assert m.train_memory(amp="bf16", optimizer="adam").peak > 0
assert main(["check", "mobilenet_v2", "--train", "--fit", "8GiB", "--amp", "bf16"]) == 0
assert main(["check", "resnet18", "--train", "--json"]) == 0
"""


def test_training_memory_needs_neither_torch_nor_numpy() -> None:
    proc = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
