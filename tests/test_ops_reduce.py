"""Oracles for stack (inputs along a new axis) and sum (over axes), the ops of split attention and
selective kernels: specdsl's static figures against PyTorch at run time (accept/reject, shape), the
receptive field through a selective kernel, the located errors, the lowerings against torch.stack and
Tensor.sum, the NumPy reference and the emitted source against to_torch, and fmt/convert."""

from __future__ import annotations

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

import specdsl  # noqa: E402
from specdsl.backends.torch.fx import to_torch  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402
from specdsl.ops.rule import AxisRF  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class _Fn(nn.Module):
    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs: Any) -> Any:
        return self.fn(*xs)


# -- figures: accept/reject and shape against PyTorch ------------------------------------------


@FEW
@given(shapes(ranks=(0, 1, 2, 3)), st.lists(st.integers(-5, 4), min_size=1, max_size=3), st.booleans())
def test_sum_figures(x: tuple[int, ...], dims: list[int], keep: bool) -> None:
    dim: int | list[int] = dims[0] if len(dims) == 1 else dims
    args = {"dim": dim, "keepdims": keep}
    spec = via_spec(x, "sum", args)
    what = one_layer_text(x, "sum", args)
    ndim = len(x) + 1
    named = [d + ndim if d < 0 else d for d in dims]
    if all(0 <= d < ndim for d in named) and len(set(named)) == len(named) and (
            0 in named or (not keep and len(named) == len(x))):
        return rejects(spec, what)  # the batch axis; a sample left with no axis
    agree(spec, via_torch(lambda: _Fn(lambda t: t.sum(tuple(dims), keepdim=keep)), [x]), what)


@FEW
@given(shapes(ranks=(0, 1, 2)), st.integers(-5, 4))
def test_stack_of_one_input_figures(x: tuple[int, ...], dim: int) -> None:
    spec = via_spec(x, "stack", {"dim": dim})
    what = one_layer_text(x, "stack", {"dim": dim})
    ndim = len(x) + 2
    if (dim + ndim if dim < 0 else dim) == 0:
        return rejects(spec, what)
    agree(spec, via_torch(lambda: _Fn(lambda t: torch.stack([t], dim)), [x]), what)


@pytest.mark.parametrize(("dim", "out"), [(1, (3, 4, 5, 6)), (2, (4, 3, 5, 6)), (-1, (4, 5, 6, 3)), (3, (4, 5, 3, 6))])
def test_stack_of_three_inputs_has_pytorchs_shape(dim: int, out: tuple[int, ...]) -> None:
    model = specdsl.load(spec_text({"conv": {"out": 4, "k": 1}, "name": "a"}, {"conv": {"out": 4, "k": 1},
                                   "inputs": ["input"], "name": "b"}, {"stack": dim, "inputs": ["a", "b", "a"]},
                                   input=(2, 5, 6)), warn=False)
    assert model.rows()[-1][1].shape == out
    assert tuple(torch.stack([torch.zeros(2, 4, 5, 6)] * 3, dim).shape[1:]) == out


def test_sum_counts_its_additions_in_the_full_convention() -> None:
    model = specdsl.load(spec_text({"sum": {"dim": [1, 3], "keepdims": True}}, input=(4, 5, 6)))
    fig = model.rows()[-1][1]
    assert fig.shape == (1, 5, 1) and fig.macs == 0 and fig.extra_ops == 4 * 5 * 6 - 5


def test_errors_are_located_with_their_codes() -> None:
    cases = [({"stack": 0}, "E311"), ({"stack": 5}, "E311"), ({"sum": 0}, "E311"), ({"sum": [1, -3]}, "E311"),
             ({"sum": [1, 2, 3]}, "E311"), ({"sum": 4}, "E311")]
    for layer, code in cases:
        with pytest.raises(SpecError, match=code):
            specdsl.load(spec_text(layer, input=(3, 4, 5)))
    with pytest.raises(SpecError, match="E312"):
        specdsl.load(spec_text({"conv": {"out": 4, "k": 1}, "name": "a"}, {"stack": 1, "inputs": ["a", "input"]},
                               input=(3, 4, 5)))


# -- receptive field ------------------------------------------------------------------------

SK = """model sk
input [4, 9, 9]
layers {
    conv(4, k=3, pad=1) as p0
    @input -> conv(4, k=3, pad=2, dilation=2) as p1
    [@p0, @p1] -> stack(1) as x
    sum(1) -> gap(keepdims=true) -> conv(8, k=1) as fc -> reshape([2, 4, 1, 1]) -> softmax(1) as w
    [@x, @w] -> mul -> sum(1) as fused
    conv(4, k=3, pad=1) as out
}
"""


