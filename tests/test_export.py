"""ONNX and safetensors export: the zoo runs in ONNX Runtime with to_torch's outputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from zoo_inputs import runtime_zoo  # noqa: E402

import specdsl  # noqa: E402
from specdsl import zoo  # noqa: E402
from specdsl.backends.torch.export import export_onnx  # noqa: E402
from specdsl.backends.torch.fx import example_input, to_torch  # noqa: E402
from specdsl.cli.main import main  # noqa: E402

# Small inputs keep the suite fast; the models that need their full size keep it.
SMALL = {"inception_v3": (3, 75, 75), "googlenet": (3, 64, 64), "lenet5": None, "timeseries_cnn": None,
         "fractalnet_cifar10": None, "unet": (1, 64, 64), "r3d_18": (3, 4, 32, 32),
         "video_resnet": (3, 4, 32, 32)}


def small(name: str) -> specdsl.Model:
    shape = SMALL.get(name, (3, 64, 64))
    return specdsl.load(name, input=shape) if shape else specdsl.load(name)


def run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def covering_models() -> list[str]:
    """Zoo models that between them use every op and block the zoo uses (greedy set cover).

    Exporting takes seconds per model; these few cover what the whole zoo exercises.
    SPECDSL_EXPORT_ALL=1 runs every zoo model instead."""
    if os.environ.get("SPECDSL_EXPORT_ALL"):
        return runtime_zoo()
    uses, size = {}, {}
    for name in runtime_zoo():
        try:
            graph = small(name).graph
        except specdsl.SpecError:
            continue
        uses[name] = {n.op for n in graph.nodes} | set(graph.blocks.values())
        size[name] = len(graph.nodes)
    needed, chosen = set().union(*uses.values()), []
    while needed:  # the model adding most, the smallest of those
        best = max(sorted(uses), key=lambda n: (len(uses[n] & needed), -size[n]))
        chosen.append(best)
        needed -= uses[best]
    return chosen


@pytest.mark.parametrize("name", covering_models())
def test_zoo_exports_and_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    model = small(name)
    module = to_torch(model, seed=0).eval()
    export_onnx(module, model, tmp_path / "m.onnx", batch=2)
    x = example_input(model, 2)
    with torch.no_grad():
        out = module(x)
    # One tensor, or a model's several outputs (a dict like torchvision's segmentation models, a tuple).
    expected = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, tuple) else [out]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        scale = max(1.0, float(e.abs().max()))
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-5, atol=1e-5 * scale)


def test_export_is_deterministic_and_batch_can_be_dynamic(tmp_path: Path) -> None:
    model = specdsl.load("resnet18", input=(3, 32, 32))
    module = to_torch(model, seed=0).eval()
    export_onnx(module, model, tmp_path / "a.onnx", dynamic_batch=True)
    export_onnx(module, model, tmp_path / "b.onnx", dynamic_batch=True)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    for batch in (1, 3):
        x = example_input(model, batch)
        with torch.no_grad():
            np.testing.assert_allclose(run_onnx(tmp_path / "a.onnx", x), module(x).numpy(), rtol=1e-5, atol=1e-5)


def test_cli_exports_weights_then_onnx_from_them(tmp_path: Path) -> None:
    weights = tmp_path / "lenet5.safetensors"
    assert main(["export", "lenet5", "-o", str(weights), "--seed", "3"]) == 0
    assert main(["export", "lenet5", "-o", str(tmp_path / "l.onnx"), "--weights", str(weights)]) == 0
    module = to_torch("lenet5", weights=weights).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(tmp_path / "l.onnx", x), module(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["export", "lenet5", "-o", "m.txt"], 2, "-o must end in .onnx or .safetensors"),
    (["export", "lenet5", "-o", "m.onnx", "--batch", "0"], 2, "--batch takes a positive number or `dynamic`"),
    (["export", "lenet5", "-o", "m.onnx", "--weights", "missing.pth"], 1, "cannot read checkpoint"),
])
def test_cli_export_bad_usage(argv: list[str], code: int, message: str, tmp_path: Path, monkeypatch,
                              capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_refuses_to_write_over_the_spec(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "net.onnx"
    spec.write_text(zoo.find("lenet5")[1])
    assert main(["export", str(spec), "-o", str(spec)]) == 2
    assert spec.read_text() == zoo.find("lenet5")[1]
