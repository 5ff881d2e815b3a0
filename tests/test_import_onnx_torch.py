"""ONNX import of torch.onnx's exports (issue 25): torchvision models exported by PyTorch's own
ONNX exporters import with every node mapped, their initializers come back under the state_dict's
keys, and the recovered spec, given those weights, computes what ONNX Runtime computes.

Needs torchvision and onnxruntime (run in the torchvision environment); skipped without them.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
ort = pytest.importorskip("onnxruntime")
sys.path.insert(0, str(Path(__file__).parent))
from test_import_onnx import flat_model  # noqa: E402

import specdsl  # noqa: E402
from specdsl.backends.numpy import NumpyModel  # noqa: E402
from specdsl.backends.onnx.imports import lift_onnx  # noqa: E402
from specdsl.lift.graph import LiftedGraph  # noqa: E402
from specdsl.lift.structure import RecoveryError, recover  # noqa: E402
from specdsl.render.printer import to_dsl  # noqa: E402

# A handful that covers the patterns torch.onnx writes: conv/bn/relu and residual adds (resnet18),
# hardswish, hardsigmoid and squeeze-excitation (mobilenet_v3_small), concat branches (squeezenet),
# chunk as Slices and the channel shuffle's reshapes (shufflenet), silu and stochastic depth
# (efficientnet_b0), LayerNorm2d, gelu, layer_scale and a linear over channels-last (convnext_tiny).
TORCHSCRIPT = ["resnet18", "mobilenet_v3_small", "squeezenet1_0", "shufflenet_v2_x0_5", "efficientnet_b0",
               "convnext_tiny"]
# Small inputs at which every layer still runs (convnext_tiny downsamples 32 times).
SIZE = {"convnext_tiny": 32}


def export(name: str, path: Path, dynamo: bool) -> tuple[torch.nn.Module, np.ndarray]:
    torch.manual_seed(0)
    module = getattr(torchvision.models, name)().eval()
    size = SIZE.get(name, 64)
    x = torch.randn(2, 3, size, size)
    # The TorchScript exporter without constant folding keeps each batch norm as its own node under
    # its state_dict keys; the dynamo exporter folds batch norms into the convolutions.
    options = {"dynamo": True} if dynamo else {"dynamo": False, "do_constant_folding": False}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x[:1],), str(path), **options)
    return module, x.numpy()


def onnxruntime_output(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[k:k + 1]})[0] for k in range(len(x))])


def recovered(lifted: LiftedGraph) -> specdsl.Model:
    """The spec structure recovery writes, loaded; the flat graph where recovery cannot write it yet
    (a Sequential child that the export dropped, such as an eval-mode Dropout)."""
    try:
        return specdsl.load(to_dsl(recover(lifted)), warn=False)
    except RecoveryError:
        return flat_model(lifted)


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-5) -> None:
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("name", TORCHSCRIPT)
def test_torchvision_export_imports_under_its_keys_and_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    path = tmp_path / f"{name}.onnx"
    module, x = export(name, path, dynamo=False)
    lifted = lift_onnx(path)
    assert not lifted.unmapped, [(u.path, u.origin, u.reason) for u in lifted.unmapped[:3]]
    state = module.state_dict()
    assert list(lifted.weights) == list(state)
    for key, value in state.items():
        assert np.array_equal(lifted.weights[key], value.numpy()), key
    model = recovered(lifted)
    assert model.totals.params == sum(p.numel() for p in module.parameters())
    got = NumpyModel(model, lifted.weights, "float64")(x.astype(np.float64))
    assert_close(got, onnxruntime_output(path, x))
    with torch.no_grad():
        assert_close(got, module(torch.from_numpy(x)).numpy())


def test_a_dynamo_export_with_folded_batch_norms_matches_onnxruntime(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    path = tmp_path / "resnet18.onnx"
    module, x = export("resnet18", path, dynamo=True)
    lifted = lift_onnx(path)
    assert not lifted.unmapped
    assert "layer1.0.conv1.weight" in lifted.weights and not any("bn" in k for k in lifted.weights)
    assert lifted.classes["layer1.0"] == "BasicBlock"
    model = recovered(lifted)
    got = NumpyModel(model, lifted.weights, "float64")(x.astype(np.float64))
    assert_close(got, onnxruntime_output(path, x))
    with torch.no_grad():
        assert_close(got, module(torch.from_numpy(x)).numpy())


def test_a_node_no_entry_maps_is_reported_with_its_module_and_line(tmp_path: Path) -> None:
    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cos(self.conv(x))

    path = tmp_path / "odd.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(Odd().eval(), (torch.randn(1, 3, 8, 8),), str(path), dynamo=True)
    lifted = lift_onnx(path)
    assert [n.op for n in lifted.nodes] == ["input", "conv"]
    [odd] = lifted.unmapped
    assert odd.origin.startswith("onnx Cos ") and "no import entry reads ONNX Cos" in odd.reason
    assert odd.source is not None and odd.source.startswith(__file__)
