"""The ONNX backend: every zoo model and every op, run in ONNX Runtime against the NumPy reference
and to_torch with the same weights, at batches 1 and 3; the graph passes ONNX's strict shape
inference and full checker, with the spec's names, shapes and source lines in it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

sys.path.insert(0, str(Path(__file__).parent))
from strategies import spec_text, specs  # noqa: E402
from zoo_inputs import SMALL, runtime_zoo  # noqa: E402

import specdsl  # noqa: E402
from specdsl.backends.numpy import NumpyModel  # noqa: E402
from specdsl.backends.numpy.weights import random_weights  # noqa: E402
from specdsl.backends.onnx import MAX_OPSET, MIN_OPSET, to_onnx  # noqa: E402
from specdsl.backends.onnx.verify import reference, run_onnx  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402

# Below the zoo's usual 64×64 where every layer still runs: the weights, not the pixels, cost here.
TINY = {"alexnet": (3, 64, 64), "vgg": (3, 32, 32), "squeezenet": (3, 48, 48)}


def small(name: str) -> specdsl.Model:
    shape = TINY.get(name, SMALL.get(name, (3, 32, 32)))
    try:
        return specdsl.load(name, input=shape, warn=False) if shape else specdsl.load(name, warn=False)
    except SpecError:  # too small for this model: the zoo tests' size
        fallback = SMALL.get(name, (3, 64, 64))
        return specdsl.load(name, input=fallback, warn=False) if fallback else specdsl.load(name, warn=False)


def checked(proto: onnx.ModelProto) -> None:
    """ONNX's own verdict: the full checker, and strict shape inference agreeing with ours."""
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-5) -> None:
    scale = max(1.0, float(np.abs(want).max()) if want.size else 0.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def batch(model: specdsl.Model, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *model.graph.input_shape)).astype(np.float32)


def matches_reference(model: specdsl.Model, opset: int = 18, batches: tuple[int, ...] = (1, 3)) -> bytes:
    """Export with NumPy's random weights; ONNX Runtime equals the float64 reference at each batch."""
    weights = random_weights(model, 0, "float32")
    proto = to_onnx(model, weights, opset=opset)
    checked(to_onnx(model, False, opset=opset))  # the same graph, weightless: cheap to check
    data = proto.SerializeToString()
    x = batch(model, max(batches))
    # A norm keeping no running statistics mixes the samples: then a reference per batch.
    mixes = any(n.op == "bn" and not model.analysis.figures[n.index].attrs.track_running_stats
                for n in model.graph.nodes)
    want = None if mixes else reference(model, weights, x)
    for n in batches:
        expected = reference(model, weights, x[:n]) if want is None else [w[:n] for w in want]
        for g, w in zip(run_onnx(data, x[:n]), expected, strict=True):
            assert_close(g, w)
    return data


# -- the zoo -------------------------------------------------------------------------------

# Above this many parameters (alexnet, vgg) the zoo test feeds the weights as graph inputs and runs
# the reference in float32: copying 250-550 MB into the file, ONNX Runtime and float64 three times
# over costs more than the rest of the zoo; the initializer path is the same code (the forms below).
HEAVY = 40_000_000


@pytest.mark.parametrize("name", runtime_zoo())
def test_zoo_model_matches_numpy_and_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    from specdsl.backends.torch.fx import to_torch
    from specdsl.backends.torch.modules import reset_computed_buffers

    torch.set_num_threads(1)
    model = small(name)
    weights = random_weights(model, 0, "float32")
    heavy = model.totals.params > HEAVY
    checked(to_onnx(model, False))
    data = to_onnx(model, False if heavy else weights).SerializeToString()
    x = batch(model, 3)
    got = {n: run_onnx(data, x[:n], weights if heavy else None) for n in (1, 3)}
    want = reference(model, weights, x, "float32" if heavy else "float64")
    # to_torch with the very same weights (shared, not copied: built on the meta device, then assigned).
    with torch.device("meta"):
        module = to_torch(model, seed=None)
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}, assign=True)
    reset_computed_buffers(module)  # blurpool's filter: in no weight file
    with torch.no_grad():
        out = module.eval()(torch.from_numpy(x))
    expected = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, tuple) else [out]
    for n in (1, 3):
        for g, w, e in zip(got[n], want, expected, strict=True):
            assert_close(g, w[:n])
            assert_close(g, e[:n].numpy())


