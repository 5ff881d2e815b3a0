"""Oracles for reshape (alias view), unsqueeze, squeeze, scale and blurpool (issue 26, items 1-3):
specdsl's static figures against PyTorch at run time (accept/reject, shape, parameters, buffers,
MACs), its lowerings against PyTorch's own functions and timm's BlurPool2d / EcaModule, the NumPy
reference against PyTorch, the emitted source against to_torch, and the memory pass's views."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backend_agreement import assert_backends_agree  # noqa: E402
from conftest import spec_text  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_torch_oracle import FEW, agree, one_layer_text, rejects, shapes, via_spec, via_torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import specdsl  # noqa: E402
from specdsl.backends.torch.fx import to_torch  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class _Fn(nn.Module):
    """A function of the batched input, as the oracle's layer."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Any) -> Any:
        return self.fn(x)


class _Blur(nn.Module):
    """BlurPool2d written from the paper's description, independently of specdsl's module: pad by
    ((s - 1) + (f - 1)) // 2 in the mode, then a depthwise conv by the binomial filter (a buffer)."""

    def __init__(self, c: int, f: int, s: int, mode: str) -> None:
        super().__init__()
        row = torch.tensor([math.comb(f - 1, k) for k in range(f)], dtype=torch.float32) / 2 ** (f - 1)
        self.register_buffer("filt", (row[:, None] * row[None, :]).repeat(c, 1, 1, 1), persistent=False)
        self.pad, self.s, self.mode, self.c = ((s - 1) + (f - 1)) // 2, s, mode, c

    def forward(self, x: Any) -> Any:
        filt: Any = self.filt
        return F.conv2d(F.pad(x, [self.pad] * 4, mode=self.mode), filt, stride=self.s, groups=self.c)


# -- figures: accept/reject, shape, params, buffers, MACs ---------------------------------


@FEW
@given(shapes(ranks=(0, 1, 2, 3)), st.lists(st.integers(-1, 12), min_size=1, max_size=4))
def test_reshape_figures(x: tuple[int, ...], sizes: list[int]) -> None:
    spec = via_spec(x, "reshape", {"shape": sizes})
    what = one_layer_text(x, "reshape", {"shape": sizes})
    if 0 in sizes:  # a size-0 axis: PyTorch may accept it for an empty tensor, no sample is empty
        return rejects(spec, what)
    agree(spec, via_torch(lambda: _Fn(lambda t: t.reshape(t.shape[0], *sizes)), [x]), what)


@FEW
@given(shapes(ranks=(0, 1, 2, 3)), st.integers(-6, 5), st.sampled_from(["unsqueeze", "squeeze"]))
def test_unsqueeze_and_squeeze_figures(x: tuple[int, ...], dim: int, op: str) -> None:
    spec = via_spec(x, op, {"dim": dim})
    what = one_layer_text(x, op, {"dim": dim})
    ndim = len(x) + 1 + (op == "unsqueeze")
    d = dim + ndim if dim < 0 else dim
    if 0 <= d < ndim and (d == 0 or (op == "squeeze" and (x[d - 1] != 1 or len(x) == 1))):
        return rejects(spec, what)  # the batch axis; a squeeze PyTorch would ignore, or one leaving no axis
    if op == "unsqueeze" and len(x) == 4:
        return rejects(spec, what)  # more than [C, D, H, W]
    agree(spec, via_torch(lambda: _Fn(lambda t: getattr(t, op)(dim)), [x]), what)


@FEW
@given(shapes(ranks=(1, 2, 3)), st.sampled_from([0.17, -2.0, 3]))
def test_scale_figures(x: tuple[int, ...], value: float) -> None:
    agree(via_spec(x, "scale", {"value": value}), via_torch(lambda: _Fn(lambda t: t * value), [x]),
          one_layer_text(x, "scale", {"value": value}))


@FEW
@given(shapes(ranks=(2,)), st.integers(2, 5), st.integers(1, 3),
       st.sampled_from(["reflect", "constant", "replicate", "circular"]))
def test_blurpool_figures_and_macs_as_a_depthwise_conv(x: tuple[int, ...], f: int, s: int, mode: str) -> None:
    args = {"filt": f, "stride": s, "pad_mode": mode}
    agree(via_spec(x, "blurpool", args), via_torch(lambda: _Blur(x[0], f, s, mode), [x]),
          one_layer_text(x, "blurpool", args), macs_of=x)


