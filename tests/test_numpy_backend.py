"""The NumPy reference backend: per-op tests against torch.nn.functional, its
mechanics (BN folding, chunking, in-place reuse, weights files), and
differential properties on random specs against the PyTorch lowering.

Random specs come from ``tests/strategies.py``. For each one:

- the static shape of every node equals the NumPy shape and the PyTorch shape;
- PyTorch float32 (TF32 off) is within rtol 1e-5 and atol 1e-5·max(1, max|ref|)
  of NumPy float64 at every node, and PyTorch float64 within 1e-10 (same form);
- a spec the checker rejects never reaches a backend.

A node may also pass *locally*: NumPy fed PyTorch's own inputs for that node
agrees with PyTorch's output, the tolerance of a normalisation widened by its
amplification max|x|·|γ|/√(σ²+ε). Normalising nearly constant data turns input
rounding into output (a data-dependent ill-conditioning, e.g. layernorm after a
double softmax); the local check keeps such examples from failing while a
wrong op still shows an O(1) local error. The generator already avoids the
degenerate cases it can see (groups of fewer than four values).

CI runs 500 random specs (plus 100 in training mode). A long run:

    SPECDSL_LONG=1 .venv/bin/python -m pytest tests/test_numpy_backend.py -k random   # 10,000 specs
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, assume, event, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import specdsl  # noqa: E402
from specdsl.backends import numpy as nb  # noqa: E402
from specdsl.backends.naming import module_path  # noqa: E402
from specdsl.backends.torch.fx import capture  # noqa: E402
from specdsl.cli.diff import torch_module  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402
from specdsl.ops import OPS  # noqa: E402
from specdsl.ops.registry import MissingEntry  # noqa: E402
from specdsl.ops.rule import Trait  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from conftest import spec_text as spec  # noqa: E402
from conv_oracle import reference_conv  # noqa: E402
from strategies import propose, spec_text, specs  # noqa: E402

LONG = os.environ.get("SPECDSL_LONG", "") not in ("", "0")
RANDOM = settings(max_examples=10_000 if LONG else 500, deadline=None, derandomize=not LONG,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
TRAIN = settings(RANDOM, max_examples=1_000 if LONG else 100)
OPS_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# The specs here are run for their numbers (random layers, misaligned merges on purpose); their
# warnings are the checker's tests' business, not this output's.
pytestmark = [pytest.mark.usefixtures("torch_one_thread"), pytest.mark.filterwarnings("ignore::specdsl.SpecWarning")]


def rand(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def close(a: Any, b: Any, tol: float = 1e-12) -> None:
    a, b = (v.detach().numpy() if isinstance(v, torch.Tensor) else v for v in (a, b))
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(np.abs(b).max()) if b.size else 0.0)
    err = float(np.abs(a - b).max()) if a.size else 0.0
    assert err <= tol * scale, f"max abs error {err:.3g} (scale {scale:.3g})"


def one_layer(layer: Any, input: tuple[int, ...], batch: int = 2, **call: Any) -> tuple[Any, dict[str, Any],
                                                                                         np.ndarray, np.ndarray]:
    """(attrs, torch weights of the layer, x, NumPy output) for a one-layer spec in float64."""
    model = specdsl.load(spec(layer, input=input))
    net = nb.to_numpy(model)
    x = rand((batch, *input))
    y = net(x, **call)
    prefix = module_path(model.graph.nodes[1].path) + "."
    weights = {k[len(prefix):]: torch.from_numpy(np.asarray(v)) for k, v in net.weights.items()
               if k.startswith(prefix)}
    return model.analysis.figures[1].attrs, weights, x, y


def t(x: np.ndarray) -> Any:
    return torch.from_numpy(x)


# ------------------------------------------------------------------------ conv / deconv

ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
ADAPTIVE_MAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def nn_layer(layer: Any, in_shape: tuple[int, ...], weights: dict[str, Any]) -> Any:
    """The torch.nn layer a conv / deconv / pool spec stands for, built from the spec's own arguments
    (not specdsl's resolved attributes), in float64 with ``weights`` loaded."""
    nn = torch.nn
    op, args = next(iter(layer.items()))
    rank = len(in_shape) - 1
    if op in ("conv", "deconv"):
        groups = args.get("groups", 1)
        groups = in_shape[0] if groups == "depthwise" else groups
        common = {"stride": _tuple(args.get("stride", 1)), "dilation": _tuple(args.get("dilation", 1)),
                  "groups": groups, "bias": args.get("bias", True)}
        if op == "conv" and (args.get("ws") or args.get("pad") == "same_tf"):  # timm's StdConv2d, Conv2dSame
            ref = reference_conv([nn.Conv1d, nn.Conv2d, nn.Conv3d][rank - 1], in_shape[0], args, common,
                                 _tuple(args["k"]), _tuple(args.get("pad", 0)))
            return ref.double().load(weights)
        if op == "conv":
            module = [nn.Conv1d, nn.Conv2d, nn.Conv3d][rank - 1](
                in_shape[0], args["out"], _tuple(args["k"]), padding=_tuple(args.get("pad", 0)),
                padding_mode=args.get("padding_mode", "zeros"), **common)
        else:
            module = [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d][rank - 1](
                in_shape[0], args["out"], _tuple(args["k"]), padding=_tuple(args.get("pad", 0)),
                output_padding=_tuple(args.get("output_padding", 0)), **common)
    elif op == "maxpool":
        module = [nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d][rank - 1](
            _tuple(args["k"]), _tuple(args.get("stride")), _tuple(args.get("pad", 0)), _tuple(args.get("dilation", 1)),
            ceil_mode=args.get("ceil_mode", False))
    elif op == "avgpool":
        module = [nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d][rank - 1](
            _tuple(args["k"]), _tuple(args.get("stride")), _tuple(args.get("pad", 0)),
            ceil_mode=args.get("ceil_mode", False), count_include_pad=args.get("count_include_pad", True))
    else:
        raise AssertionError(op)
    module = module.double()
    module.load_state_dict(weights)
    return module


@pytest.mark.parametrize("layer,input", [
    ({"conv": {"out": 4, "k": 3}}, (3, 9)),
    ({"conv": {"out": 4, "k": 3, "stride": 2, "pad": 1}}, (3, 9, 8)),
    ({"conv": {"out": 4, "k": [3, 1, 2], "stride": [1, 2, 1], "pad": [1, 0, 1]}}, (2, 5, 6, 4)),
    ({"conv": {"out": 6, "k": 4, "pad": "same", "dilation": 2}}, (3, 11)),
    ({"conv": {"out": 6, "k": [2, 4], "pad": "same"}}, (2, 7, 6)),
    ({"conv": {"out": 4, "k": 2, "pad": "same"}}, (2, 4, 5, 3)),
    ({"conv": {"out": 6, "k": 3, "groups": 3, "bias": False, "pad": "valid"}}, (3, 8, 8)),
    ({"conv": {"out": 4, "k": 3, "groups": "depthwise", "pad": 1}}, (4, 7, 7)),
    ({"conv": {"out": 8, "k": 1}}, (4, 7, 7)),
    ({"conv": {"out": 8, "k": 1, "stride": [2, 3]}}, (4, 7, 7)),
    ({"conv": {"out": 4, "k": 3, "pad": 2, "padding_mode": "reflect"}}, (2, 6, 5)),
    ({"conv": {"out": 4, "k": 3, "pad": 2, "padding_mode": "replicate", "stride": 2}}, (2, 6)),
    ({"conv": {"out": 4, "k": 3, "pad": 3, "padding_mode": "circular"}}, (2, 3, 5)),
    ({"conv": {"out": 2, "k": 3, "pad": "same", "padding_mode": "circular", "dilation": 2}}, (2, 4, 5, 6)),
    ({"conv": {"out": 2, "k": 4, "pad": "same", "padding_mode": "reflect"}}, (2, 6, 5)),
])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")  # torch's, on purpose
def test_conv_matches_torch(layer: Any, input: tuple[int, ...]) -> None:
    _, w, x, y = one_layer(layer, input)
    close(y, nn_layer(layer, input, w)(t(x)))


@OPS_SETTINGS
@given(data=st.data(), rank=st.integers(1, 3))
def test_conv_and_deconv_random_args_match_torch(data: st.DataObject, rank: int) -> None:
    shape = (data.draw(st.integers(1, 4)), *(data.draw(st.integers(2, 7)) for _ in range(rank)))
    op = data.draw(st.sampled_from(["conv", "deconv"]))
    args = propose(data.draw, op, shape)
    try:
        _, w, x, y = one_layer({op: args}, shape)
    except SpecError:
        assume(False)
    close(y, nn_layer({op: args}, shape, w)(t(x)))


@pytest.mark.parametrize("layer,input", [
    ({"deconv": {"out": 4, "k": 2, "stride": 2}}, (3, 5, 5)),
    ({"deconv": {"out": 4, "k": 3, "stride": 2, "pad": 1, "output_padding": 1}}, (3, 6)),
    ({"deconv": {"out": 6, "k": [3, 2, 4], "stride": [1, 2, 3], "pad": [1, 0, 1], "groups": 3}}, (3, 3, 4, 2)),
    ({"deconv": {"out": 2, "k": 3, "dilation": 2, "output_padding": 1, "bias": False}}, (2, 4, 4)),
    ({"deconv": {"out": 2, "k": 5, "stride": 3, "pad": 4, "output_padding": 2}}, (1, 5)),
])
def test_deconv_matches_torch(layer: Any, input: tuple[int, ...]) -> None:
    _, w, x, y = one_layer(layer, input)
    close(y, nn_layer(layer, input, w)(t(x)))


# ------------------------------------------------------------------------ pooling


@OPS_SETTINGS
@given(data=st.data(), rank=st.integers(1, 3), op=st.sampled_from(["maxpool", "avgpool"]))
def test_pooling_random_args_match_torch(data: st.DataObject, rank: int, op: str) -> None:
    shape = (2, *(data.draw(st.integers(1, 8)) for _ in range(rank)))
    args = propose(data.draw, op, shape)
    try:
        _, w, x, y = one_layer({op: args}, shape)
    except SpecError:
        assume(False)
    close(y, nn_layer({op: args}, shape, w)(t(x)))


@pytest.mark.parametrize("layer,input", [
    ({"maxpool": {"k": 3, "stride": 2, "pad": 1, "ceil_mode": True}}, (2, 8, 9)),
    ({"maxpool": {"k": 2, "dilation": 2, "stride": 1, "pad": 1}}, (2, 5)),
    ({"maxpool": {"k": 3, "stride": 2, "ceil_mode": True}}, (1, 4, 6, 5)),
    ({"avgpool": {"k": 3, "stride": 2, "pad": 1, "ceil_mode": True, "count_include_pad": False}}, (2, 8, 9)),
    ({"avgpool": {"k": 3, "stride": 2, "pad": 1, "ceil_mode": True}}, (2, 6, 7)),
    ({"avgpool": {"k": [2, 3, 2], "stride": [1, 2, 2], "pad": [1, 1, 0], "ceil_mode": True}}, (1, 4, 5, 4)),
])
def test_pooling_matches_torch(layer: Any, input: tuple[int, ...]) -> None:
    _, w, x, y = one_layer(layer, input)
    close(y, nn_layer(layer, input, w)(t(x)))


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pools(rank: int, keepdims: bool) -> None:
    shape = (3, *(4,) * rank)
    dims = tuple(range(2, 2 + rank))
    _, _, x, y = one_layer({"gap": {"keepdims": keepdims}}, shape)
    close(y, t(x).mean(dim=dims, keepdim=keepdims))
    _, _, x, y = one_layer({"gmp": {"keepdims": keepdims}}, shape)
    close(y, t(x).amax(dim=dims, keepdim=keepdims))


@OPS_SETTINGS
@given(rank=st.integers(1, 3), data=st.data())
def test_adaptive_pools_match_torch(rank: int, data: st.DataObject) -> None:
    sides = [data.draw(st.integers(1, 9)) for _ in range(rank)]
    out = [data.draw(st.integers(1, 11)) for _ in range(rank)]
    _, _, x, y = one_layer({"adaptive_avgpool": {"out": out}}, (2, *sides))
    close(y, ADAPTIVE_AVG[rank](t(x), out))
    _, _, x, y = one_layer({"adaptive_maxpool": {"out": out}}, (2, *sides))
    close(y, ADAPTIVE_MAX[rank](t(x), out))


# ------------------------------------------------------------------------ upsampling

SCALES = [0.3, 0.5, 0.7, 1.0, 1.1, 1.25, 1.3, 1.5, 1.7, 2.0, 2.2, 2.5, 3.0, 3.3, 1 / 3, 2 / 3, 4.1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,align_corners", [("nearest", None), ("nearest-exact", None), ("linear", False),
                                                ("linear", True), ("bicubic", False), ("bicubic", True)])
