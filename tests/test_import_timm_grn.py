"""Import of timm's ConvNeXt V2 (global response norm) and RMS-norm ConvNeXts (RmsNorm2d, SimpleNorm2d):
the smallest of each at a small input, round-tripping exactly with timm's own weights, the norms'
weights drawn at random first (timm starts GRN at zero, the identity, which would hide a wrong GRN)."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from torch import nn  # noqa: E402

from specdsl.backends.torch.capture_import import from_torch  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _randomised(module: Any) -> Any:
    torch.manual_seed(0)
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if key.endswith(("grn.weight", "grn.bias", "norm.weight", "stem.1.weight")):
                value.uniform_(-1.0, 1.0)
    return module.eval()


# timm's ConvNeXt class as its RMS models build it, without their layer scale (a gamma [C], another
# import's), so that these test the norms: convnext_atto_rms (RmsNorm2d), convnext_zepto_rms_ols (SimpleNorm2d).
_ATTO_RMS = {"depths": (2, 2, 6, 2), "dims": (40, 80, 160, 320), "conv_mlp": True, "norm_layer": "rmsnorm2d"}
_ZEPTO_OLS = {"depths": (2, 2, 4, 2), "dims": (32, 64, 128, 256), "conv_mlp": True, "norm_layer": "simplenorm",
              "stem_type": "overlap_act"}


@pytest.mark.parametrize(("name", "ops", "options"), [
    ("convnextv2_atto", ("grn",), None),
    ("convnext_atto_rms", ("rmsnorm",), _ATTO_RMS),
    ("convnext_zepto_rms_ols", ("simplenorm",), _ZEPTO_OLS),
])
def test_timm_model_round_trips_exactly(name: str, ops: tuple[str, ...], options: dict[str, Any] | None) -> None:
    from timm.models.convnext import ConvNeXt

    made = timm.create_model(name, pretrained=False) if options is None else ConvNeXt(**options, ls_init_value=None)
    module = _randomised(made)
    imported = from_torch(module, (3, 32, 32), name=name)
    rt = imported.round_trip
    assert rt.ok and rt.max_rel_error <= 1e-5, rt.problems
    assert rt.params == sum(p.numel() for p in module.parameters()) == imported.model.totals.params
    used = {node.op for node in imported.model.graph.nodes}
    assert set(ops) <= used, used


class _ChannelsLast(nn.Module):
    """ConvNeXt V2's MLP as its larger models run it, channels last between two permutes (no layer
    norm: that is another import's), with timm's channels-last norms and torch's nn.RMSNorm."""

    def __init__(self) -> None:
        super().__init__()
        from timm.layers.grn import GlobalResponseNorm
        from timm.layers.norm import RmsNorm, SimpleNorm

        self.fc1 = nn.Linear(8, 16)
        self.grn = GlobalResponseNorm(16, channels_last=True)
        self.rms = RmsNorm(16)
        self.simple = SimpleNorm(16, affine=False)
        self.torch_rms = nn.RMSNorm(16, eps=1e-5)
        self.fc2 = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 2, 3, 1)
        y = self.fc2(self.torch_rms(self.simple(self.rms(self.grn(self.fc1(y))))))
        return x + y.permute(0, 3, 1, 2)


def test_channels_last_norms_round_trip() -> None:
    module = _randomised(_ChannelsLast())
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-1.0, 1.0)
    imported = from_torch(module, (8, 5, 6), name="cl")
    assert imported.round_trip.ok and imported.round_trip.max_rel_error <= 1e-5, imported.round_trip.problems
    assert "grn(channels_last=true)" in imported.text and "rmsnorm(eps=1e-05, channels_last=true)" in imported.text
    assert "simplenorm(affine=false, channels_last=true)" in imported.text