def test_the_field_goes_through_a_selective_kernel() -> None:
    model = specdsl.load(SK, warn=False)
    rf = {str(n.path): model.analysis.figures[n.index].rf for n in model.graph.nodes}
    five = AxisRF(5, 1, 2)
    assert tuple(rf["x"]) == (AxisRF(1, 1, 0), five, five)  # the branch axis sees one element of each input
    assert tuple(rf["fused"]) == (five, five)  # the dilated branch's field, and the gate's whole input
    assert tuple(model.rows()[-1][1].rf) == (AxisRF(7, 1, 3),) * 2


SPLIT_ATTENTION = """model sa
input [4, 9, 9]
layers {
    conv(8, k=3, pad=1, groups=2) -> reshape([2, 4, 9, 9]) as x
    sum(1) -> gap(keepdims=true) -> conv(8, k=1) -> reshape([1, 2, -1]) -> permute([0, 2, 1, 3]) -> softmax(1)
    -> reshape([2, 4, 1, 1]) as w
    [@x, @w] -> mul -> sum(1) as fused
    conv(4, k=3, pad=1) as out
}
"""


def test_the_field_goes_through_split_attention() -> None:
    """The channels split into [R, C] ahead of the kept spatial axes (a unit field for C), the gate's
    whole input through the radix transpose, the sum over R: the conv's field, then the next conv's."""
    model = specdsl.load(SPLIT_ATTENTION, warn=False)
    rf = {str(n.path): model.analysis.figures[n.index].rf for n in model.graph.nodes}
    three = AxisRF(3, 1, 1)
    assert tuple(rf["x"]) == (AxisRF(1, 1, 0), three, three)
    assert tuple(rf["fused"]) == (three, three)
    assert tuple(rf["out"]) == (AxisRF(5, 1, 2),) * 2


# -- outputs: to_torch, NumPy, the emitted file -----------------------------------------------

CASES: list[tuple[list[Any], tuple[int, ...]]] = [
    ([{"sum": 1}], (3, 4, 5)),
    ([{"sum": {"dim": [-1, 2], "keepdims": True}}], (3, 4, 5)),
    ([{"stack": -1}, {"sum": {"dim": 2}}], (3, 4)),
    ([{"conv": {"out": 4, "k": 1}, "name": "a"}, {"stack": {"dim": 2}, "inputs": ["a", "input", "a"]},
      {"sum": [1, 2]}], (4, 5, 6)),
    ([{"reshape": [2, 3, 4, 5]}, {"sum": 1}], (6, 4, 5)),
]


@pytest.mark.parametrize(("layers", "inp"), CASES, ids=[str(c[0]) for c in CASES])
def test_numpy_and_emitted_source_match_to_torch(layers: list[Any], inp: tuple[int, ...]) -> None:
    model = specdsl.load(spec_text(*layers, {"identity": None}, input=inp), warn=False)
    assert_backends_agree(model, np.random.default_rng(0).standard_normal((2, *inp)), rtol=1e-12, atol=1e-12)


def test_to_torch_is_torch_stack_and_sum() -> None:
    model = specdsl.load(SK, warn=False)
    module = to_torch(model).eval()
    x = torch.randn(2, 4, 9, 9)
    p0, p1 = module.p0(x), module.p1(x)
    stacked = torch.stack([p0, p1], 1)
    w = torch.softmax(module.fc(stacked.sum(1).mean((2, 3), keepdim=True)).view(2, 2, 4, 1, 1), 1)
    with torch.no_grad():
        torch.testing.assert_close(module(x), module.out((stacked * w).sum(1)))


# -- syntax: DSL and YAML, fmt and convert -----------------------------------------------------


def test_fmt_and_convert_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from specdsl.cli.main import main

    def graph(path: Path) -> list[Any]:
        m = specdsl.load(path, warn=False)
        return [(n.path, n.op, n.inputs, m.analysis.figures[n.index].attrs) for n in m.graph.nodes]

    cnn = tmp_path / "m.cnn"
    cnn.write_text(SK.replace("sum(1) -> gap", "sum(dim=[1], keepdims=false) -> gap"))
    want = graph(cnn)
    assert main(["fmt", str(cnn)]) == 0
    assert graph(cnn) == want
    assert main(["convert", str(cnn), "--to", "yaml"]) == 0
    yml = tmp_path / "m.yaml"
    yml.write_text(capsys.readouterr().out)
    assert graph(yml) == want
    assert main(["convert", str(yml), "--to", "dsl"]) == 0
    back = tmp_path / "back.cnn"
    back.write_text(capsys.readouterr().out)
    assert graph(back) == want
