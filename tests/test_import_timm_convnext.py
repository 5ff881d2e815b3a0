"""Import of timm's ConvNeXt (v1) and InceptionNeXt: the layer scale as timm keeps it (``gamma`` shaped
[C], applied as ``x.mul(gamma.reshape(1, -1, 1, 1))``: ``layer_scale(flat=true)``) and timm's LayerNorm
and LayerNorm2d (``layernorm`` channels last, ``channel_norm``). The smallest named member at a small
input, and timm's own classes built smaller for the channels-last and InceptionNeXt forms; scales and
norm weights are drawn away from 1e-6 and 1 so that a misplaced scale changes the outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from torch import nn  # noqa: E402

import specdsl  # noqa: E402
from specdsl.backends.torch.capture_import import from_torch  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402
from specdsl.render.reformat import format_text  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _randomised(module: Any) -> Any:
    torch.manual_seed(0)
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if key.endswith(("gamma", "norm.weight", "stem.1.weight", "running_var")):
                value.uniform_(0.5, 1.5)
            elif key.endswith(("bias", "running_mean")):
                value.uniform_(-0.2, 0.2)
    return module.eval()


def _round_trips(module: Any, shape: tuple[int, ...], name: str) -> Any:
    imported = from_torch(module, shape, name=name)
    rt = imported.round_trip
    assert rt.ok and rt.order is None and rt.max_rel_error <= 1e-5, rt.problems
    assert rt.params == sum(p.numel() for p in module.parameters()) == imported.model.totals.params
    # The spec reads as written by hand (fmt leaves it) and loads back to timm's keys and shapes.
    assert format_text(imported.text, f"{name}.cnn") == imported.text
    rebuilt = specdsl.to_torch(specdsl.load(imported.text))
    assert [(k, tuple(v.shape)) for k, v in rebuilt.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in module.state_dict().items()]
    return imported


def test_convnext_atto_round_trips_with_timm_gamma() -> None:
    module = _randomised(timm.create_model("convnext_atto", pretrained=False))
    imported = _round_trips(module, (3, 32, 32), "convnext_atto")
    assert "layer_scale(flat=true) as gamma" in imported.text
    assert "channel_norm(eps=1e-06) as norm" in imported.text
    assert "x2" in imported.text  # the blocks are one block, repeated
    assert tuple(module.state_dict()["stages.0.blocks.0.gamma"].shape) == (40,)


def test_channels_last_convnext_maps_timm_layer_norm() -> None:
    """convnext_tiny's form, smaller: timm's LayerNorm between permutes, a Linear MLP."""
    from timm.models.convnext import ConvNeXt

    module = _randomised(ConvNeXt(depths=(1, 2, 1, 1), dims=(8, 16, 16, 24), num_classes=5))
    imported = _round_trips(module, (3, 32, 32), "convnext_cl")
    assert "layernorm(c, eps=1e-06) as norm" in imported.text
    assert "layer_scale(flat=true) as gamma" in imported.text


def test_inception_next_round_trips() -> None:
    from timm.models.inception_next import MetaNeXt

    module = _randomised(MetaNeXt(depths=(1, 1, 2, 1), dims=(8, 16, 16, 32), num_classes=5))
    imported = _round_trips(module, (3, 32, 32), "inception_next_small")
    assert "layer_scale(flat=true) as gamma" in imported.text


class _ChannelsLastScale(nn.Module):
    """A [C] scale on a channels-last tensor scales its last axis: not a layer_scale over channels."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((6,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).mul(self.gamma).permute(0, 3, 1, 2)


def test_a_scale_of_the_last_axis_is_not_read_as_layer_scale() -> None:
    with pytest.raises(SpecError) as caught:
        from_torch(_ChannelsLastScale(), (6, 6, 6), name="cl_scale")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E510" and "Tensor.mul" in diagnostic.message


FLAT = """model flat
input [4, 5, 6]
layers {
    conv(6, k=3, pad=1) as conv -> layer_scale(0.5, flat=true) as gamma
}
"""


def test_flat_layer_scale_agrees_in_every_backend() -> None:
    """One gamma [C] under the node's name; PyTorch, the emitted source, NumPy and ONNX Runtime agree."""
    ort = pytest.importorskip("onnxruntime")
    from specdsl.backends.numpy import NumpyModel
    from specdsl.backends.onnx.export import to_onnx
    from specdsl.backends.torch.emit import check_emitted, emit

    model = specdsl.load(FLAT)
    module = specdsl.to_torch(model, seed=0).eval()
    assert tuple(module.state_dict()["gamma"].shape) == (6,)
    assert bool((module.get_parameter("gamma") == 0.5).all())
    with torch.no_grad():
        module.get_parameter("gamma").uniform_(0.5, 1.5)  # one scale per channel, each its own
    weights = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 6)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
        conv = module.get_submodule("conv")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(want, conv * weights["gamma"].reshape(1, 6, 1, 1), rtol=1e-6)
    np.testing.assert_allclose(NumpyModel(model, weights)(x), want, rtol=1e-5, atol=1e-6)

    source = emit(model)
    assert "torch.reshape(self.gamma, (1, -1, 1, 1))" in source
    assert check_emitted(model, source) == []

    session = ort.InferenceSession(to_onnx(model, weights).SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