def test_blurpool_needs_2d_and_a_reflectable_input() -> None:
    with pytest.raises(SpecError, match="E306"):
        specdsl.load(spec_text("blurpool", input=(3, 8)))
    with pytest.raises(SpecError, match="E309"):
        specdsl.load(spec_text("blurpool", input=(3, 1, 8)))
    with pytest.raises(SpecError, match="E391"):
        specdsl.load(spec_text({"reshape": [-1, -1]}, input=(3, 4)))
    with pytest.raises(SpecError, match="E391"):
        specdsl.load(spec_text({"reshape": [5, -1]}, input=(3, 4)))
    with pytest.raises(SpecError, match="E392"):
        specdsl.load(spec_text({"squeeze": 1}, input=(3, 4)))


# -- outputs: to_torch, NumPy, the emitted file, timm ------------------------------------------

CASES: list[tuple[Any, tuple[int, ...]]] = [
    ({"reshape": [1, -1]}, (6, 1, 1)),
    ({"reshape": [-1, 1, 1]}, (1, 6)),
    ({"view": [2, 3, -1]}, (6, 4, 5)),
    ({"reshape": [-1]}, (3, 4, 2, 2)),
    ({"unsqueeze": 1}, (3, 4)),
    ({"unsqueeze": -1}, (3, 4, 5)),
    ({"squeeze": 2}, (3, 1, 5)),
    ({"squeeze": -1}, (3, 4, 1)),
    ({"scale": 0.17}, (3, 4, 5)),
    ({"scale": -2}, (7,)),
    ("blurpool", (3, 8, 7)),
    ({"blurpool": {"filt": 5, "stride": 1, "pad_mode": "constant"}}, (2, 6, 6)),
    ({"blurpool": {"filt": 2, "stride": 2, "pad_mode": "replicate"}}, (2, 5, 6)),
    ({"blurpool": {"filt": 4, "stride": 3, "pad_mode": "circular"}}, (2, 7, 9)),
]


@pytest.mark.parametrize(("layer", "inp"), CASES, ids=[str(c[0]) for c in CASES])
def test_numpy_and_emitted_source_match_to_torch(layer: Any, inp: tuple[int, ...]) -> None:
    model = specdsl.load(spec_text(layer, {"identity": None}, input=inp))
    assert_backends_agree(model, np.random.default_rng(0).standard_normal((2, *inp)) * 4, rtol=1e-12, atol=1e-12)


def test_blurpool_is_timms_bit_for_bit_with_its_buffer_out_of_the_state_dict() -> None:
    layers = pytest.importorskip("timm.layers")
    for f, s, mode in ((3, 2, "reflect"), (5, 2, "reflect"), (2, 2, "constant"), (4, 1, "replicate")):
        model = specdsl.load(spec_text({"blurpool": {"filt": f, "stride": s, "pad_mode": mode}}, input=(4, 9, 8)))
        ours, theirs = to_torch(model).eval(), layers.BlurPool2d(4, filt_size=f, stride=s, pad_mode=mode)
        assert list(ours.state_dict()) == list(theirs.state_dict()) == []
        assert [(n.rpartition(".")[2], b.shape) for n, b in ours.named_buffers()] == [
            (n, b.shape) for n, b in theirs.named_buffers()]
        torch.testing.assert_close(ours.get_submodule("0").filt, theirs.filt, rtol=0, atol=0)
        x = torch.randn(2, 4, 9, 8)
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


ECA = """model eca
input [8, 6, 5]
layers {
    gap(keepdims=true) -> reshape([1, -1]) -> conv(1, k=5, pad=2, bias=false) as conv -> sigmoid as gate
    -> reshape([-1, 1, 1]) as g
    [@input, @g] -> mul
}
"""


