"""The ONNX backend: every zoo model and every op, run in ONNX Runtime against the NumPy reference
and to_torch with the same weights, at batches 1 and 3; the graph passes ONNX's strict shape
inference and full checker, with the spec's names, shapes and source lines in it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

sys.path.insert(0, str(Path(__file__).parent))
from zoo_inputs import SMALL, runtime_zoo  # noqa: E402

import specdsl  # noqa: E402
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
    "1d": """model forms_1d
input [3, 17]
layers {
    conv(4, k=3, stride=2, dilation=2, groups=1) -> dropout1d -> lrn(3) -> instancenorm -> adaptive_avgpool(5)
    -> channel_norm -> deconv(2, k=3, stride=2, pad=1, output_padding=1) -> gap(keepdims=true)
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
