"""Import of timm's EvoNorm and filter-response-norm networks (EvoNorm2dS0 / EvoNorm2dS0a,
FilterResponseNormTlu2d): small members of each family at a small input, round-tripping exactly with
timm's own weights, the norms' weights drawn at random first (timm's ones and zeros would hide a
misplaced weight, bias, v or tau)."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from specdsl.backends.torch.capture_import import from_torch  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

_NORM_PARAMS = (".weight", ".bias", ".v", ".tau")


def _randomised(module: Any) -> Any:
    torch.manual_seed(0)
    with torch.no_grad():
        for sub in module.modules():
            if type(sub).__name__.startswith(("EvoNorm", "FilterResponse")):
                for p in sub.parameters():
                    low = -0.5 if p is getattr(sub, "tau", None) else 0.5  # tau thresholds about 0
                    p.uniform_(low, low + 1.0)
    return module.eval()


# resnetv2_50d_evos / _frn as timm registers them (deep stem, avg_down), one block a stage and narrower,
# so the test stays small; test_efficientnet_evos is timm's own small EvoNorm-S0 test network.
_SMALL_RESNETV2 = {"layers": [1, 1, 1, 1], "channels": (128, 256, 384, 512)}


@pytest.mark.parametrize(("name", "op", "options"), [
    ("test_efficientnet_evos", "evonorm", {}),
    ("resnetv2_50d_evos", "evonorm", _SMALL_RESNETV2),
    ("resnetv2_50d_frn", "frn", _SMALL_RESNETV2),
])
def test_timm_model_round_trips_exactly(name: str, op: str, options: dict[str, Any]) -> None:
    module = _randomised(timm.create_model(name, pretrained=False, **options))
    # ResNetV2 registers its downsample after the pre-activation norm it runs after (as the benchmark, keys by name).
    imported = from_torch(module, (3, 32, 32), name=name, key_order=False)
    rt = imported.round_trip
    assert rt.ok and rt.max_rel_error <= 1e-5, rt.problems
    assert rt.params == sum(p.numel() for p in module.parameters()) == imported.model.totals.params
    assert op in {node.op for node in imported.model.graph.nodes}


def test_group_size_and_s0a_read_back() -> None:
    """regnetz_*_evos build EvoNorm2dS0a from group_size: the spec writes timm's group count."""
    from timm.layers.evo_norm import EvoNorm2dS0a
    from torch import nn

    module = _randomised(nn.Sequential(nn.Conv2d(3, 32, 3), EvoNorm2dS0a(32, group_size=16), nn.Conv2d(32, 8, 1)))
    imported = from_torch(module, (3, 12, 12), name="s0a")
    assert imported.round_trip.ok and imported.round_trip.max_rel_error <= 1e-5, imported.round_trip.problems
    assert "evonorm(groups=2, eps=0.001, variant=s0a)" in imported.text, imported.text