def test_upsample_index_arithmetic_matches_torch(dtype: str, kind: str, align_corners: bool | None) -> None:
    """Every size 1..16 with many scale factors and output sizes, in PyTorch's own dtype."""
    torch_mode = kind
    td = getattr(torch, dtype)
    for n in range(1, 17):
        x = np.random.default_rng(n).standard_normal(n).astype(dtype)
        x4 = x.reshape(1, 1, 1, n) if kind == "bicubic" else x.reshape(1, 1, n)
        cases = [(None, s) for s in SCALES if math.floor(n * s) >= 1] + [(o, None) for o in range(1, 2 * n + 3)]
        for size, scale in cases:
            out = size if size is not None else math.floor(n * scale)
            kw: dict[str, Any] = {"size": (1, size) if kind == "bicubic" else size} if size is not None else \
                {"scale_factor": (1.0, scale) if kind == "bicubic" else scale}
            ref = F.interpolate(torch.from_numpy(x4).to(td), mode=torch_mode, align_corners=align_corners, **kw)
            got = nb.upsample_nd(x4, (1, out) if kind == "bicubic" else (out,),
                                 None if scale is None else ((1.0, scale) if kind == "bicubic" else (scale,)),
                                 torch_mode, align_corners)
            close(got, ref.numpy(), 1e-12 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("layer,input", [
    ({"upsample": {"scale": 2.0}}, (2, 5, 4)),
    ({"upsample": {"scale": [1.5, 2.5], "mode": "bilinear"}}, (2, 5, 4)),
    ({"upsample": {"size": [7, 3], "mode": "bilinear", "align_corners": True}}, (2, 5, 4)),
    ({"upsample": {"size": [9, 2], "mode": "bicubic"}}, (1, 5, 4)),
    ({"upsample": {"scale": 1.7, "mode": "bicubic", "align_corners": True}}, (1, 5, 4)),
    ({"upsample": {"scale": 1.3, "mode": "trilinear"}}, (1, 3, 4, 5)),
    ({"upsample": {"size": [2, 5, 3], "mode": "nearest-exact"}}, (1, 3, 4, 5)),
    ({"upsample": {"scale": 0.5, "mode": "linear"}}, (2, 9)),
])
def test_upsample_layers_match_torch(layer: Any, input: tuple[int, ...]) -> None:
    _, _, x, y = one_layer(layer, input)
    args = layer["upsample"]
    kw = {"scale_factor": _tuple(args["scale"])} if "scale" in args else {"size": _tuple(args["size"])}
    up = torch.nn.Upsample(mode=args.get("mode", "nearest"), align_corners=args.get("align_corners"), **kw)
    close(y, up(t(x)))


# ------------------------------------------------------------------------ normalisation


@pytest.mark.parametrize("input", [(5,), (3, 6), (3, 4, 5), (2, 3, 4, 3)])
@pytest.mark.parametrize("args", [None, {"affine": False}, {"track_running_stats": False, "eps": 1e-3}])
@pytest.mark.parametrize("train", [False, True])
def test_batch_norm(input: tuple[int, ...], args: Any, train: bool) -> None:
    a, w, x, y = one_layer({"bn": args} if args else "bn", input, batch=3, train_bn=train)
    use_batch = train or not a.track_running_stats
    close(y, F.batch_norm(t(x), w.get("running_mean"), w.get("running_var"), w.get("weight"), w.get("bias"),
                          use_batch, 0.1, a.eps))


def test_batch_statistics_of_one_value_are_refused_as_in_torch() -> None:
    net = nb.to_numpy(spec({"bn": {"track_running_stats": False}}, input=(8,)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        net(np.ones((1, 8)))
    assert net(np.ones((2, 8))).shape == (2, 8)


@pytest.mark.parametrize("args", [None, {"affine": True}, {"affine": True, "track_running_stats": True}])
@pytest.mark.parametrize("input", [(3, 6), (3, 4, 5), (2, 3, 4, 3)])
@pytest.mark.parametrize("train", [False, True])
def test_instance_norm(args: Any, input: tuple[int, ...], train: bool) -> None:
    a, w, x, y = one_layer({"instancenorm": args} if args else "instancenorm", input, train_bn=train)
    use_input_stats = train or not a.track_running_stats
    close(y, F.instance_norm(t(x), w.get("running_mean"), w.get("running_var"), w.get("weight"), w.get("bias"),
                             use_input_stats, 0.1, a.eps))


@pytest.mark.parametrize("args,input", [
    (None, (3, 4, 5)), ({"shape": [5]}, (3, 4, 5)), ({"shape": [4, 5], "bias": False}, (3, 4, 5)),
    ({"elementwise_affine": False, "eps": 1e-3}, (6,)),
])
def test_layer_norm(args: Any, input: tuple[int, ...]) -> None:
    a, w, x, y = one_layer({"layernorm": args} if args else "layernorm", input)
    close(y, F.layer_norm(t(x), a.normalized_shape, w.get("weight"), w.get("bias"), a.eps))


@pytest.mark.parametrize("groups,affine,input", [(1, True, (6, 4)), (3, True, (6, 3, 3)), (6, False, (6, 2, 2, 3)),
                                                 (2, True, (4,))])
def test_group_norm(groups: int, affine: bool, input: tuple[int, ...]) -> None:
    a, w, x, y = one_layer({"groupnorm": {"groups": groups, "affine": affine}}, input)
    close(y, F.group_norm(t(x), groups, w.get("weight"), w.get("bias"), a.eps))


@pytest.mark.parametrize("size,alpha,beta,k", [(1, 1e-4, 0.75, 1.0), (2, 0.5, 0.75, 2.0), (5, 0.1, 1.0, 1.0),
                                               (4, 1.0, 0.5, 0.5)])
@pytest.mark.parametrize("input", [(6, 5), (7, 3, 4), (5, 2, 3, 2)])
def test_local_response_norm(size: int, alpha: float, beta: float, k: float, input: tuple[int, ...]) -> None:
    _, _, x, y = one_layer({"lrn": {"size": size, "alpha": alpha, "beta": beta, "k": k}}, input)
    close(y, F.local_response_norm(t(x), size, alpha, beta, k))


# ------------------------------------------------------------------------ activations and shapes

ACTS = [
    ("relu", lambda x: F.relu(x)),
    ("relu6", lambda x: F.relu6(x)),
    ({"leaky_relu": {"slope": 0.2}}, lambda x: F.leaky_relu(x, 0.2)),
    ({"leaky_relu": {"slope": -0.5}}, lambda x: F.leaky_relu(x, -0.5)),
    ({"elu": {"alpha": 0.7}}, lambda x: F.elu(x, 0.7)),
    ("gelu", lambda x: F.gelu(x)),
    ({"gelu": {"approximate": "tanh"}}, lambda x: F.gelu(x, approximate="tanh")),
    ("silu", lambda x: F.silu(x)),
    ("hardswish", lambda x: F.hardswish(x)),
    ("sigmoid", lambda x: torch.sigmoid(x)),
    ("tanh", lambda x: torch.tanh(x)),
    ("softplus", lambda x: F.softplus(x)),
    ({"softplus": {"beta": 2.0, "threshold": 1.5}}, lambda x: F.softplus(x, 2.0, 1.5)),
    ({"softmax": {"dim": 1}}, lambda x: F.softmax(x, 1)),
    ({"softmax": {"dim": -1}}, lambda x: F.softmax(x, -1)),
    ({"log_softmax": {"dim": 2}}, lambda x: F.log_softmax(x, 2)),
    ({"log_softmax": {"dim": -2}}, lambda x: F.log_softmax(x, -2)),
    ("dropout", lambda x: x),
    ("dropout2d", lambda x: x),
    ("identity", lambda x: x),
    ("flatten", lambda x: x.flatten(1)),
    ({"flatten": {"start_dim": 2}}, lambda x: x.flatten(2)),
    ({"flatten": {"start_dim": 1, "end_dim": 2}}, lambda x: x.flatten(1, 2)),
]


@pytest.mark.parametrize("layer,ref", ACTS, ids=[str(a[0]) for a in ACTS])
def test_elementwise_and_shape_ops(layer: Any, ref: Any) -> None:
    _, _, x, y = one_layer(layer, (3, 4, 5))
    x = x * 6  # reach the tails: softplus thresholds, hardswish corners, saturation
    y = nb.to_numpy(specdsl.load(spec(layer, input=(3, 4, 5))))(x)
    close(y, ref(t(x)))


def test_erf_is_accurate_to_the_last_bits() -> None:
    xs = np.concatenate([np.linspace(-8, 8, 20001), np.linspace(-30, 30, 601), [0.0, 0.46875, 4.0, -4.0, 26.6]])
    exact = np.array([math.erf(v) for v in xs])
    err = np.abs(nb.erf(xs) - exact) / np.maximum(np.abs(exact), 1e-300)
    assert err.max() < 1e-14
    assert nb.erf(np.array([0.5], dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("bias", [True, False])
def test_linear_on_features_and_last_axis(bias: bool) -> None:
    _, w, x, y = one_layer({"linear": {"out": 5, "bias": bias}}, (7,))
    close(y, F.linear(t(x), w["weight"], w.get("bias")))
    _, w, x, y = one_layer({"linear": {"out": 5, "bias": bias}}, (3, 4, 7))
    close(y, F.linear(t(x), w["weight"], w.get("bias")))


def test_merges_concat_add_mean_join() -> None:
    text = spec({"conv": {"out": 4, "k": 1}, "name": "a"}, {"conv": {"out": 4, "k": 3, "pad": 1}, "name": "b"},
                {"add": None, "inputs": ["a", "b", "input"]}, {"mean": None, "inputs": ["a", "b"], "name": "m"},
                {"concat": {"dim": 2}, "inputs": ["m", "input"]},
                {"fractal": {"columns": 2, "base": [{"conv": {"out": 4, "k": 1}}]}}, input=(4, 3, 3))
    model = specdsl.load(text)
    net = nb.to_numpy(model)
    x = rand((2, 4, 3, 3))
    acts = net(x, capture=True)
    by_op = {n.op: n for n in model.graph.nodes}
    a, b = acts[1], acts[2]
    close(acts[by_op["add"].index], a + b + x)
    close(acts[by_op["mean"].index], (a + b) / 2)
    close(acts[by_op["concat"].index], np.concatenate([(a + b) / 2, x], axis=2))
    join = by_op["join"]
    close(acts[join.index], sum(acts[i] for i in join.inputs) / len(join.inputs))


def test_stack_and_sum_as_split_attention_weighs_branches() -> None:
    """SKNet's fusion: the branches stacked on a new axis, summed for the attention, softmax over the
    branch axis, the weighted sum; against torch.stack / Tensor.sum on the same activations."""
    model = specdsl.load("""model sk
input [4, 5, 5]
layers {
    conv(4, k=3, pad=1) as p0
    @input -> conv(4, k=3, pad=2, dilation=2) as p1
    [@p0, @p1] -> stack(1) as x
    sum(1) -> sum([2, 3], keepdims=true) -> conv(8, k=1) -> reshape([2, 4, 1, 1]) -> softmax(1) as w
    [@x, @w] -> mul -> sum(-4) as o
    [@p0, @p1] -> stack(-1) -> sum([1, 4], keepdims=true) -> reshape([1, 5, 5]) as extra
    [@o, @extra] -> add
}
""")
    net = nb.to_numpy(model)
    acts = net(rand((2, 4, 5, 5)), capture=True)
    nodes: dict[str, list[int]] = {}
    for n in model.graph.nodes:
        nodes.setdefault(n.op, []).append(n.index)
    p0, p1 = (t(acts[i]) for i in nodes["conv"][:2])
    stacked = torch.stack([p0, p1], 1)
    close(acts[nodes["stack"][0]], stacked)
    close(acts[nodes["stack"][1]], torch.stack([p0, p1], -1))
    close(acts[nodes["sum"][1]], stacked.sum(1).sum((2, 3), keepdim=True))
    close(acts[nodes["sum"][2]], (stacked * t(acts[nodes["softmax"][0]])).sum(-4))
    close(acts[nodes["sum"][3]], torch.stack([p0, p1], -1).sum((1, 4), keepdim=True))


def test_an_op_without_a_lowering_fails_loudly_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    model = specdsl.load(spec({"conv": {"out": 2, "k": 1}}, "hardswish", input=(1, 3)))
    node = model.graph.nodes[2]
    monkeypatch.delitem(nb.LOWERINGS, "hardswish")
    message = f"op 'hardswish' has no NumPy lowering (node {node.path} at {node.loc}): add an entry for 'hardswish' " \
        "to LOWERINGS in backends/numpy/lowerings.py"
    with pytest.raises(MissingEntry, match=re.escape(message)):
        nb.to_numpy(model)


def test_a_failing_node_names_its_path_and_line() -> None:
    model = specdsl.load(spec({"conv": {"out": 2, "k": 1}}, "relu", {"conv": {"out": 4, "k": 3}}, input=(3, 5)))
    net = nb.to_numpy(model)
    conv = model.graph.nodes[1]
    assert conv.loc is not None and conv.loc.line > 1
    # The wrong channel count (4; the conv declares 3) reaches the kernel through run_node.
    with pytest.raises(ValueError, match=re.escape(f"while executing node 1 [0] (conv) at {conv.loc}")) as info:
        net.run_node(1, [rand((2, 4, 5))])
    assert isinstance(info.value.__cause__, ValueError)  # the kernel's own error, chained
    assert str(info.value).startswith(str(info.value.__cause__))
    # A forward: batch statistics of one value per channel, refused as in PyTorch, at the bn's line.
    model = specdsl.load(spec("relu", {"bn": {"track_running_stats": False}}, input=(8,)))
    where = f"node 2 [1] (bn) at {model.graph.nodes[2].loc}"
    with pytest.raises(ValueError, match=rf"(?s)more than 1 value per channel.*{re.escape(where)}"):
        nb.to_numpy(model)(np.ones((1, 8)))


# ------------------------------------------------------------------------ mechanics

RESNETISH = spec({"conv": {"out": 6, "k": 3, "pad": 1, "bias": False}}, "bn", "relu",
                 {"residual": {"body": [{"conv": {"out": 6, "k": 3, "stride": 2, "pad": 1}}, "bn", "relu",
                                        {"deconv": {"out": 6, "k": 2, "stride": 2}}, "bn"],
                               "shortcut": "identity", "post": "relu"}},
                 "identity", {"relu": None, "name": "r"}, {"add": None, "inputs": ["r", "input"]},
                 "flatten", {"linear": {"out": 5}}, "bn", "relu", input=(6, 6, 6))


def test_batch_norm_folding_is_exact_and_optional() -> None:
    model = specdsl.load(RESNETISH)
    net = nb.to_numpy(model)
    x = rand((3, 6, 6, 6))
    folded = net(x)
    assert net._folded is not None and len(net._folded) == 8  # 2 conv+bn, deconv+bn, linear+bn
    unfolded = nb.to_numpy(model, net.weights, fold_bn=False)(x)
    close(folded, unfolded)
    close(folded, net(x, capture=True)[model.graph.output])


def test_chunked_batches_equal_one_pass_and_inputs_are_never_overwritten() -> None:
    model = specdsl.load(RESNETISH)
    net = nb.to_numpy(model)
    x = rand((5, 6, 6, 6))
    keep = x.copy()
    whole = net(x)
    small = nb.to_numpy(model, net.weights, max_memory=1)  # one sample at a time
    assert small._per_sample > 1
    close(small(x), whole, 1e-15)
    acts = small(x, capture=True)
    assert sorted(acts) == list(range(len(model.graph.nodes)))
    np.testing.assert_array_equal(x, keep)


def test_chunking_bounds_peak_memory() -> None:
    import tracemalloc

    model = specdsl.load(spec({"conv": {"out": 16, "k": 3, "pad": 1}}, "bn", "relu",
                              {"conv": {"out": 16, "k": 3, "pad": 1}}, "relu", "gap", input=(8, 32, 32)))
    weights = nb.random_weights(model, 0)
    x = rand((64, 8, 32, 32))
    peaks = {}
    for budget in (1 << 40, 1 << 20):
        net = nb.to_numpy(model, weights, max_memory=budget)
        tracemalloc.start()
        y = net(x)
        peaks[budget] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert y.shape == (64, 16)
    one_pass, chunked = peaks[1 << 40], peaks[1 << 20]
    assert chunked < one_pass / 8, (chunked, one_pass)
    assert chunked < 8 * (1 << 20)  # about the budget plus one chunk's im2col, not the batch


def test_in_place_activations_leave_shared_buffers_alone() -> None:
    # identity and flatten return views; the relu after them must not overwrite what `add` reads later.
    text = spec({"conv": {"out": 3, "k": 1}, "name": "c"}, "identity", "flatten", {"relu": None, "name": "r"},
                {"flatten": None, "inputs": ["c"], "name": "f"}, {"add": None, "inputs": ["r", "f"]}, input=(3, 2, 2))
    model = specdsl.load(text)
    net = nb.to_numpy(model)
    x = rand((2, 3, 2, 2))
    acts = net(x, capture=True)
    close(net(x), acts[model.graph.output], 0)
    close(net(x), np.maximum(acts[1].reshape(2, -1), 0) + acts[1].reshape(2, -1))


@pytest.mark.parametrize("act", ["relu", "relu6", {"leaky_relu": {"slope": 0.3}}, "elu"])
def test_activations_run_in_place_only_when_their_rule_allows(act: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    op = act if isinstance(act, str) else next(iter(act))
    lowering, seen = nb.LOWERINGS[op], {}

    def build(node: Any, a: Any, w: Any, shape: Any) -> Any:
        fn = lowering.build(node, a, w, shape)

        def run(ins: Any, ctx: Any) -> Any:
            seen[node.index] = ctx.inplace
            return fn(ins, ctx)
        return run

    monkeypatch.setitem(nb.LOWERINGS, op, nb.Lowering(build))
    model = specdsl.load(spec(act, {"conv": {"out": 3, "k": 1}}, act, "identity", act, input=(3, 4)))
    net = nb.to_numpy(model)
    x = rand((2, 3, 4)) * 8
    keep = x.copy()
    y = net(x)
    may = OPS[op].has(Trait.INPLACE)
    assert seen == {1: False, 3: may, 5: may}  # never the caller's array
    np.testing.assert_array_equal(x, keep)
    acts = net(x, capture=True)
    assert not any(seen.values())  # capture keeps every activation
    close(y, acts[5], 0)


def test_float32_runs_in_float32_and_weights_agree() -> None:
    model = specdsl.load(RESNETISH)
    n64, n32 = nb.to_numpy(model), nb.to_numpy(model, dtype="float32")
    for key, value in n32.weights.items():
        if value.dtype.kind == "f":
            assert value.dtype == np.float32
            np.testing.assert_array_equal(value.astype(np.float64), n64.weights[key])
    x = rand((2, 6, 6, 6))
    acts = n32(x, capture=True)
    assert all(v.dtype == np.float32 for v in acts.values())
    close(acts[model.graph.output], n64(x), 1e-5)


def test_weights_npz_round_trip_and_no_pickles(tmp_path: Path) -> None:
    model = specdsl.load(RESNETISH)
    net = nb.to_numpy(model, seed=3)
    path = tmp_path / "w.npz"
    net.save(path)
    loaded = nb.load_weights(path)
    assert loaded.keys() == net.weights.keys()
    assert loaded[next(k for k in loaded if k.endswith("num_batches_tracked"))].dtype == np.int64
    x = rand((2, 6, 6, 6))
    close(nb.to_numpy(model, str(path))(x), net(x), 0)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"x": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="pickle"):
        nb.load_weights(bad)
    with pytest.raises(TypeError, match="numeric"):
        nb.save_weights(tmp_path / "o.npz", {"x": np.array(["a"])})


def test_weights_must_fit_the_model() -> None:
    model = specdsl.load(RESNETISH)
    weights = nb.random_weights(model, 0)
    assert weights.keys() == set(nb.weight_shapes(model))
    wrong = dict(weights)
    key = next(iter(wrong))
    wrong[key] = np.zeros((1, 2))
    wrong["nope.weight"] = np.zeros(1)
    del wrong[next(k for k in wrong if k.endswith("running_var"))]
    with pytest.raises(ValueError) as info:
        nb.to_numpy(model, wrong)
    text = str(info.value)
    assert "missing" in text and "unexpected: nope.weight" in text and f"{key} has shape [1, 2]" in text


def test_random_weights_are_deterministic_per_key() -> None:
    a = nb.random_weights(specdsl.load(RESNETISH), 7)
    b = nb.random_weights(specdsl.load(RESNETISH), 7)
    c = nb.random_weights(specdsl.load(RESNETISH), 8)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a if a[k].ndim)


def test_input_shape_is_checked() -> None:
    net = nb.to_numpy("lenet5")
    with pytest.raises(ValueError, match=r"expected a batch of shape \(N, 1, 32, 32\)"):
        net(np.zeros((1, 32, 32)))
    assert net(np.zeros((2, 1, 32, 32))).shape == (2, 10)
    assert "lenet5" in repr(net)


def test_check_does_not_import_numpy() -> None:
    import subprocess

    code = ("import sys; from specdsl.cli.main import main; main(['check', 'resnet50']); "
            "assert 'numpy' not in sys.modules, 'numpy imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_specdsl_exposes_to_numpy_lazily() -> None:
    assert specdsl.to_numpy is nb.to_numpy
    with pytest.raises(SpecError):
        specdsl.to_numpy("model: x\ninput: [3, 4, 4]\nlayers:\n  - conv: {out: 2, k: 9}\n")


# ------------------------------------------------------------------------ random specs vs PyTorch


def torch_acts(model: Any, weights: dict[str, np.ndarray], x: np.ndarray, dtype: Any,
               train_bn: bool = False) -> dict[int, np.ndarray]:
    module = torch_module(model, weights, dtype, train_bn)
    with torch.no_grad():
        return {i: v.double().numpy() for i, v in capture(module, model, torch.from_numpy(x).to(dtype)).items()}


def _amplification(net: nb.NumpyModel, node: Any, inputs: list[np.ndarray], train: bool) -> float:
    """max|x|·|γ|/√(σ²+ε) of a normalisation (how far it magnifies rounding of its input), else 1."""
    a = net.figures[node.index].attrs
    x = inputs[0]
    if node.op == "layernorm":
        axes = tuple(range(x.ndim - len(a.normalized_shape), x.ndim))
    elif node.op == "groupnorm":
        x = x.reshape(x.shape[0], a.num_groups, -1)
        axes = (2,)
    elif node.op == "instancenorm" and (train or not a.track_running_stats):
        axes = tuple(range(2, x.ndim))
    elif node.op == "bn" and (train or not a.track_running_stats):
        axes = (0, *range(2, x.ndim))
    else:
        return 1.0
    gamma = net.node_weights(node.index).get("weight")
    g = 1.0 if gamma is None else float(np.abs(gamma).max())
    return max(1.0, float(np.abs(x).max()) * g / math.sqrt(float(x.var(axis=axes).min()) + a.eps))


def magnitude(a: np.ndarray) -> float:
    """max(1, max|a|) over the finite values (a max pool over padding alone gives -inf)."""
    finite = np.abs(a[np.isfinite(a)])
    return max(1.0, float(finite.max()) if finite.size else 0.0)


def check_against(net: nb.NumpyModel, ref: dict[int, np.ndarray], got: dict[int, np.ndarray], tol: float,
                  train: bool = False) -> None:
    """Every node within tol globally, or locally (NumPy fed PyTorch's inputs; see the module docstring)."""
    for node in net.graph.nodes:
        i = node.index
        r, g = ref[i], got[i]
        assert g.shape == r.shape, f"node {i} {node.path} ({node.op}): torch {g.shape}, numpy {r.shape}"
        if np.allclose(g, r, rtol=tol, atol=tol * magnitude(r), equal_nan=True):
            continue
        ins = [got[k] for k in node.inputs]
        local = net.run_node(i, ins, train_bn=train)
        kappa = _amplification(net, node, ins, train)
        scale = magnitude(local) * kappa
        err = float(np.abs(g - local).max())
        assert np.allclose(g, local, rtol=tol * kappa, atol=tol * scale, equal_nan=True), (
            f"node {i} {node.path} ({node.op}) differs: global max abs {float(np.abs(g - r).max()):.3g}, "
            f"local {err:.3g} (scale {scale:.3g})")


def _checked(data: dict[str, Any]) -> Any:
    text = spec_text(data)
    note(text)
    try:
        return specdsl.load(text)
    except SpecError as exc:
        event(f"rejected: {exc.errors[0].code}")
        with pytest.raises(SpecError):
            nb.to_numpy(text)  # rejected specs never reach a backend
        return None


def test_crop_and_mul_match_torch() -> None:
    """The merges the random specs do not draw: crop (to the second input's size, centred) and mul."""
    text = spec({"conv": {"out": 4, "k": 1}, "name": "a"}, {"conv": {"out": 4, "k": 3}, "name": "b"},
                {"crop": None, "inputs": ["a", "b"], "name": "c"}, {"mul": None, "inputs": ["c", "b"]},
                input=(3, 7, 6))
    model = specdsl.load(text)
    assert {"crop", "mul"} <= {n.op for n in model.graph.nodes}
    net = nb.to_numpy(model)
    x = rand((2, 3, 7, 6))
    check_against(net, net(x, capture=True), torch_acts(model, net.weights, x, torch.float64), 1e-10)


@RANDOM
@given(data=specs())
def test_random_specs_numpy_vs_torch(data: dict[str, Any]) -> None:
    model = _checked(data)
    assume(model is not None)
    net = nb.to_numpy(model, index_dtype="float32")
    x = np.random.default_rng(1).standard_normal((2, *model.graph.input_shape), dtype=np.float32)
    x = x.astype(np.float64)
    ref = net(x, capture=True)
    for node in model.graph.nodes:
        static = (2, *model.analysis.figures[node.index].shape)
        got = ref[node.index].shape
        assert got == static, f"{node.path} ({node.op}): numpy {got}, static {static}"
    check_against(net, ref, torch_acts(model, net.weights, x, torch.float32), 1e-5)
    net.index_dtype = np.dtype("float64")
    check_against(net, net(x, capture=True), torch_acts(model, net.weights, x, torch.float64), 1e-10)


@TRAIN
@given(data=specs(max_layers=5))
def test_random_specs_in_training_mode(data: dict[str, Any]) -> None:
    model = _checked(data)
    assume(model is not None)
    assume(any(n.op in ("bn", "instancenorm") for n in model.graph.nodes))
    net = nb.to_numpy(model)
    x = np.random.default_rng(2).standard_normal((4, *model.graph.input_shape), dtype=np.float32).astype(np.float64)
    ref = net(x, capture=True, train_bn=True)
    check_against(net, ref, torch_acts(model, net.weights, x, torch.float64, train_bn=True), 1e-10, train=True)
    assert np.allclose(net(x, train_bn=True), ref[model.graph.output])


@st.composite
def broken_specs(draw: Any) -> dict[str, Any]:
    """A valid random spec with one layer made wrong in a way the checker must catch."""
    data = draw(specs(max_layers=4))
    bad = draw(st.sampled_from([
        {"conv": {"out": 2, "k": 99}}, {"conv": {"out": 3, "k": 1, "groups": 7}},
        {"maxpool": {"k": 2, "pad": 5}}, {"add": None, "inputs": ["input", "nowhere"]},
        {"upsample": {"scale": 2.0, "size": 3}}, {"softmax": {"dim": 0}}, {"linear": {"out": 2, "in": 99991}},
        {"groupnorm": {"groups": 99991}}, {"deconv": {"out": 2, "k": 1, "output_padding": 3}},
    ]))
    data["layers"].insert(draw(st.integers(0, len(data["layers"]))), bad)
    return data


@settings(RANDOM, max_examples=40)
@given(data=broken_specs())
def test_rejected_specs_never_reach_a_backend(data: dict[str, Any]) -> None:
    text = spec_text(data)
    try:
        specdsl.load(text)
    except SpecError:
        with pytest.raises(SpecError):
            nb.to_numpy(text)
        with pytest.raises(SpecError):
            specdsl.to_torch(text)
