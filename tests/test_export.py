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
from specdsl.ops import OPS  # noqa: E402

# Small inputs keep the suite fast; the models that need their full size keep it.
SMALL = {"inception_v3": (3, 75, 75), "inception_resnet_v2": (3, 75, 75), "googlenet": (3, 64, 64), "lenet5": None,
         "timeseries_cnn": None, "fractalnet_cifar10": None, "unet": (1, 64, 64), "r3d_18": (3, 4, 32, 32),
         "video_resnet": (3, 4, 32, 32)}


def small(name: str) -> specdsl.Model:
    shape = SMALL.get(name, (3, 64, 64))
    return specdsl.load(name, input=shape, warn=False) if shape else specdsl.load(name, warn=False)  # see test_zoo


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


# Every op of the op table, in three small models (one export each: the exporter takes seconds a
# call): tests/test_op_tables.py checks that each op is named here.
EVERY_OP = {
    "2d": """model every_op_2d
input [4, 12, 12]

layers {
    conv(8, k=3, pad=1) as a -> bn -> relu -> deconv(8, k=2, stride=2) -> maxpool(2) -> avgpool(3, stride=1, pad=1)
    -> instancenorm(affine=true) -> groupnorm(2) -> channel_norm -> layer_scale -> lrn(3) -> grn -> rmsnorm
    -> simplenorm -> evonorm(groups=2) -> frn
    -> relu6 -> leaky_relu(0.1) -> elu -> hardtanh -> gelu -> silu -> hardswish -> hardsigmoid -> mish -> selu
    -> prelu -> sigmoid -> tanh -> softplus -> dropout -> dropout2d -> stochastic_depth(0.1) -> identity
    -> upsample(2) -> pad(1) -> blurpool(stride=1) -> scale(0.5) -> adaptive_avgpool(12) -> adaptive_maxpool(12)
    -> local(8, k=1) as b
    [@a, @b] -> stack(2) -> sum(2) as t
    [@t, @b] -> add as s0
    @s0 -> gap -> flatten -> linear(3) -> sigmoid as r
    [@s0, @r] -> condconv(8, k=3, pad=1, groups=2, bias=true) as s
    [@a, @s] -> mul as m
    [@a, @m] -> mean as n
    [@a, @n] -> join as j
    [@j, @a] -> crop as c
    [@c, @a] -> concat -> channel_shuffle(2) -> pixel_shuffle(2) -> pixel_unshuffle(2) -> split([8, 8]) as halves
    @halves.1 -> chunk(2) as quarters
    [@halves.0, @quarters.0] -> concat -> permute([0, 2, 3, 1]) -> grn(channels_last=true)
    -> rmsnorm(channels_last=true, affine=false) -> simplenorm(channels_last=true) -> permute([0, 3, 1, 2])
    -> layernorm -> softmax -> log_softmax -> gmp(keepdims=true) -> unsqueeze(1) -> squeeze(1) -> reshape([1, -1])
    -> reshape([-1, 1, 1]) -> gap -> flatten -> linear(5)
}
""",
    "1d": """
model every_op_1d
input [4, 16]
layers { conv(4, k=3) -> dropout1d -> maxpool(2) -> gap -> linear(3) }
""",
    "3d": """
model every_op_3d
input [2, 4, 6, 6]
layers { conv(4, k=3, pad=1) -> dropout3d -> avgpool(2) -> gap -> linear(3) }
""",
}


def _exported_outputs_match(model: specdsl.Model, path: Path) -> None:
    module = to_torch(model, seed=0).eval()
    export_onnx(module, model, path, batch=2)
    x = example_input(model, 2)
    with torch.no_grad():
        out = module(x)
    # One tensor, or a model's several outputs (a dict like torchvision's segmentation models, a tuple).
    expected = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, tuple) else [out]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        scale = max(1.0, float(e.abs().max()))
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("rank", sorted(EVERY_OP))
def test_every_op_exports_and_matches_onnxruntime(rank: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    _exported_outputs_match(_every_op_model(rank, tmp_path), tmp_path / "m.onnx")


def _every_op_model(rank: str, folder: Path) -> specdsl.Model:
    path = folder / f"every_op_{rank}.cnn"
    path.write_text(EVERY_OP[rank], encoding="utf-8")
    return specdsl.load(path)


def test_the_every_op_models_use_every_op(tmp_path: Path) -> None:
    used = {n.op for rank in EVERY_OP for n in _every_op_model(rank, tmp_path).graph.nodes}
    assert set(OPS) <= used, f"ops no export model uses (add them to EVERY_OP): {sorted(set(OPS) - used)}"


@pytest.mark.parametrize("name", covering_models())
def test_zoo_exports_and_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    _exported_outputs_match(small(name), tmp_path / "m.onnx")


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
