"""The training-step peak against measurements on an H200, and `check --train / --fit` on the command line.

The figures are issue 15's: torch 2.11.0+cu130, cudnn.benchmark on, batch 64, 3×224×224, SGD
without momentum, the peak (``torch.cuda.max_memory_allocated``) of a third training step minus
the memory held before it (the parameters), the generated modules; MiB.
"""

from __future__ import annotations

import json

import pytest

import specdsl
from specdsl.cli.main import main
from specdsl.passes.train_memory import largest_batch

MiB = 1 << 20
# model: (parameters, fp32 step over the parameters, bf16 autocast step over the parameters)
H200 = {
    "resnet50": (97.5, 5282.6, 2770.2),
    "mobilenet_v2": (13.4, 4796.1, 2438.8),
    "densenet121": (30.4, 7975.5, 4092.4),
}


@pytest.mark.parametrize("name", sorted(H200))
@pytest.mark.parametrize("amp", [None, "bf16"])
def test_training_peak_within_5_percent_of_the_h200(name: str, amp: str | None) -> None:
    params, fp32, bf16 = H200[name]
    memory = specdsl.load(name, batch=64).train_memory(amp=amp)
    assert abs(memory.params / MiB - params) < 0.1
    over = (memory.peak - memory.params) / MiB
    measured = bf16 if amp else fp32
    assert abs(over - measured) / measured < 0.05, f"{name} {amp}: predicted {over:.1f} MiB, measured {measured}"


def test_parts_add_up_and_grow_with_the_batch() -> None:
    model = specdsl.load("resnet18")
    small, large = model.train_memory(batch=8), model.train_memory(batch=16)
    for m in (small, large):
        assert m.peak == m.params + m.buffers + m.optimizer_state + m.saved + m.backward_transient
        assert sum(m.per_node) == sum(m.saved_by_kind.values())
    assert large.peak > small.peak
    assert large.gradients == small.gradients == small.params  # nothing frozen, float32
    adam = model.train_memory(batch=8, optimizer="adam")
    assert adam.optimizer_state == 2 * adam.gradients
    assert model.train_memory(batch=8, optimizer="momentum").optimizer_state == adam.gradients


def test_in_place_relu_keeps_nothing_extra() -> None:
    """A ReLU after a conv runs in place: it keeps the conv's output, which a following conv keeps too."""
    text = "model: t\ninput: [3, 16, 16]\nlayers:\n  - conv: {out: 8, k: 3, pad: 1}\n  - relu\n" \
           "  - conv: {out: 8, k: 3, pad: 1}\n"
    memory = specdsl.load(text).train_memory(batch=4)
    elements = 4 * 3 * 16 * 16 + 4 * 8 * 16 * 16  # the input (kept by conv 1), conv 1's output (relu, conv 2)
    assert sum(memory.per_node) == 4 * elements


def test_largest_batch_fits_and_the_next_does_not() -> None:
    model = specdsl.load("resnet18")
    budget = 4 << 30
    batch = largest_batch(model, budget)
    assert model.train_memory(batch=batch).peak <= budget < model.train_memory(batch=batch + 1).peak


def test_check_train_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "resnet18", "--train", "--batch", "32", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "Saved" in out.splitlines()[2] and "Training:    peak" in out
    assert main(["check", "resnet18", "--train", "--batch", "32", "--json", "--fit", "24GiB"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    memory = specdsl.load("resnet18", batch=32).train_memory()
    assert totals["train_peak_bytes"] == memory.peak
    assert totals["train_memory"]["saved_bytes"] == memory.saved
    assert totals["fit"]["largest_batch"] == largest_batch(specdsl.load("resnet18"), 24 << 30)
    t = specdsl.load("resnet18", batch=32).totals
    assert totals["infer_peak_bytes"] == t.param_bytes + t.buffer_bytes + t.peak_bytes


@pytest.mark.parametrize("argv, message", [
    (["--fit", "1MiB"], "--fit 1.0 MiB is less than resnet18's parameters"),
    (["--fit", "24XB"], "argument --fit: expected a memory size"),
    (["--fit", "99999999EiB"], "argument --fit: expected a memory size"),
    (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
    (["--amp", "fp8"], "argument --amp: invalid choice: 'fp8'"),
    (["--train", "--batch", str(1 << 70)], "does not fit a 64-bit integer"),
    (["--train", "--batch", str(1 << 36), "--max-activations", str(1 << 62)], "overflow a 64-bit byte count"),
])
def test_bad_training_flags_are_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str],
                                             message: str) -> None:
    assert main(["check", "resnet18", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
