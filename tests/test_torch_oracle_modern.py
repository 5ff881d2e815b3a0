"""Oracles for the modern CNN vocabulary: specdsl's static figures against torch.nn at run time
(accept/reject, shape, parameters, MACs; see test_torch_oracle.py), and the NumPy backend's
outputs against PyTorch's for each new op."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import spec_text  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_torch_oracle import (  # noqa: E402
    FEW,
    SETTINGS,
    agree,
    one_layer_text,
    rejects,
    shapes,
    via_spec,
    via_torch,
)
from torch import nn  # noqa: E402

import specdsl  # noqa: E402
import specdsl.backends.numpy as nb  # noqa: E402
from specdsl.backends.torch.fx import to_torch  # noqa: E402
from specdsl.backends.torch.modules_modern import LocallyConnected, StochasticDepth  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

PAD = {"constant": "ConstantPad", "reflect": "ReflectionPad", "replicate": "ReplicationPad",
       "circular": "CircularPad"}


@FEW
@given(shapes(ranks=(0, 1, 2, 3)), st.integers(1, 7))
def test_prelu_per_channel(x: tuple[int, ...], n: int) -> None:
    args = {"num_parameters": n}
    agree(via_spec(x, "prelu", args), via_torch(lambda: nn.PReLU(n), [x]), one_layer_text(x, "prelu", args))


class _ChannelsLastLayerNorm(nn.Module):
    """torchvision's LayerNorm2d, written as its documentation says: permute, nn.LayerNorm, permute back."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(c)

    def forward(self, x: Any) -> Any:
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


@FEW
@given(shapes(ranks=(0, 1, 2, 3)))
def test_channel_norm(x: tuple[int, ...]) -> None:
    agree(via_spec(x, "channel_norm", {}), via_torch(lambda: _ChannelsLastLayerNorm(x[0]), [x]),
          one_layer_text(x, "channel_norm", {}))


@FEW
@given(shapes(ranks=(0, 1, 2, 3)))
def test_layer_scale_has_one_scale_per_channel(x: tuple[int, ...]) -> None:
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer_scale = nn.Parameter(torch.ones(x[0], *(1,) * (len(x) - 1)) * 1e-6)

        def forward(self, v: Any) -> Any:
            return v * self.layer_scale

    agree(via_spec(x, "layer_scale", {}), via_torch(Scale, [x]), one_layer_text(x, "layer_scale", {}))


@SETTINGS
@given(shapes(ranks=(0, 1, 2, 3)), st.data())
def test_permute(x: tuple[int, ...], data: Any) -> None:
    ndim = len(x) + 1
    dims = data.draw(st.lists(st.integers(-ndim, ndim), min_size=ndim - 1, max_size=ndim + 1))
    spec = via_spec(x, "permute", {"dims": dims})
    what = one_layer_text(x, "permute", {"dims": dims})
    if dims[0] % ndim != 0:
        return rejects(spec, what)  # the batch axis moves: refused by design
    agree(spec, via_torch(lambda: lambda v: v.permute(dims), [x]), what)


@SETTINGS
@given(shapes(ranks=(1, 2, 3)), st.sampled_from(sorted(PAD)), st.data())
def test_pad(x: tuple[int, ...], mode: str, data: Any) -> None:
    rank = len(x) - 1
    n = data.draw(st.sampled_from([1, 2 * rank, 2 * rank, 2 * rank + 2]))
    widths = data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    pad: Any = widths[0] if n == 1 else widths
    spec = via_spec(x, "pad", {"pad": pad, "mode": mode})
    what = one_layer_text(x, "pad", {"pad": pad, "mode": mode})
    if n not in (1, 2 * rank):
        return rejects(spec, what)
    layer = getattr(nn, f"{PAD[mode]}{rank}d")
    agree(spec, via_torch(lambda: layer(tuple(widths) if n > 1 else pad, *((0.0,) if mode == "constant" else ())),
                          [x]), what)


@SETTINGS
@given(shapes(ranks=(1, 2, 3), max_c=12), st.integers(1, 3), st.sampled_from(["pixel_shuffle", "pixel_unshuffle"]))
def test_pixel_shuffle(x: tuple[int, ...], r: int, op: str) -> None:
    spec = via_spec(x, op, {"factor": r})
    what = one_layer_text(x, op, {"factor": r})
    if len(x) != 3:
        return rejects(spec, what)  # PyTorch would shuffle the batch or a spatial axis as channels
    layer = nn.PixelShuffle if op == "pixel_shuffle" else nn.PixelUnshuffle
    agree(spec, via_torch(lambda: layer(r), [x]), what)