def test_eca_gate_is_a_conv1d_over_the_channels_as_timms_module() -> None:
    model = specdsl.load(ECA)
    assert model.analysis.figures[model.graph.nodes[3].index].weights[0].shape == (1, 1, 5)
    module = to_torch(model).eval()
    assert isinstance(module.conv, nn.Conv1d) and tuple(module.conv.weight.shape) == (1, 1, 5)
    # ECA-Net's forward as its authors wrote it (mean, view, Conv1d, sigmoid, view, expand).
    x = torch.randn(3, 8, 6, 5)
    y = torch.sigmoid(module.conv(x.mean((2, 3)).view(3, 1, -1))).view(3, -1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(module(x), x * y.expand_as(x), rtol=0, atol=0)
    eca = pytest.importorskip("timm.layers").EcaModule(None, kernel_size=5)
    eca.load_state_dict(module.state_dict())  # conv.weight by name
    with torch.no_grad():
        torch.testing.assert_close(module(x), eca(x), rtol=0, atol=0)


# -- memory: a view where PyTorch's is -------------------------------------------------------


@pytest.mark.parametrize(("layers", "inp", "view"), [
    ([{"reshape": [1, -1]}], (6, 4, 5), True),
    ([{"permute": [0, 2, 3, 1]}, {"reshape": [-1]}], (6, 4, 5), False),  # a permuted tensor reshapes by copy
    ([{"permute": [0, 2, 3, 1]}, {"unsqueeze": 2}], (6, 4, 5), True),  # an unsqueeze is always a view
    ([{"permute": [0, 2, 3, 1]}, {"reshape": [2, 2, 5, 6]}], (6, 4, 5), True),  # splitting one axis is a view
])
def test_reshape_is_a_view_exactly_where_pytorchs_is(layers: list[Any], inp: tuple[int, ...], view: bool) -> None:
    from specdsl.ops.saved import SAVED
    from specdsl.passes.memory import saved_tensors

    model = specdsl.load(spec_text("relu", *layers, input=inp))
    report = saved_tensors(model.graph, model.analysis.figures, 2, SAVED)
    last = model.graph.nodes[-1].index
    x = torch.relu(torch.randn(2, *inp))
    y = to_torch(model).get_submodule(str(len(layers)))(x if len(layers) == 1 else x.permute(0, 2, 3, 1))
    assert (y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()) == view
    out, source = report.layouts[last], report.layouts[last - len(layers)]
    assert out is not None and source is not None
    assert (out.owner == source.owner) == view


# -- syntax: DSL and YAML, fmt and convert -----------------------------------------------------

EVERY_FORM = """model forms_fixed
input [4, 9, 8]
layers {
    blurpool -> blurpool(filt=5, stride=1, pad_mode=constant) -> blurpool(filt=2, pad_mode=replicate) -> scale(-0.5)
    -> unsqueeze(-1) -> squeeze(4) -> unsqueeze(dim=1) -> squeeze(dim=-4) -> reshape([2, -1]) -> conv(3, k=3, pad=1)
    -> view(shape=[-1]) -> linear(4)
    @input -> gap(keepdims=true) -> reshape([1, -1]) -> conv(1, k=3, pad=1, bias=false) -> sigmoid
    -> reshape([-1, 1, 1]) as gate
    [@input, @gate] -> mul -> blurpool(filt=4, stride=2) -> scale(value=2) -> gap
}
"""


def test_fmt_and_convert_round_trip_every_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from specdsl.cli.main import main

    def graph(path: Path) -> list[Any]:
        m = specdsl.load(path, warn=False)
        return [(n.path, n.op, n.inputs, m.analysis.figures[n.index].attrs) for n in m.graph.nodes]

    cnn = tmp_path / "m.cnn"
    cnn.write_text(EVERY_FORM)
    want = graph(cnn)
    assert main(["fmt", str(cnn)]) == 0
    assert graph(cnn) == want
    formatted = cnn.read_text()
    assert main(["fmt", str(cnn)]) == 0 and cnn.read_text() == formatted  # a fixed point
    assert main(["convert", str(cnn), "--to", "yaml"]) == 0
    yml = tmp_path / "m.yaml"
    yml.write_text(capsys.readouterr().out)
    assert "reshape: {shape: [2, -1]}" in yml.read_text()
    assert graph(yml) == want
    assert main(["convert", str(yml), "--to", "dsl"]) == 0
    back = tmp_path / "back.cnn"
    back.write_text(capsys.readouterr().out)
    assert graph(back) == want
