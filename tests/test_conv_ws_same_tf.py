"""conv's pad=same_tf (TensorFlow's SAME at any stride) and ws / gain (weight standardisation), issue 26
items 4 and 5: the figures at every input size, every backend against an oracle (timm's own modules where
timm is installed, tests/conv_oracle.py's plain-torch reading of them everywhere), the module built at one
size run at another, saved tensors against autograd, ONNX at fixed and symbolic sizes, the syntax's round
trips and the refusals."""

from __future__ import annotations

import math
import types
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

# An even kernel with pad=same is a case torch itself warns about (its padded copy); the test means it.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")

from conv_oracle import reference_conv  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import specdsl  # noqa: E402
from specdsl.backends.naming import module_path  # noqa: E402
from specdsl.backends.numpy import NumpyModel  # noqa: E402
from specdsl.backends.torch.emit import emit  # noqa: E402
from specdsl.backends.torch.safety import check as safety_check  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402

SPEC = """model m
input [3, {h}, {w}]
layers {{
    conv(8, k=3, stride=2, pad=same_tf, bias=false)
    conv(8, k=5, stride=2, pad=same_tf, groups=depthwise, ws=true, gain=true, gamma=1.7, eps=1e-5)
    conv(6, k=4, pad=same_tf, ws=true)
    conv(6, k=[3, 2], stride=[3, 2], dilation=[2, 1], pad=same_tf)
}}
"""


def spec(h: int, w: int) -> specdsl.Model:
    return specdsl.load(SPEC.format(h=h, w=w), warn=False)


def randomised(module: Any) -> Any:
    """Gains and biases away from their initial ones and zeros, so a dropped gain or bias shows."""
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if key.endswith(("gain", "bias")):
                value.uniform_(0.5, 1.5)
    return module


def oracle(model: specdsl.Model, weights: dict[str, Any]) -> Any:
    """The spec's layers as tests/conv_oracle.py's modules, built from the spec's own arguments."""
    layers = []
    shape = model.graph.input_shape
    for node, fig in model.rows()[1:]:
        args = dict(node.args)
        groups = shape[0] if args.get("groups") == "depthwise" else args.get("groups", 1)
        common = {"stride": _tuple(args.get("stride", 1)), "dilation": _tuple(args.get("dilation", 1)),
                  "groups": groups, "bias": args.get("bias", True)}
        ref = reference_conv(torch.nn.Conv2d, shape[0], args, common, _tuple(args["k"]), _tuple(args.get("pad", 0)))
        prefix = f"{module_path(node.path)}."
        mine = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        layers.append(ref.to(mine["weight"].dtype).load(mine))
        shape = fig.shape
    return torch.nn.Sequential(*layers).eval()


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


