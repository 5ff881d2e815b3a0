"""Oracles for grn, rmsnorm and simplenorm (ConvNeXt V2's global response norm, timm's RmsNorm2d and
SimpleNorm2d and their channels-last forms): specdsl's static figures against PyTorch at run time
(accept/reject, shape, parameters, receptive field), its lowering against timm's modules and torch's
own F.rms_norm, the NumPy reference and the emitted file against to_torch, and the saved tensors
against autograd's hooks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backend_agreement import assert_backends_agree, assert_layer_is_the_module  # noqa: E402
from conftest import spec_text  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_torch_oracle import FEW, agree, one_layer_text, shapes, via_spec, via_torch  # noqa: E402
from test_train_memory import assert_exact  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import specdsl  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class _GRN(nn.Module):
    """Global response norm from the ConvNeXt V2 paper's formula, independently of specdsl's module:
    g = ‖x‖₂ over the spatial axes, n = g / (mean_c g + eps), y = x + bias + weight · x · n."""

    def __init__(self, c: int, eps: float, last: bool) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.zeros(c)), nn.Parameter(torch.zeros(c))
        self.eps, self.last = eps, last

    def forward(self, x: Any) -> Any:
        if x.ndim < 3:
            raise ValueError("no spatial axes")
        c = x.ndim - 1 if self.last else 1
        g = torch.linalg.vector_norm(x, 2, dim=[d for d in range(1, x.ndim) if d != c], keepdim=True)
        n = g / (g.mean(dim=c, keepdim=True) + self.eps)
        shape = [-1 if d == c else 1 for d in range(x.ndim)]
        return x + self.bias.view(shape) + self.weight.view(shape) * x * n


class _RMS(nn.Module):
    """torch's own F.rms_norm over the channels (moved last and back) or over the last axis; with
    ``centred`` x / √(var_unbiased + eps) from torch.var."""

    def __init__(self, c: int, eps: float, affine: bool, last: bool, centred: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c)) if affine else None
        self.eps, self.last, self.centred = eps, last, centred

    def forward(self, x: Any) -> Any:
        y = x if self.last else x.movedim(1, -1)
        if self.centred:
            if y.shape[-1] < 2:
                raise ValueError("the unbiased variance of one value")
            y = y / torch.sqrt(torch.var(y, dim=-1, keepdim=True) + self.eps)
            y = y if self.weight is None else y * self.weight
        else:
            y = F.rms_norm(y, (y.shape[-1],), self.weight, self.eps)
        return y if self.last else y.movedim(-1, 1)


# -- figures: accept/reject, shape, params, receptive field ---------------------------------------


@FEW
@given(shapes(ranks=(0, 1, 2, 3)), st.booleans(), st.sampled_from([1e-6, 1e-3]))
def test_grn_figures(x: tuple[int, ...], last: bool, eps: float) -> None:
    args = {"eps": eps, "channels_last": last}
    agree(via_spec(x, "grn", args), via_torch(lambda: _GRN(x[-1] if last else x[0], eps, last), [x]),
          one_layer_text(x, "grn", args))


@FEW
@given(shapes(ranks=(0, 1, 2, 3)), st.sampled_from(["rmsnorm", "simplenorm"]), st.booleans(), st.booleans())
def test_rmsnorm_and_simplenorm_figures(x: tuple[int, ...], op: str, affine: bool, last: bool) -> None:
    args = {"affine": affine, "channels_last": last}
    c = x[-1] if last else x[0]
    agree(via_spec(x, op, args), via_torch(lambda: _RMS(c, 1e-6, affine, last, op == "simplenorm"), [x]),
          one_layer_text(x, op, args))


def test_refusals_and_receptive_fields() -> None:
    with pytest.raises(SpecError, match="E306"):
        specdsl.load(spec_text("flatten", "grn", input=(3, 4, 4)))
    with pytest.raises(SpecError, match="E304"):
        specdsl.load(spec_text("simplenorm", input=(1, 4, 4)))
    with pytest.raises(SpecError, match="E304"):
        specdsl.load(spec_text({"simplenorm": {"channels_last": True}}, input=(3, 4, 1)))
    model = specdsl.load(spec_text({"conv": {"out": 4, "k": 3}}, "rmsnorm", "grn", "simplenorm", input=(3, 9, 9)))
    rfs = [fig.rf for _node, fig in model.rows()]
    assert rfs[-3] == rfs[-4]  # rmsnorm: each position alone
    assert all(axis.stride == 0 for axis in rfs[-2]) and rfs[-1] == rfs[-2]  # grn: the whole input
    assert [fig.trainable for _n, fig in model.rows()][-3:] == [4, 8, 4]
    assert model.totals.macs == 4 * 3 * 9 * 7 * 7  # the conv's alone: norms add none


# -- outputs: timm's modules, torch's rms_norm, NumPy, the emitted file ----------------------------


def _timm_cases() -> list[tuple[Any, Any, tuple[int, ...]]]:
    grn = pytest.importorskip("timm.layers.grn")
    norm = pytest.importorskip("timm.layers.norm")
    return [
        ("grn", grn.GlobalResponseNorm(6, channels_last=False), (6, 5, 4)),
        ({"grn": {"channels_last": True, "eps": 1e-3}}, grn.GlobalResponseNorm(4, eps=1e-3), (5, 3, 4)),
        ("rmsnorm", norm.RmsNorm2d(6), (6, 5, 4)),
        ({"rmsnorm": {"channels_last": True, "eps": 1e-5}}, norm.RmsNorm(4, eps=1e-5), (5, 3, 4)),
        ({"rmsnorm": {"affine": False}}, norm.RmsNorm2d(6, affine=False), (6, 5, 4)),
        ("simplenorm", norm.SimpleNorm2d(6), (6, 5, 4)),
        ({"simplenorm": {"channels_last": True}}, norm.SimpleNorm(4), (5, 3, 4)),
        ({"rmsnorm": {"channels_last": True, "eps": 1e-5}}, nn.RMSNorm(4, eps=1e-5), (5, 3, 4)),
    ]


def test_to_torch_is_timms_module_with_timms_weights() -> None:
    torch.manual_seed(0)
    for layer, theirs, inp in _timm_cases():
        imported = assert_layer_is_the_module(layer, theirs, inp)  # and back, its weights under their names
        assert imported.model.totals.params == sum(p.numel() for p in theirs.parameters())


CASES: list[tuple[Any, tuple[int, ...]]] = [
    ("grn", (6, 5, 4)),
    ({"grn": {"eps": 0.1}}, (3, 7)),
    ({"grn": {"channels_last": True}}, (2, 3, 4, 5)),
    ("rmsnorm", (6, 5, 4)),
    ({"rmsnorm": {"affine": False, "channels_last": True}}, (3, 4)),
    ({"rmsnorm": {"eps": 0.5}}, (7,)),
    ("simplenorm", (6, 5, 4)),
    ({"simplenorm": {"channels_last": True, "affine": False}}, (2, 3, 4)),
]


@pytest.mark.parametrize(("layer", "inp"), CASES, ids=[str(c[0]) for c in CASES])
def test_numpy_and_emitted_source_match_to_torch(layer: Any, inp: tuple[int, ...]) -> None:
    model = specdsl.load(spec_text(layer, {"identity": None}, input=inp))
    assert_backends_agree(model, np.random.default_rng(0).standard_normal((2, *inp)) * 4, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("frozen", [False, True])
def test_saved_tensors_are_autograds(frozen: bool) -> None:
    """What autograd keeps depends on whether the input needs grad (the first layer's does not) and
    whether the weights train: each op is placed first (input without grad) and after a conv, its
    weights training or frozen."""
    f = ", frozen=true" if frozen else ""
    norms = [f"grn({f[2:]})", f"rmsnorm({f[2:]})", f"simplenorm({f[2:]})", f"rmsnorm(affine=false{f})"]
    last = [f"grn(channels_last=true{f})", f"rmsnorm(channels_last=true, affine=false{f})",
            f"simplenorm(channels_last=true{f})"]
    for first in norms:
        layers = " -> ".join([first, "conv(6, k=1)", *norms, "permute([0, 2, 3, 1])", *last,
                              "permute([0, 3, 1, 2])", "conv(3, k=1)"])
        assert_exact(specdsl.load(f"model m\ninput [4, 6, 5]\nlayers {{\n    {layers}\n}}\n", warn=False))


@pytest.mark.parametrize("opset", [17, 18])
def test_onnx_export_reads_back_to_the_same_layers_and_weights(opset: int) -> None:
    """specdsl's ONNX form of each (reductions and element-wise ops) imports as the op it came from,
    its arguments and weights under their names, and computes the same in NumPy."""
    pytest.importorskip("onnx")
    from test_import_onnx import assert_same_figures

    from specdsl.backends.numpy import NumpyModel
    from specdsl.backends.numpy.weights import random_weights
    from specdsl.backends.onnx import to_onnx
    from specdsl.backends.onnx.imports import lift_onnx

    text = """model m
input [6, 5, 4]
layers {
    grn -> grn(eps=0.001) -> rmsnorm -> rmsnorm(eps=1e-05, affine=false) -> simplenorm -> simplenorm(affine=false)
    -> permute([0, 2, 3, 1]) -> grn(channels_last=true) -> rmsnorm(channels_last=true)
    -> simplenorm(channels_last=true, affine=false) -> permute([0, 3, 1, 2]) -> conv(3, k=1)
}
"""
    model = specdsl.load(text)
    weights = random_weights(model, 0, "float32")
    lifted = lift_onnx(to_onnx(model, weights, opset=opset).SerializeToString())
    assert not lifted.unmapped, [u.reason for u in lifted.unmapped]
    back = assert_same_figures(model, lifted)
    assert [n.args for n in back.graph.nodes[1:]] == [n.args for n in model.graph.nodes[1:]]
    assert sorted(lifted.weights) == sorted(weights)
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 4))
    np.testing.assert_allclose(NumpyModel(back, lifted.weights, "float64")(x),
                               NumpyModel(model, weights, "float64")(x), rtol=1e-6, atol=1e-6)