@SETTINGS
@given(shapes(ranks=(1, 2, 3)), st.data())
def test_local_is_a_conv_with_a_kernel_per_position(x: tuple[int, ...], data: Any) -> None:
    rank, c = len(x) - 1, x[0]
    args = {"out": data.draw(st.integers(1, 4)), "k": data.draw(st.integers(1, 4)),
            "stride": data.draw(st.integers(1, 3)), "pad": data.draw(st.integers(0, 2)),
            "bias": data.draw(st.booleans())}
    spec = via_spec(x, "local", args)
    what = one_layer_text(x, "local", args)
    conv = [nn.Conv1d, nn.Conv2d, nn.Conv3d][rank - 1](c, args["out"], args["k"], args["stride"], args["pad"],
                                                        bias=args["bias"])
    rt = via_torch(lambda: conv, [x])
    if rt.error is not None:
        return agree(spec, rt, what)
    assert not isinstance(spec, Exception), spec
    # The same figures as the conv, but a kernel per output position (and a bias per output element).
    positions = int(np.prod(spec.shape[1:]))
    assert spec.shape == rt.shape[1:]
    assert spec.trainable == conv.weight.numel() * positions + (int(np.prod(spec.shape)) if args["bias"] else 0)
    assert spec.macs == int(np.prod(spec.shape)) * c * args["k"] ** rank
    # With every position's kernel equal to the conv's, the outputs are the conv's.
    local = LocallyConnected(c, args["out"], spec.shape[1:], (args["k"],) * rank, (args["stride"],) * rank,
                             (args["pad"],) * rank, bias=args["bias"]).double()
    conv = conv.double()
    with torch.no_grad():
        local.weight.copy_(conv.weight.expand(*spec.shape[1:], *conv.weight.shape))
        if args["bias"]:
            local.bias.copy_(conv.bias.reshape(-1, *(1,) * rank).expand(spec.shape))
        v = torch.randn(2, *x, dtype=torch.float64)
        torch.testing.assert_close(local(v), conv(v))


def test_stochastic_depth_follows_torchvision() -> None:
    v = torch.randn(64, 3, 4, 4) + 5
    for mode in ("row", "batch"):
        layer = StochasticDepth(0.5, mode)
        assert layer.eval()(v) is v  # the identity in eval
        y = layer.train()(v)
        kept = (y != 0).flatten(1).all(1)
        assert torch.equal(y[kept], v[kept] * 2) and torch.all(y[~kept] == 0)
        if mode == "batch":
            assert kept.all() or not kept.any()
        else:
            assert 0 < int(kept.sum()) < 64
    assert torch.equal(StochasticDepth(0.0).train()(v), v)
    assert torch.all(StochasticDepth(1.0).train()(v) == 0)


# ---------------------------------------------------------------- NumPy against PyTorch


CASES = [
    ("hardsigmoid", (3, 4, 5)),
    ("mish", (3, 4, 5)),
    ("selu", (3, 4, 5)),
    ({"prelu": 3}, (3, 4, 5)),
    ({"prelu": 5}, (5,)),
    ("prelu", (3, 4, 5, 2)),
    ({"channel_norm": {"eps": 1e-6}}, (6, 4, 5)),
    ({"layer_scale": 0.5}, (3, 4, 5)),
    ({"stochastic_depth": 0.3}, (3, 4, 5)),
    ({"permute": [0, 2, 3, 1]}, (3, 4, 5)),
    ({"permute": [0, 3, 1, 4, 2]}, (3, 4, 5, 2)),
    ({"pad": {"pad": [1, 2, 0, 3], "mode": "constant", "value": 0.5}}, (3, 4, 5)),
    ({"pad": {"pad": [1, 3, 0, 2], "mode": "reflect"}}, (3, 4, 5)),
    ({"pad": {"pad": 2, "mode": "replicate"}}, (3, 4, 5, 2)),
    ({"pad": {"pad": [4, 1], "mode": "circular"}}, (3, 4)),
    ({"pixel_shuffle": 2}, (8, 3, 5)),
    ({"pixel_unshuffle": 2}, (2, 4, 6)),
    ({"local": {"out": 4, "k": 3, "stride": 2, "pad": 1}}, (3, 7, 6)),
    ({"local": {"out": 2, "k": [2, 3], "bias": False}}, (3, 5, 6)),
    ({"local": {"out": 3, "k": 2, "stride": 2}}, (2, 7)),
    ({"local": {"out": 2, "k": 2, "pad": 1}}, (2, 3, 4, 3)),
]


@pytest.mark.parametrize(("layer", "inp"), CASES, ids=[str(c[0]) for c in CASES])
def test_numpy_matches_torch(layer: Any, inp: tuple[int, ...]) -> None:
    model = specdsl.load(spec_text(layer, input=inp), warn=False)
    net = nb.to_numpy(model)
    module = to_torch(model).double().eval()
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in net.weights.items()})
    x = np.random.default_rng(0).standard_normal((2, *inp)) * 4
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    got = net(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@settings(SETTINGS, max_examples=20)
@given(st.sampled_from(CASES))
def test_emitted_source_matches_to_torch(case: Any) -> None:
    from specdsl.backends.torch.emit import check_emitted, emit, load_emitted

    layer, inp = case
    model = specdsl.load(spec_text(layer, {"identity": None}, input=inp), warn=False)
    source = emit(model)
    assert check_emitted(model, source) == []
    emitted = load_emitted(source)().double().eval()
    module = to_torch(model).double().eval()
    emitted.load_state_dict(module.state_dict())
    x = torch.randn(2, *inp, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(emitted(x), module(x), rtol=0, atol=0)


def test_emitted_file_carries_the_helper_classes_verbatim() -> None:
    import ast
    from pathlib import Path

    from specdsl.backends.torch.emit import emit

    text = (Path(__file__).parent.parent / "backends" / "torch" / "modules_modern.py").read_text(encoding="utf-8")
    classes = {n.name: ast.get_source_segment(text, n) for n in ast.parse(text).body if isinstance(n, ast.ClassDef)}
    model = specdsl.load(spec_text({"local": {"out": 4, "k": 3}}, {"permute": [0, 2, 3, 1]}, {"permute": [0, 3, 1, 2]},
                                   "channel_norm", "layer_scale", {"drop_path": 0.1}, input=(3, 6, 6)))
    source = emit(model)
    for name in ("LocallyConnected", "Permute", "ChannelNorm", "StochasticDepth"):
        assert f"\n\n\n{classes[name]}\n\n\n" in source, name
