"""torchvision's 78 CNNs import from their constructors (weights=None) and round-trip exactly.

For each: `specdsl.from_torch` traces the model, recovers a spec, rebuilds it with `to_torch`, loads the
original's state_dict by name (strictly: the same keys in the same order) and compares parameters,
buffers, MACs (specdsl's figure against torch.utils.flop_counter on the original) and outputs on a random
input (1e-5 relative). The parameter count is also held to tests/reference/torchvision_cnns.json, measured
apart. Inputs are small where the architecture allows, to keep the suite fast; runs where torchvision is
installed (/work/tvenv, or the lock once torchvision is pinned there).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from specdsl.backends.torch.capture_import import from_torch  # noqa: E402

REFERENCE = json.loads((Path(__file__).parent / "reference" / "torchvision_cnns.json").read_text(encoding="utf-8"))
MODELS = REFERENCE["models"]

# The smallest inputs each architecture takes (its strides and fixed kernels), batch excluded.
SMALL = {"classification": (3, 64, 64), "video": (3, 4, 32, 32), "segmentation": (3, 64, 64)}
INPUTS = {"googlenet": (3, 96, 96), "inception_v3": (3, 75, 75), "s3d": (3, 16, 224, 224)}

@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # small convolutions on a shared machine: threads only contend


def _input(name: str) -> tuple[int, ...]:
    return INPUTS.get(name, SMALL[MODELS[name]["kind"]])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_torchvision_model_round_trips(name: str) -> None:
    ref = MODELS[name]
    module = torchvision.models.get_model(name, weights=None, **ref["constructor_kwargs"])
    imported = from_torch(module, _input(name), name=name)
    rt = imported.round_trip
    assert rt.ok and rt.order is None, rt.problems
    assert rt.params == ref["params"] == imported.model.totals.params
    assert rt.max_rel_error <= 1e-5
    assert [k for k, _ in ref["state_dict"]] == list(module.state_dict())  # the reference's order is the module's