# -- every op, in the forms ONNX spells differently from PyTorch ---------------------------

FORMS = {
    "resample": """model forms_resample
input [2, 9, 7]
layers {
    conv(4, k=3, pad=1, padding_mode=reflect) -> conv(4, k=3, pad=[1, 2], padding_mode=replicate)
    -> upsample(size=[12, 11], mode=bicubic) -> upsample(2, mode=bilinear, align_corners=true)
    -> upsample(scale=1.5, mode="nearest-exact") -> upsample(size=[20, 23], mode=nearest)
    -> avgpool(3, stride=2, ceil_mode=true, pad=1) -> maxpool(2, ceil_mode=true)
    -> adaptive_maxpool([5, 3]) -> adaptive_avgpool([3, 2]) -> lrn(4) -> gelu(approximate=tanh)
}
""",
    "norms": """model forms_norms
input [4, 6, 5]
layers {
    bn(affine=false, track_running_stats=false) -> softplus(beta=2, threshold=3)
    -> instancenorm(track_running_stats=true) -> prelu(num_parameters=4) -> groupnorm(2, affine=false)
    -> layernorm([6, 5], elementwise_affine=false) -> pad([1, 2, 0, 1], mode=reflect) -> pad(1, mode=replicate)
    -> avgpool(3, stride=2, ceil_mode=true, count_include_pad=false) -> local(3, k=2, stride=2, pad=1)
    -> flatten(start_dim=2) -> linear(4) -> gmp -> mish -> gelu
}
""",
    "fixed": """model forms_fixed
input [4, 9, 8]
layers {
    blurpool -> blurpool(filt=5, stride=1, pad_mode=constant) -> blurpool(filt=2, pad_mode=replicate) -> scale(-0.5)
    -> unsqueeze(-1) -> squeeze(4) -> unsqueeze(1) -> squeeze(-4) -> reshape([2, -1]) -> conv(3, k=3, pad=1)
    -> view([-1]) -> linear(4)
    @input -> gap(keepdims=true) -> reshape([1, -1]) -> conv(1, k=3, pad=1, bias=false) -> sigmoid
    -> reshape([-1, 1, 1]) as gate
    [@input, @gate] -> mul -> blurpool(filt=4, stride=2) -> gap
}
""",
    # EvoNorm-S0 and filter response norm (timm's evos and frn networks), 1d and 2d, with and without their gates
    # (not evonorm's s0 without its gate: a bare affine, which the ONNX import cannot tell from others).
    "evo": """model forms_evo
input [6, 5, 4]
layers {
    evonorm(groups=2) -> evonorm(groups=3, eps=0.001, apply_act=false, variant=s0a) -> frn
    -> frn(eps=0.001, apply_act=false) -> reshape([6, 20])
    -> evonorm(groups=1) -> frn
}
""",
    # ConvNeXt V2's global response norm and the RMS / simple norms, channels first and channels last.
    # And timm's flat layer scale (gamma [C], viewed (1, C, 1, 1)).
    "global_norms": """model forms_global_norms
input [6, 5, 4]
layers {
    grn -> rmsnorm -> simplenorm(eps=0.001, affine=false) -> rmsnorm(affine=false)
    -> permute([0, 2, 3, 1]) -> grn(channels_last=true) -> rmsnorm(channels_last=true)
    -> simplenorm(channels_last=true) -> permute([0, 3, 1, 2]) -> layer_scale(flat=true, init=0.5)
}
""",
    # Split attention (ResNeSt) and selective kernels (SKNet): a new axis, sums over it, 5-D tensors.
    "attention": """model forms_attention
input [4, 5, 6]
layers {
    conv(8, k=3, pad=1, groups=2) -> reshape([2, 4, 5, 6]) as x
    sum(1) -> sum([2, 3], keepdims=true) -> conv(8, k=1) -> reshape([1, 2, -1]) -> permute([0, 2, 1, 3])
    -> softmax(1) -> reshape([2, 4, 1, 1]) as w
    [@x, @w] -> mul -> sum(-4) as o
    @o -> adaptive_avgpool(1) -> flatten -> linear(3) -> sigmoid as r
    [@o, @r] -> condconv(4, k=3, stride=2, pad=1) -> bn as c
    [@c, @r] -> condconv(4, k=[3, 1], pad=[2, 0], dilation=2, groups=2, bias=true) as c2
    @input -> conv(4, k=3, stride=2, pad=2, dilation=2) as p1
    [@c2, @p1] -> stack(1) -> sum(1) -> stack(-1) -> sum([4], keepdims=true) -> stack(2) -> sum(2) -> gap
}
""",
    "1d": """model forms_1d
input [3, 17]
layers {
    conv(4, k=3, stride=2, dilation=2, groups=1) -> dropout1d -> lrn(3) -> instancenorm -> adaptive_avgpool(5)
    -> channel_norm -> deconv(2, k=3, stride=2, pad=1, output_padding=1) -> deconv(2, k=2, dilation=3, output_padding=2)
    -> upsample(size=1, mode=linear)
    -> gap(keepdims=true)
    -> flatten -> bn -> linear(3)
}
""",
    "merges": """model forms_merges
input [4, 6, 6]
layers {
    conv(8, k=3, pad=1) as a -> relu6 -> leaky_relu(0.1) -> elu -> hardtanh -> silu -> hardswish as h
    -> hardsigmoid -> selu -> sigmoid -> tanh -> dropout -> dropout2d -> stochastic_depth(0.1) -> identity
    -> layer_scale -> gelu -> local(8, k=1) as b
    [@a, @b, @h] -> add as s
    [@a, @s, @b] -> mul as m
    [@a, @m, @s] -> mean as n
    [@a, @n] -> join as j
    [@j, @a] -> crop as c
    [@c, @a] -> concat -> channel_shuffle(2) -> pixel_shuffle(2) -> pixel_unshuffle(2) -> split([8, 8]) as halves
    @halves.1 -> chunk(2) as quarters
    [@halves.0, @quarters.0] -> concat -> permute([0, 2, 3, 1]) -> relu -> permute([0, 3, 1, 2])
    -> softmax -> log_softmax -> deconv(4, k=2, stride=2) -> maxpool(2) -> gap -> linear(5)
}
""",
    # TensorFlow's SAME (asymmetric pads from the input's size) and weight standardisation (in the graph).
    "conv_tf_ws": """model forms_conv_tf_ws
input [3, 11, 8]
layers {
    conv(4, k=3, stride=2, pad=same_tf, bias=false) -> conv(4, k=4, pad=same_tf, ws=true)
    -> conv(6, k=[5, 2], stride=[2, 3], dilation=[1, 2], pad=same_tf, ws=true, gain=true, gamma=1.7, eps=1e-5)
    -> conv(6, k=3, stride=2, pad=1, groups=2, ws=true, gain=true) -> gap -> linear(3)
}
""",
    "3d": """model forms_3d
input [2, 4, 6, 6]
layers {
    conv(4, k=3, pad=1, padding_mode=replicate) -> dropout3d -> avgpool(2) -> upsample(2, mode=trilinear)
    -> groupnorm(2) -> adaptive_maxpool(2) -> gap -> linear(3)
}
""",
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("opset", sorted({MIN_OPSET, 18, 20, MAX_OPSET}))
def test_op_forms_match_the_reference_at_every_opset(form: str, opset: int) -> None:
    matches_reference(specdsl.load(FORMS[form], warn=False), opset=opset)


def test_the_forms_use_every_op() -> None:
    from specdsl.ops import OPS

    used = {n.op for text in FORMS.values() for n in specdsl.load(text, warn=False).graph.nodes}
    assert set(OPS) <= used, f"ops no form uses (add them to FORMS): {sorted(set(OPS) - used)}"


CIRCULAR = """model circular
input [2, 5, 5]
layers { conv(3, k=3, pad=1, padding_mode=circular) -> pad([2, 1, 0, 1], mode=circular) -> gap }
"""


@pytest.mark.parametrize("opset", [17, 18, 19])
def test_an_op_needing_a_newer_opset_is_refused_naming_both(opset: int) -> None:
    model = specdsl.load(CIRCULAR, warn=False)
    if opset >= 19:
        matches_reference(model, opset=opset)
        return
    with pytest.raises(SpecError) as caught:
        to_onnx(model, opset=opset)
    (diag,) = caught.value.diagnostics
    assert diag.code == "E505" and diag.loc is not None and diag.loc.line == 3
    assert "conv needs ONNX Pad with mode 'wrap', which opset 19 introduced" in diag.message
    assert f"received --opset {opset}" in diag.message and "--opset 19" in (diag.hint or "")


# -- random specs --------------------------------------------------------------------------

RANDOM = settings(max_examples=300, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])


