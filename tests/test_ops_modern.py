"""The modern CNN vocabulary (hardsigmoid, prelu, mish, selu, channel_norm, layer_scale,
stochastic_depth, permute, pad, pixel_shuffle / unshuffle, local, layernorm(int)): rules worked
by hand, located errors for bad input, and the ConvNeXt block's PyTorch layout."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from conftest import errors_of, load_layers

import specdsl
from specdsl.ops import ALIASES, OPS

# ---------------------------------------------------------------- catalogue


def test_the_contract_names_are_ops() -> None:
    assert {"hardsigmoid", "prelu", "mish", "selu", "hardtanh", "layernorm", "channel_norm", "layer_scale",
            "stochastic_depth", "permute", "pad", "pixel_shuffle", "pixel_unshuffle", "local"} <= set(OPS)
    assert ALIASES["layernorm2d"] == "channel_norm"
    assert ALIASES["drop_path"] == "stochastic_depth"


# ---------------------------------------------------------------- shapes, weights, counts


def test_activations_keep_the_shape_and_count_one_op_per_element(h) -> None:
    for op in ("hardsigmoid", "mish", "selu", "prelu"):
        f = h.last(op, input=(4, 5, 6))
        assert f.shape == (4, 5, 6) and f.macs == 0 and f.extra_ops == 4 * 5 * 6


def test_prelu_weight_is_one_slope_or_one_per_channel(h) -> None:
    f = h.last("prelu", input=(4, 5, 6))
    assert [(w.name, w.shape) for w in f.weights] == [("weight", (1,))]
    f = h.last({"prelu": {"num_parameters": 4, "init": 0.1}}, input=(4, 5, 6))
    assert [(w.name, w.shape) for w in f.weights] == [("weight", (4,))]
    assert f.params == 4


def test_layernorm_takes_an_int_as_pytorch_does(h) -> None:
    f = h.last({"permute": [0, 2, 3, 1]}, {"layernorm": 96}, input=(96, 7, 7))
    assert f.shape == (7, 7, 96)
    assert [(w.name, w.shape) for w in f.weights] == [("weight", (96,)), ("bias", (96,))]


def test_channel_norm_has_weight_and_bias_per_channel(h) -> None:
    f = h.last({"layernorm2d": {"eps": 1e-6}}, input=(8, 5, 5))
    assert f.shape == (8, 5, 5) and f.params == 16 and f.macs == 0
    assert [(w.name, w.shape, w.init) for w in f.weights] == [("weight", (8,), "ones"), ("bias", (8,), "zeros")]


@pytest.mark.parametrize(("inp", "shape"), [((8,), (8,)), ((8, 5), (8, 1)), ((8, 5, 5), (8, 1, 1)),
                                            ((8, 3, 3, 3), (8, 1, 1, 1))])
def test_layer_scale_is_one_gamma_per_channel(h, inp: tuple[int, ...], shape: tuple[int, ...]) -> None:
    f = h.last({"layer_scale": 1e-6}, input=inp)
    # The node itself: a parameter of its container under the node's name (torchvision's CNBlock.layer_scale).
    assert [(w.name, w.shape, w.of_container) for w in f.weights] == [("", shape, True)]
    assert f.params == inp[0] and f.macs == 0


def test_stochastic_depth_is_free(h) -> None:
    f = h.last({"drop_path": {"p": 0.2, "mode": "batch"}}, input=(8, 5, 5))
    assert f.shape == (8, 5, 5) and f.params == 0 and f.extra_ops == 0


@pytest.mark.parametrize(("dims", "inp", "out"), [
    ([0, 2, 3, 1], (96, 7, 5), (7, 5, 96)),
    ([0, 3, 1, 2], (7, 5, 96), (96, 7, 5)),
    ([0, 1, 3, 2], (3, 7, 5), (3, 5, 7)),
    ([0, -1, 1], (3, 7), (7, 3)),
    ([0, 1], (10,), (10,)),
])
def test_permute_reorders_axes_in_pytorch_numbering(h, dims: list[int], inp: tuple[int, ...],
                                                    out: tuple[int, ...]) -> None:
    assert h.last({"permute": dims}, input=inp).shape == out


@pytest.mark.parametrize(("layer", "out"), [
    ({"pad": 2}, (3, 9, 10)),
    ({"pad": [1, 2, 3, 0]}, (3, 8, 9)),  # F.pad order: W gets 1 + 2, H gets 3 + 0
    ({"pad": {"pad": [0, 1, 1, 1], "mode": "reflect"}}, (3, 7, 7)),
    ({"pad": {"pad": 5, "mode": "circular"}}, (3, 15, 16)),
])
def test_pad_shapes(h, layer: Any, out: tuple[int, ...]) -> None:
    assert h.last(layer, input=(3, 5, 6)).shape == out


def test_pixel_shuffle_and_unshuffle(h) -> None:
    assert h.last({"pixel_shuffle": 3}, input=(18, 4, 5)).shape == (2, 12, 15)
    assert h.last({"pixel_unshuffle": 2}, input=(3, 4, 6)).shape == (12, 2, 3)


def test_local_weights_macs_and_shape(h) -> None:
    # out = floor((9 + 2·1 - 3) / 2) + 1 = 5 per axis; 25 positions, each a 4×3×3×3 kernel
    f = h.last({"local": {"out": 4, "k": 3, "stride": 2, "pad": 1}}, input=(3, 9, 9))
    assert f.shape == (4, 5, 5)
    assert [(w.name, w.shape) for w in f.weights] == [("weight", (5, 5, 4, 3, 3, 3)), ("bias", (4, 5, 5))]
    assert f.params == 25 * 4 * 27 + 100
    assert f.macs == 25 * 4 * 3 * 9  # out_positions · out · in · k², as a conv's
    assert f.extra_ops == 100  # the bias adds
    assert h.last({"local": {"out": 4, "k": 3, "bias": False}}, input=(3, 5)).params == 3 * 4 * 3 * 3


# ---------------------------------------------------------------- receptive fields


def _rf(model: specdsl.Model) -> list[tuple[Any, Any, Any]] | None:
    rf = model.rows()[-1][1].rf
    return None if rf is None else [(a.size, a.stride, a.pad) for a in rf]


def test_pad_grows_the_effective_padding(h) -> None:
    m = h.load({"conv": {"out": 2, "k": 3, "stride": 2}}, {"pad": [1, 1, 2, 2]}, input=(3, 9, 9))
    assert _rf(m) == [(3, 2, 4), (3, 2, 2)]  # P += p·j per axis (H has 2, W has 1)


def test_pixel_shuffle_and_unshuffle_change_the_jump_by_the_factor(h) -> None:
    m = h.load({"conv": {"out": 4, "k": 3, "stride": 2, "pad": 1}}, {"pixel_shuffle": 2}, input=(3, 8, 8))
    assert _rf(m) == [(4, 1, 2)] * 2  # as deconv k = s = 2: j = 2/2, r += (2-1)·1, P += (2-1)·1
    m = h.load({"pixel_shuffle": 2}, input=(4, 8, 8))
    assert _rf(m) == [(Fraction(3, 2), Fraction(1, 2), Fraction(1, 2))] * 2
    m = h.load({"pixel_unshuffle": 2}, input=(4, 8, 8))
    assert _rf(m) == [(2, 2, 0)] * 2  # as conv k = s = 2


def test_permute_keeps_the_rf_for_channels_last_and_back(h) -> None:
    m = h.load({"conv": {"out": 4, "k": 7, "pad": 3}}, {"permute": [0, 2, 3, 1]}, {"layernorm": 4},
               {"permute": [0, 3, 1, 2]}, input=(3, 9, 9))
    assert _rf(m) == [(7, 1, 3)] * 2
    assert _rf(h.load({"permute": [0, 1, 3, 2]}, input=(3, 9, 9))) is None  # H and W swap: not tracked


def test_local_has_a_conv_receptive_field(h) -> None:
    m = h.load({"local": {"out": 2, "k": 3, "stride": 2, "pad": 1}}, input=(3, 9, 9))
    assert _rf(m) == [(3, 2, 1)] * 2


# ---------------------------------------------------------------- located errors


def _one_error(*layers: Any, input: tuple[int, ...]) -> Any:
    errors = errors_of(*layers, input=input)
    assert len(errors) == 1, errors
    err = errors[0]
    assert err.loc is not None and err.loc.line == 4  # the layer's own line (conftest's spec_text)
    return err


@pytest.mark.parametrize(("layer", "inp", "code", "words"), [
    ({"pixel_shuffle": 2}, (6, 4, 4), "E373", "channels divisible by factor² = 4; received 6 channels"),
    ({"pixel_shuffle": 2}, (8, 4), "E306", "pixel_shuffle needs an input of shape [C, H, W]"),
    ({"pixel_unshuffle": 3}, (2, 6, 7), "E373", "received W=7"),
    ({"permute": [0, 2, 2, 1]}, (3, 4, 4), "E371", "name each of the 4 axes"),
    ({"permute": [0, 2, 1]}, (3, 4, 4), "E371", "received [0, 2, 1]"),
    ({"permute": [1, 0, 2, 3]}, (3, 4, 4), "E371", "keep the batch axis 0 first"),
    ({"pad": [1, 1, 1]}, (3, 4, 4), "E372", "needs one width or two per spatial axis (4"),
    ({"pad": {"pad": 4, "mode": "reflect"}}, (3, 4, 8), "E309", "received pad=4 for size 4"),
    ({"pad": {"pad": [0, 0, 5, 0], "mode": "circular"}}, (3, 4, 8), "E309", "at most once along H"),
    ({"pad": 1}, (3,), "E306", "pad needs an input of shape"),
    ({"prelu": 3}, (4, 5, 5), "E370", "num_parameters must be 1 or the input channels (4"),
    ({"layernorm": 5}, (3, 4, 4), "E302", "received shape [5] for input [3, 4, 4]"),
    ({"channel_norm": {"in": 5}}, (3, 4, 4), "E302", "in=5 but receives 3"),
    ({"local": {"out": 2, "k": 5}}, (3, 4, 4), "E304", "kernel larger than the padded input"),
    ({"local": {"out": 2, "k": [3, 3, 3]}}, (3, 4, 4), "E305", "kernel size k needs one value per spatial axis"),
])
def test_bad_input_is_a_located_error(layer: Any, inp: tuple[int, ...], code: str, words: str) -> None:
    err = _one_error(layer, input=inp)
    assert err.code == code and words in err.message, err.message


@pytest.mark.parametrize("layer", [
    {"stochastic_depth": {"p": 1.5}}, {"stochastic_depth": {"p": 0.1, "mode": "col"}}, {"pixel_shuffle": 0},
    {"pad": -1}, {"pad": {"pad": 1, "mode": "zeros"}}, {"prelu": 0}, {"permute": [0]},
])
def test_bad_arguments_are_schema_errors(layer: Any) -> None:
    errors = errors_of(layer, input=(4, 4, 4))
    assert errors and all(e.loc is not None and e.loc.line == 4 for e in errors), errors


def test_dsl_spells_the_new_ops() -> None:
    text = """model m
