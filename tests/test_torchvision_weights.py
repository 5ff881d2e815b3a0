"""torchvision's own checkpoints load into the zoo by name and give torchvision's outputs.

torchvision is a test dependency (constraints.txt pins the torchvision that loads beside the pinned
torch), so this runs in the test environment; it skips only where torchvision is not installed, and
a torchvision that is installed but cannot load beside torch fails it. scripts/check_torchvision_weights.py
runs the same check over all 78 models (README, "Pretrained weights").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torchvision")  # ModuleNotFoundError only: an install that fails to load is an error

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["resnet18", "alexnet", "squeezenet1_1", "googlenet", "mobilenet_v3_small",
                                  "efficientnet_b0", "regnet_x_400mf", "shufflenet_v2_x0_5", "densenet121"])
def test_torchvision_checkpoint_loads_by_name_and_matches(name: str, tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from check_torchvision_weights import REFERENCE, check
    finally:
        sys.path.pop(0)
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))["models"][name]
    ok, detail = check(name, reference, full_size=False, folder=tmp_path)
    assert ok, detail