@RANDOM
@given(data=specs())
def test_random_specs_match_the_reference_node_by_node(data: dict[str, Any]) -> None:
    """Every node of a random spec (every op; dropout and stochastic depth in eval form) in ONNX
    Runtime equals the float64 reference: globally, or, where an ill-conditioned op (a norm over
    a few values) amplifies float32 rounding, locally, the node fed ONNX Runtime's own inputs."""
    text = spec_text(data)
    note(text)
    try:
        model = specdsl.load(text, warn=False)
    except SpecError:
        assume(False)
        return
    weights = random_weights(model, 0, "float32")
    proto = to_onnx(model, weights, capture=True, opset=MAX_OPSET)  # circular padding needs opset 19
    checked(proto)
    x = batch(model, 2, seed=1)
    got = run_onnx(proto.SerializeToString(), x)[len(reference_outputs(model)):]
    net = NumpyModel(model, weights, "float64", index_dtype="float32")
    want = net(x.astype(np.float64), capture=True)
    values = {0: x, **{n.index: g for n, g in zip(model.graph.nodes[1:], got, strict=True)}}
    for node in model.graph.nodes[1:]:
        g, w = values[node.index], want[node.index]
        assert g.shape == w.shape, f"{node.path} ({node.op}): onnx {g.shape}, numpy {w.shape}"
        if np.allclose(g, w, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(w).max()))):
            continue
        local = net.run_node(node.index, [values[i].astype(np.float64) for i in node.inputs])
        scale = max(1.0, float(np.abs(local).max()))
        assert np.allclose(g, local, rtol=1e-4, atol=1e-4 * scale), (
            f"{node.path} ({node.op}): global max error {float(np.abs(g - w).max()):.3g}, "
            f"local {float(np.abs(g - local).max()):.3g}")