input [8, 8, 8]

layers {
    conv(8, k=7, pad=3, groups=depthwise) -> permute([0, 2, 3, 1]) -> layernorm(8, eps=1e-6) -> linear(32)
    -> gelu -> linear(8) -> permute([0, 3, 1, 2]) -> layer_scale(1e-6) -> drop_path(0.1)
    -> pad([1, 1, 1, 1], mode=reflect) -> prelu(8) -> channel_norm(eps=1e-6) -> pixel_unshuffle(2)
    -> pixel_shuffle(2) -> local(4, 3) -> mish -> selu -> hardsigmoid
}
"""
    model = specdsl.load(text)
    assert model.rows()[-1][1].shape == (4, 8, 8)


# ---------------------------------------------------------------- ConvNeXt's block, in PyTorch


CNBLOCK = [
    {"conv": {"out": 96, "k": 7, "pad": 3, "groups": "depthwise"}},
    {"permute": [0, 2, 3, 1]},
    {"layernorm": {"shape": 96, "eps": 1e-6}},
    {"linear": 384},
    "gelu",
    {"linear": 96},
    {"permute": [0, 3, 1, 2]},
    {"layer_scale": 1e-6},
    {"stochastic_depth": {"p": 0.1, "mode": "row"}},
]


def test_cnblock_state_dict_is_torchvisions_tensors() -> None:
    torch = pytest.importorskip("torch")
    from specdsl.backends.torch.fx import to_torch

    model = load_layers(*CNBLOCK, input=(96, 14, 14))
    module = to_torch(model)
    shapes = [tuple(v.shape) for v in module.state_dict().values()]
    # torchvision's CNBlock: layer_scale (the block's own parameter, so first), block.0 (dwconv 7),
    # block.2 (LayerNorm), block.3, block.5 (Linear).
    assert shapes == [(96, 1, 1), (96, 1, 7, 7), (96,), (96,), (96,), (384, 96), (384,), (96, 384), (96,)]
    scale = module.state_dict()[next(k for k, v in module.state_dict().items() if tuple(v.shape) == (96, 1, 1))]
    assert torch.all(scale == torch.tensor(1e-6))
    assert model.totals.params == sum(p.numel() for p in module.parameters())
    module.eval()
    x = torch.randn(2, 96, 14, 14)
    assert module(x).shape == (2, 96, 14, 14)
