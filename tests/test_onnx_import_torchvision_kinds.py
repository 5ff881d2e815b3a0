"""ONNX import of torch.onnx's exports: failure kinds met over torchvision's 78 CNNs
(benchmarks/bench_onnx_import.py --all), each as a small module exported at a tiny input.

Needs torch and onnxruntime; skipped without them.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import specdsl  # noqa: E402
from specdsl.backends.numpy import NumpyModel  # noqa: E402
from specdsl.backends.onnx.imports import lift_onnx  # noqa: E402
from specdsl.lift.structure import recover  # noqa: E402
from specdsl.render.printer import to_dsl  # noqa: E402


def _export(module: torch.nn.Module, x: torch.Tensor, path: Path, dynamo: bool) -> None:
    options = {"dynamo": True} if dynamo else {"dynamo": False, "do_constant_folding": False}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (x,), str(path), **options)


def _onnxruntime(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


class _HalfUnit(torch.nn.Module):
    """ShuffleNetV2's stride-1 unit, shortened: one half of the channels kept, the other through a branch."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.branch = torch.nn.Sequential(torch.nn.Conv2d(c // 2, c // 2, 1), torch.nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept, changed = x.chunk(2, dim=1)
        return torch.cat((kept, self.branch(changed)), dim=1)


def test_a_chunk_the_dynamo_optimizer_fused_into_a_split_sits_in_the_module_that_reads_it(tmp_path: Path) -> None:
    # torch.onnx's dynamo exporter fuses a chunk's Slices into one Split that carries no module scope;
    # placed at the root, shufflenet_v2's units could not be recovered as blocks (flat graph).
    torch.set_num_threads(1)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), _HalfUnit(4), _HalfUnit(4))
    x = torch.randn(1, 3, 6, 6)
    path = tmp_path / "half.onnx"
    _export(module, x, path, dynamo=True)
    lifted = lift_onnx(path)
    assert not lifted.unmapped
    assert [n.path for n in lifted.nodes if n.op == "chunk"] == ["1", "2"]
    assert [n.path for n in lifted.nodes if n.op == "part"] == ["1", "1", "2", "2"]
    model = specdsl.load(to_dsl(recover(lifted)), warn=False)
    got = NumpyModel(model, lifted.weights, "float64")(x.numpy().astype(np.float64))
    np.testing.assert_allclose(got, _onnxruntime(path, x.numpy()), rtol=1e-5, atol=1e-6)


class _LayerNorm2d(torch.nn.LayerNorm):
    """torchvision's LayerNorm2d: a LayerNorm over the channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _ChannelsLast(torch.nn.Module):
    """ConvNeXt's pointwise linear over NHWC: its output has channels-last strides."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def test_a_global_average_pool_the_dynamo_exporter_writes_as_mean_and_as_strided_is_one_pool(tmp_path: Path) -> None:
    # ConvNeXt's head: adaptive_avg_pool2d(1) of a channels-last-strided map comes out as ReduceMean
    # (keepdims) and an as_strided (Reshape(-1) -> Gather of every index in order), which no pattern took
    # (convnext_* at 64 px: 5 nodes unmapped).
    torch.set_num_threads(1)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), _ChannelsLast(8), torch.nn.AdaptiveAvgPool2d(1),
                                 _LayerNorm2d(8),
                                 torch.nn.Flatten(1), torch.nn.Linear(8, 2))
    x = torch.randn(1, 3, 4, 4)
    path = tmp_path / "head.onnx"
    _export(module, x, path, dynamo=True)
    lifted = lift_onnx(path)
    assert not lifted.unmapped, [(u.path, u.origin, u.reason) for u in lifted.unmapped]
    [pool] = [n for n in lifted.nodes if n.path == "2"]
    assert (pool.op, pool.args, pool.is_module) == ("adaptive_avgpool", {"out": 1}, True)
    assert list(lifted.weights) == list(module.state_dict())
    model = specdsl.load(to_dsl(recover(lifted)), warn=False)
    got = NumpyModel(model, lifted.weights, "float64")(x.numpy().astype(np.float64))
    np.testing.assert_allclose(got, _onnxruntime(path, x.numpy()), rtol=1e-5, atol=1e-6)


class _Scaled(torch.nn.Module):
    """ConvNeXt's layer scale: a parameter of the block itself, the same value in every block at init."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.layer_scale = torch.nn.Parameter(torch.full((c, 1, 1), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_scale * x


def test_a_parameter_the_dynamo_optimizer_shares_between_modules_keeps_each_modules_name(tmp_path: Path) -> None:
    # Equal initializers are merged into one (torchvision's convnext at init: every layer_scale 1e-6); the
    # second block's weight came back under the block's own path ('2', not '2.layer_scale') and
    # `specdsl import` refused the file.
    torch.set_num_threads(1)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), _Scaled(4), _Scaled(4))
    x = torch.randn(1, 3, 4, 4)
    path = tmp_path / "scaled.onnx"
    _export(module, x, path, dynamo=True)
    lifted = lift_onnx(path)
    assert not lifted.unmapped
    assert list(lifted.weights) == list(module.state_dict())
    model = specdsl.load(to_dsl(recover(lifted)), warn=False)
    got = NumpyModel(model, lifted.weights, "float64")(x.numpy().astype(np.float64))
    np.testing.assert_allclose(got, _onnxruntime(path, x.numpy()), rtol=1e-5, atol=1e-6)