def reference_outputs(model: specdsl.Model) -> tuple[int, ...]:
    return model.graph.output_nodes


# -- the graph and the command -------------------------------------------------------------


def test_names_shapes_and_lines_come_from_the_spec() -> None:
    model = specdsl.load("resnet18", input=(3, 32, 32), warn=False)
    proto = to_onnx(model, False)
    nodes = {n.name: n for n in proto.graph.node}
    conv = nodes["layer1.0.conv1"]
    assert conv.op_type == "Conv" and conv.input[1] == "layer1.0.conv1.weight"
    assert conv.doc_string.startswith("<zoo>/resnet") and ": layer1[0].conv1 (conv)" in conv.doc_string
    assert [i.name for i in proto.graph.input][:2] == ["input", "conv1.weight"]
    shaped = {v.name for v in proto.graph.value_info} | {o.name for o in proto.graph.output}
    assert all(out in shaped for n in proto.graph.node for out in n.output)
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.value_info}
    assert dims["layer1.0.conv1"] == ["N", 64, 8, 8]
    # The same weights as the NumPy backend's, under its keys; the same bytes every time.
    weights = random_weights(model, 3, "float32")
    proto = to_onnx(model, seed=3)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    shared = set(inits) & set(weights)  # the rest are the lowerings' constants, named node/what
    assert len(shared) == 102 and all("/" in k for k in set(inits) - shared)
    assert all(np.array_equal(inits[k], weights[k]) for k in shared)
    assert to_onnx(model, seed=3).SerializeToString() == proto.SerializeToString()


def test_the_file_streamed_from_the_arrays_is_the_message(tmp_path: Path) -> None:
    from specdsl.backends.onnx import save_onnx

    model = specdsl.load("squeezenet", input=(3, 48, 48), warn=False)
    save_onnx(model, tmp_path / "m.onnx", seed=3, batch=2)
    assert onnx.load(str(tmp_path / "m.onnx")) == to_onnx(model, seed=3, batch=2)


@pytest.mark.parametrize("name", ["resnet18", "squeezenet"])  # squeezenet: ceil_mode pools
def test_dynamic_size_runs_at_other_sizes(name: str) -> None:
    model = specdsl.load(name, input=(3, 48, 48), warn=False)
    weights = random_weights(model, 0, "float32")
    proto = to_onnx(model, weights, size_probe=specdsl.load(name, input=(3, 96, 144), warn=False))
    checked(proto)
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == ["N", 3, "H", "W"]
    data = proto.SerializeToString()
    for shape in ((3, 48, 48), (3, 67, 81)):
        x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
        want = reference(specdsl.load(name, input=shape, warn=False), weights, x)
        assert_close(run_onnx(data, x)[0], want[0])


