"""torchvision's own checkpoints load into the zoo by name and give torchvision's outputs.

Needs torchvision beside torch, which the pinned CPU torch of the test environment cannot load
(`operator torchvision::nms does not exist`), so this skips there; scripts/check_torchvision_weights.py
runs the same check over all 78 models where torchvision loads (README, "Pretrained weights").
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _torchvision_loads() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
    except Exception:  # the registry's wheel beside a CPU torch fails at import
        return False
    return True


pytestmark = pytest.mark.skipif(not _torchvision_loads(), reason="torchvision cannot be imported beside this torch")


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