# -- the figures -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, derandomize=True)
@given(n=st.integers(1, 40), k=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 3))
def test_same_tf_gives_ceil_n_over_s_with_the_odd_pixel_after(n: int, k: int, s: int, d: int) -> None:
    model = specdsl.load(f"model m\ninput [2, {n}]\nlayers {{ conv(3, k={k}, stride={s}, dilation={d}, pad=same_tf) }}",
                         warn=False)
    node, fig = model.rows()[1]
    assert fig.shape == (3, math.ceil(n / s))
    total = max((math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0)
    assert (fig.attrs.padding[0], fig.attrs.padding_after[0]) == (total // 2, total - total // 2)
    assert model.node(node.path)[1].rf[0].pad == total // 2  # the field's padding is the one before


@pytest.mark.parametrize("h,w", [(224, 224), (231, 231), (17, 30), (1, 2)])
def test_figures_follow_the_input_size(h: int, w: int) -> None:
    model = spec(h, w)
    shapes = [fig.shape for _, fig in model.rows()[1:]]
    h2, w2 = math.ceil(h / 2), math.ceil(w / 2)
    h4, w4 = math.ceil(h2 / 2), math.ceil(w2 / 2)
    assert shapes == [(8, h2, w2), (8, h4, w4), (6, h4, w4), (6, math.ceil(h4 / 3), math.ceil(w4 / 2))]
    # weight 8·3·9; weight 8·25, bias, gain [8, 1, 1, 1]; weight 6·8·16, bias; weight 6·6·6, bias
    assert model.totals.params == 216 + (200 + 8 + 8) + (768 + 6) + (216 + 6)
    module = specdsl.to_torch(model)
    assert [(k, tuple(v.shape)) for k, v in module.state_dict().items()][1:4] == [
        ("1.weight", (8, 1, 5, 5)), ("1.bias", (8,)), ("1.gain", (8, 1, 1, 1))]


# -- PyTorch, the emitted file and NumPy against the oracle ------------------------------------


@pytest.mark.parametrize("built,run", [((224, 224), (224, 224)), ((224, 224), (231, 231)), ((31, 18), (9, 40))])
def test_to_torch_and_the_emitted_file_match_the_oracle_at_any_size(built: tuple[int, int],
                                                                    run: tuple[int, int]) -> None:
    model = spec(*built)
    module = randomised(specdsl.to_torch(model).double().eval())
    weights = module.state_dict()
    source = emit(model)
    safety_check(source)
    emitted = types.ModuleType("emitted_ws_same_tf")
    exec(compile(source, "emitted_ws_same_tf", "exec"), emitted.__dict__)
    built_file = emitted.M().double().eval()
    built_file.load_state_dict(weights)
    x = torch.randn(2, 3, *run, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        want = oracle(model, weights)(x)
        for got in (module(x), built_file(x)):
            assert got.shape == want.shape == (2, *spec(*run).rows()[-1][1].shape)
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("h,w", [(231, 231), (20, 13)])
def test_numpy_matches_torch(h: int, w: int) -> None:
    model = spec(h, w)
    module = randomised(specdsl.to_torch(model).double().eval())
    weights = {k: v.numpy() for k, v in module.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((2, 3, h, w))
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(NumpyModel(model, weights)(x), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape,layer", [
    ((2, 19), "conv(3, k=4, stride=3, pad=same_tf, ws=true, gain=true)"),
    ((2, 5, 6, 7), "conv(4, k=[3, 2, 2], stride=2, pad=same_tf, ws=true)"),
    ((4, 9, 9), "conv(4, k=4, pad=same, ws=true, gain=true, bias=false)"),
])
def test_other_ranks_and_same_match_the_oracle(shape: tuple[int, ...], layer: str) -> None:
    model = specdsl.load(f"model m\ninput {list(shape)}\nlayers {{ {layer} }}", warn=False)
    module = randomised(specdsl.to_torch(model).double().eval())
    node = model.rows()[1][0]
    args = dict(node.args)
    conv_cls = [torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d][len(shape) - 2]
    common = {"stride": _tuple(args.get("stride", 1)), "dilation": 1, "groups": 1, "bias": args.get("bias", True)}
    ref = reference_conv(conv_cls, shape[0], args, common, _tuple(args["k"]), args.get("pad", 0)).double()
    ref.load({k.split(".", 1)[1]: v for k, v in module.state_dict().items()})
    x = torch.randn(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(module(x), ref(x))


# -- timm's own modules ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [224, 231, 15])
def test_timm_modules_are_the_oracle(size: int) -> None:
    layers = pytest.importorskip("timm.layers")
    text = """model m
input [3, 8, 8]
layers {
    conv(8, k=3, stride=2, pad=same_tf, bias=false)
    conv(8, k=3, pad=1, ws=true, gain=true, gamma=1.7139588594436646, eps=1e-5)
    conv(8, k=1, ws=true, bias=false)
    conv(4, k=5, stride=2, pad=same_tf, ws=true, gain=true)
}
"""
    ours = randomised(specdsl.to_torch(specdsl.load(text, warn=False)).eval())
    theirs = torch.nn.Sequential(
        layers.Conv2dSame(3, 8, 3, stride=2, bias=False),
        layers.ScaledStdConv2d(8, 8, 3, gamma=1.7139588594436646, eps=1e-5),
        layers.StdConv2d(8, 8, 1),
        layers.ScaledStdConv2dSame(8, 4, 5, stride=2)).eval()
    theirs.load_state_dict(ours.state_dict())  # strict: the same keys, timm's (weight, bias, gain)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


# -- training memory, ONNX ---------------------------------------------------------------------


@pytest.mark.parametrize("layer", [
    "conv(8, k=3, stride=2, pad=same_tf, bias=false)", "conv(8, k=4, stride=1, pad=same_tf)",
    "conv(8, k=3, pad=1, ws=true)", "conv(8, k=3, stride=2, pad=same_tf, ws=true, gain=true, gamma=1.7)",
    "conv(8, k=4, pad=same, ws=true, gain=true, bias=false)", "conv(8, k=3, pad=1, ws=true, frozen=true)"])
def test_saved_tensors_equal_autograds(layer: str) -> None:
    from test_train_memory import measured, predicted

    model = specdsl.load(f"model m\ninput [3, 16, 15]\nlayers {{\n    relu -> {layer} -> relu\n}}\n", warn=False)
    _, total = measured(model)
    assert predicted(model).total == total


def test_onnx_at_a_fixed_and_a_symbolic_size() -> None:
    pytest.importorskip("onnxruntime")
    from specdsl.backends.numpy.weights import random_weights
    from specdsl.backends.onnx import to_onnx
    from specdsl.backends.onnx.verify import reference, run_onnx

    def spec(h: int, w: int) -> specdsl.Model:  # SAME_UPPER: no dilation (ONNX Runtime's rule)
        return specdsl.load(SPEC.format(h=h, w=w).replace(", dilation=[2, 1]", ""), warn=False)

    model = spec(48, 48)
    weights = dict(random_weights(model, 0, "float32"))
    weights["1.gain"] = np.linspace(0.5, 1.5, 8, dtype=np.float32).reshape(8, 1, 1, 1)
    fixed = to_onnx(model, weights)
    assert sorted(i.name for i in fixed.graph.initializer if i.name.startswith("1.")) == \
        ["1.bias", "1.gain", "1.weight"]  # the checkpoint's tensors, standardised in the graph
    dynamic = to_onnx(model, weights, size_probe=spec(96, 144)).SerializeToString()
    for shape in ((48, 48), (67, 81), (231, 231)):
        x = np.random.default_rng(0).standard_normal((2, 3, *shape)).astype(np.float32)
        want = reference(spec(*shape), weights, x)[0]
        close(run_onnx(dynamic, x)[0], want)
    x = np.random.default_rng(1).standard_normal((1, 3, 48, 48)).astype(np.float32)
    close(run_onnx(fixed.SerializeToString(), x)[0], reference(model, weights, x)[0])


def close(got: np.ndarray, want: np.ndarray) -> None:
    """Float32 against the float64 reference: the largest error relative to the largest value."""
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


@pytest.mark.parametrize("layer", ["conv(4, k=1, stride=2, pad=same_tf)", "conv(4, k=3, dilation=2, pad=same_tf)"])
def test_onnx_refuses_a_symbolic_size_where_same_upper_cannot_say_same_tf(layer: str) -> None:
    pytest.importorskip("onnx")
    from specdsl.backends.onnx import to_onnx

    text = f"model m\ninput [3, {{n}}, {{n}}]\nlayers {{{{ {layer} }}}}"
    with pytest.raises(SpecError, match="E505: conv cannot take a symbolic input size: pad=same_tf"):
        to_onnx(specdsl.load(text.format(n=16), warn=False), False,
                size_probe=specdsl.load(text.format(n=24), warn=False))


# -- syntax and refusals -----------------------------------------------------------------------


def test_fmt_and_convert_round_trip() -> None:
    from specdsl.api import read_data
    from specdsl.render.printer import to_dsl, to_yaml

    text = SPEC.format(h=9, w=9)
    data, _ = read_data(text, "m.cnn")
    yaml_text = to_yaml(data)
    assert "pad: same_tf" in yaml_text and "ws: true" in yaml_text and "gain: true" in yaml_text
    dsl = to_dsl(read_data(yaml_text, "m.yaml")[0])
    assert "pad=same_tf" in dsl and "ws=true, gain=true, gamma=1.7, eps=1e-05" in dsl
    assert to_dsl(read_data(dsl, "again.cnn")[0]) == dsl
    assert specdsl.load(dsl, warn=False).totals == specdsl.load(yaml_text, warn=False).totals == spec(9, 9).totals


@pytest.mark.parametrize("layer,message", [
    ("conv(8, k=3, gain=true)", "gain applies only to a conv with ws=true; received gain=true with ws=false"),
    ("conv(8, k=3, eps=1e-5)", "eps applies only to a conv with ws=true"),
    ("conv(8, k=3, ws=true, gamma=2.0)", "gamma applies only to a conv with gain=true"),
    ("conv(8, k=3, pad=same_tf, padding_mode=reflect)", "pad=same_tf pads with zeros"),
    ("conv(8, k=3, pad=1, ws=true, padding_mode=circular)", "a weight-standardised conv pads with zeros"),
    ("conv(3, k=1, groups=depthwise, ws=true)", "weight standardisation needs more than one weight"),
])
def test_refusals_are_located_e386(layer: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load(f"model m\ninput [3, 8, 8]\nlayers {{\n    {layer}\n}}\n", warn=False)
    (diag,) = info.value.diagnostics
    assert diag.code == "E386"
    assert message in diag.message
    assert diag.loc is not None and diag.loc.line == 4