def test_dynamic_size_is_refused_where_the_spec_fixes_a_size() -> None:
    lenet = specdsl.load("lenet5", warn=False)
    with pytest.raises(SpecError, match="E505: linear has weights whose shape depends on the input size"):
        to_onnx(lenet, False, size_probe=specdsl.load("lenet5", input=(1, 64, 96), warn=False))


def test_weights_from_a_safetensors_file_are_the_initializers(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from specdsl.cli.main import main

    model = specdsl.load("lenet5", warn=False)
    weights = random_weights(model, 7, "float32")
    save_file({k: np.array(v, order="C") for k, v in weights.items()}, str(tmp_path / "w.safetensors"))
    out = tmp_path / "l.onnx"
    assert main(["export", "lenet5", "-o", str(out), "--weights", str(tmp_path / "w.safetensors")]) == 0
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer}
    assert len(inits) == 10 and all(np.array_equal(v, weights[k]) for k, v in inits.items())


def test_cli_exports_a_dynamic_batch_and_verifies_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from specdsl.cli.main import main

    out = tmp_path / "m.onnx"
    assert main(["export", "lenet5", "-o", str(out), "--verify", "--opset", str(MAX_OPSET)]) == 0
    captured = capsys.readouterr()
    assert f"ONNX opset {MAX_OPSET}, batch dynamic" in captured.err
    assert "output [2, 10]: max |error|" in captured.out and captured.out.rstrip().endswith("ok")
    for n in (1, 5):
        assert run_onnx(str(out), np.zeros((n, 1, 32, 32), np.float32))[0].shape == (n, 10)
    assert main(["export", "lenet5", "-o", str(out), "--batch", "1", "--no-weights", "--verify"]) == 0
    proto = onnx.load(str(out))
    assert not proto.graph.initializer and proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    assert "parameters as inputs" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--opset", "16"], f"--opset must be between {MIN_OPSET} and {MAX_OPSET}"),
    (["--opset", str(MAX_OPSET + 1)], f"--opset must be between {MIN_OPSET} and {MAX_OPSET}"),
    (["--no-weights", "--weights", "w.safetensors"], "--no-weights and --weights exclude each other"),
    (["--via", "torch", "--dynamic-size"], "--dynamic-size needs the ONNX backend"),
])
def test_cli_usage_errors(argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from specdsl.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["export", "lenet5", "-o", "m.onnx", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_cli_refuses_a_dynamic_size_the_spec_does_not_allow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from specdsl.cli.main import main

    assert main(["export", "lenet5", "-o", str(tmp_path / "m.onnx"), "--dynamic-size"]) == 1
    assert "E505" in capsys.readouterr().err
    spec = tmp_path / "fixed.cnn"  # loads at 8×8 only: layernorm's shape is written out
    spec.write_text("model fixed\ninput [3, 8, 8]\nlayers { conv(4, k=3, pad=1) -> layernorm([4, 8, 8]) -> gap }\n")
    assert main(["export", str(spec), "-o", str(tmp_path / "m.onnx"), "--dynamic-size"]) == 1
    assert "E505: --dynamic-size needs a spec that takes other input sizes; at input [3, 16, 24]" in \
        capsys.readouterr().err


def test_exporting_imports_neither_torch_nor_onnxscript(tmp_path: Path) -> None:
    import subprocess

    code = ("import sys; from specdsl.cli.main import main; "
            f"assert main(['export', 'squeezenet', '-o', {str(tmp_path / 'm.onnx')!r}]) == 0; "
            "assert not {'torch', 'onnxscript'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_a_float16_model_exports_in_float16_and_verifies(tmp_path: Path) -> None:
    from specdsl.backends.onnx import save_onnx
    from specdsl.backends.onnx.verify import verify

    text = ("model half\ninput [3, 16, 16]\ndtype float16\n"
            "layers { conv(4, k=3) -> bn -> relu -> maxpool(2) -> gelu -> gap -> linear(3) }\n")
    model = specdsl.load(text, warn=False)
    save_onnx(model, tmp_path / "h.onnx")
    proto = onnx.load(str(tmp_path / "h.onnx"))
    checked(proto)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    (error,) = verify(tmp_path / "h.onnx", model, random_weights(model, 0, "float16"))
    assert error.ok and error.tolerance == 1e-2
