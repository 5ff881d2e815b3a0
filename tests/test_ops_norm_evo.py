"""Oracles for evonorm and frn (timm's EvoNorm2dS0 / EvoNorm2dS0a and FilterResponseNormTlu2d):
specdsl's static figures against timm's modules at run time (accept/reject, shape, parameters), its
lowering against timm's modules with timm's weights, the NumPy reference and the emitted file against
to_torch (1d and 3d too, beyond timm's 2d), the saved tensors against autograd's hooks, and the ONNX
export against the NumPy reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
evo_norm = pytest.importorskip("timm.layers.evo_norm")
frn_module = pytest.importorskip("timm.layers.filter_response_norm")

from backend_agreement import assert_backends_agree, assert_layer_is_the_module  # noqa: E402
from conftest import spec_text  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_torch_oracle import FEW, agree, one_layer_text, shapes, via_spec, via_torch  # noqa: E402
from test_train_memory import assert_exact  # noqa: E402

import specdsl  # noqa: E402
import specdsl.backends.numpy as nb  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@FEW
@given(shapes(ranks=(0, 2)), st.sampled_from([1, 2, 3, 4]), st.booleans(), st.booleans())
def test_evonorm_figures(x: tuple[int, ...], groups: int, act: bool, s0a: bool) -> None:
    args = {"groups": groups, "apply_act": act, "variant": "s0a" if s0a else "s0"}
    cls = evo_norm.EvoNorm2dS0a if s0a else evo_norm.EvoNorm2dS0
    # timm's S0 without its gate never groups (nothing to refuse); specdsl checks groups all the same.
    if act or s0a:
        agree(via_spec(x, "evonorm", args), via_torch(lambda: cls(x[0], groups=groups, apply_act=act), [x]),
              one_layer_text(x, "evonorm", args))


@FEW
@given(shapes(ranks=(0, 2)), st.booleans())
def test_frn_figures(x: tuple[int, ...], act: bool) -> None:
    agree(via_spec(x, "frn", {"apply_act": act}),
          via_torch(lambda: frn_module.FilterResponseNormTlu2d(x[0], apply_act=act), [x]),
          one_layer_text(x, "frn", {"apply_act": act}))


def test_refusals() -> None:
    with pytest.raises(SpecError, match="E303"):
        specdsl.load(spec_text({"evonorm": {"groups": 4}}, input=(6, 4, 4)))
    with pytest.raises(SpecError, match="E306"):
        specdsl.load(spec_text("flatten", "frn", input=(3, 4, 4)))
    model = specdsl.load(spec_text({"conv": {"out": 4, "k": 3}}, {"evonorm": {"groups": 2}}, "frn",
                                   {"evonorm": {"groups": 2, "apply_act": False}}, input=(3, 9, 9)))
    assert [fig.trainable for _n, fig in model.rows()][-3:] == [12, 12, 8]
    assert model.totals.macs == 4 * 3 * 9 * 7 * 7  # the conv's alone: norms add none


def _timm_cases() -> list[tuple[Any, Any, tuple[int, ...]]]:
    return [
        ({"evonorm": {"groups": 2, "eps": 1e-3, "variant": "s0a"}}, evo_norm.EvoNorm2dS0a(8, groups=2), (8, 5, 4)),
        ({"evonorm": {"groups": 8}}, evo_norm.EvoNorm2dS0(8, groups=8), (8, 5, 4)),
        ({"evonorm": {"groups": 2}}, evo_norm.EvoNorm2dS0(8, group_size=4), (8, 5, 4)),
        ({"evonorm": {"groups": 4, "apply_act": False}}, evo_norm.EvoNorm2dS0(8, groups=4, apply_act=False), (8, 5, 4)),
        ({"evonorm": {"groups": 4, "apply_act": False, "variant": "s0a", "eps": 1e-3}},
         evo_norm.EvoNorm2dS0a(8, groups=4, apply_act=False), (8, 5, 4)),
        ("frn", frn_module.FilterResponseNormTlu2d(6), (6, 5, 4)),
        ({"frn": {"apply_act": False, "eps": 1e-3}}, frn_module.FilterResponseNormTlu2d(6, apply_act=False, eps=1e-3),
         (6, 5, 4)),
    ]


def test_to_torch_is_timms_module_with_timms_weights() -> None:
    torch.manual_seed(0)
    for layer, theirs, inp in _timm_cases():
        imported = assert_layer_is_the_module(layer, theirs, inp)  # and back, to the layer it lowers from
        mine = specdsl.load(spec_text(layer, input=inp))
        assert specdsl.load(imported.text).graph.nodes[1].args == mine.graph.nodes[1].args


CASES: list[tuple[Any, tuple[int, ...]]] = [
    ({"evonorm": {"groups": 2}}, (6, 5, 4)),
    ({"evonorm": {"groups": 3, "eps": 0.1}}, (3, 7)),
    ({"evonorm": {"groups": 1, "apply_act": False, "variant": "s0a"}}, (4, 3, 4, 5)),
    ({"evonorm": {"groups": 2, "apply_act": False}}, (4, 3, 4)),
    ("frn", (6, 5, 4)),
    ({"frn": {"apply_act": False, "eps": 0.5}}, (3, 7)),
    ("frn", (2, 3, 4, 5)),
]


@pytest.mark.parametrize(("layer", "inp"), CASES, ids=[str(c[0]) for c in CASES])
def test_numpy_and_emitted_source_match_to_torch(layer: Any, inp: tuple[int, ...]) -> None:
    model = specdsl.load(spec_text(layer, {"identity": None}, input=inp))
    rng = np.random.default_rng(1)
    weights = {k: rng.uniform(-1.5, 1.5, np.shape(v)) for k, v in nb.to_numpy(model).weights.items()}
    x = np.random.default_rng(0).standard_normal((2, *inp)) * 4
    assert_backends_agree(model, x, weights=weights, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("frozen", [False, True])
def test_saved_tensors_are_autograds(frozen: bool) -> None:
    """What autograd keeps depends on whether the input needs grad (the first layer's does not), whether
    the weights train, and whether the group deviation's expansion is a view (groups 1 or C) or a copy."""
    f = ", frozen=true" if frozen else ""
    norms = [f"evonorm(groups=2{f})", f"evonorm(groups=6{f})", f"evonorm(groups=1{f})",
             f"evonorm(groups=3, apply_act=false{f})", f"evonorm(groups=3, apply_act=false, variant=s0a{f})",
             f"evonorm(groups=6, apply_act=false, variant=s0a{f})", f"frn({f[2:]})", f"frn(apply_act=false{f})"]
    for first in norms:
        layers = " -> ".join([first, "conv(6, k=1)", *norms, "conv(3, k=1)"])
        assert_exact(specdsl.load(f"model m\ninput [6, 5, 4]\nlayers {{\n    {layers}\n}}\n", warn=False))


def test_onnx_export_matches_numpy() -> None:
    ort = pytest.importorskip("onnxruntime")
    from specdsl.backends.numpy import NumpyModel
    from specdsl.backends.numpy.weights import random_weights
    from specdsl.backends.onnx import to_onnx

    model = specdsl.load(spec_text({"evonorm": {"groups": 2}}, {"evonorm": {"groups": 3, "apply_act": False}},
                                   {"evonorm": {"groups": 6, "apply_act": False, "variant": "s0a"}}, "frn",
                                   {"frn": {"apply_act": False}}, input=(6, 5, 4)))
    weights = random_weights(model, 0, "float32")
    session = ort.InferenceSession(to_onnx(model, weights, opset=17).SerializeToString())
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 4)).astype(np.float32)
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, NumpyModel(model, weights, "float32")(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("trains", [True, False])
def test_saved_tensors_under_bf16_autocast_are_autograds(grad: bool, trains: bool) -> None:
    """Under autocast (bfloat16 input) the statistics run on timm's float32 copy and the parameters are
    cast to bfloat16: the rules against autograd's hooks under CPU autocast (where pow keeps x itself;
    CUDA's float32 list makes frn's pow keep a float32 copy, as the rule says for device cuda)."""
    from specdsl.backends.torch.modules_evo import EvoNorm, FilterResponseNorm
    from specdsl.ops.norm_evo import EvoNormAttrs, FRNAttrs
    from specdsl.ops.saved_norm_evo import evonorm, frn
    from specdsl.ops.saved_records import Call

    width = {"float32": 4, "": 2}
    shape = (4, 6, 5, 4)
    for module, rule, attrs in [
        (EvoNorm(6, groups=2), evonorm, EvoNormAttrs(6, 2, 1e-5, True, "s0")),
        (EvoNorm(6, groups=6), evonorm, EvoNormAttrs(6, 6, 1e-5, True, "s0")),
        (EvoNorm(6, groups=3, apply_act=False, variant="s0a"), evonorm, EvoNormAttrs(6, 3, 1e-5, False, "s0a")),
        (EvoNorm(6, groups=3, apply_act=False), evonorm, EvoNormAttrs(6, 3, 1e-5, False, "s0")),
        (FilterResponseNorm(6), frn, FRNAttrs(6, 1e-5, True)),
        (FilterResponseNorm(6, apply_act=False), frn, FRNAttrs(6, 1e-5, False)),
    ]:
        module.requires_grad_(trains)
        x = torch.randn(shape, dtype=torch.bfloat16).requires_grad_(grad)
        kept: dict[int, int] = {}

        def pack(t: Any, kept: dict[int, int] = kept) -> Any:
            kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            module(x)
        params = {p.untyped_storage().data_ptr() for p in module.parameters()}
        got = sorted(n for ptr, n in kept.items() if ptr not in params)
        call = Call(attrs, (shape,), shape, ("bfloat16",), (grad,), trains, False, "cpu", "bfloat16",
                    tuple(p.numel() for p in module.parameters()))
        saved = rule(call)
        want = sorted([s.numel * width[s.dtype] for s in saved if s.kind == "new"]
                      + ([x.numel() * 2] if any(s.kind == "input" for s in saved) else []))
        assert got == want, (module, grad, trains)


@pytest.mark.parametrize("opset", [17, 18])
def test_onnx_export_reads_back_to_the_same_layers_and_weights(opset: int) -> None:
    """specdsl's ONNX form of each imports as the op it came from, its arguments and weights under their
    names (all but evonorm's s0 without its gate: a bare affine), and computes the same in NumPy."""
    pytest.importorskip("onnx")
    from test_import_onnx import assert_same_figures

    from specdsl.backends.numpy import NumpyModel
    from specdsl.backends.numpy.weights import random_weights
    from specdsl.backends.onnx import to_onnx
    from specdsl.backends.onnx.imports import lift_onnx

    text = """model m
input [6, 5, 4]
layers {
    evonorm(groups=2) -> evonorm(groups=3, eps=0.001, variant=s0a) -> evonorm(groups=6, apply_act=false, variant=s0a)
    -> frn -> frn(eps=0.001, apply_act=false) -> conv(6, k=1) -> reshape([6, 20]) -> evonorm(groups=1) -> frn
    -> conv(3, k=1)
}
"""
    model = specdsl.load(text)
    weights = random_weights(model, 0, "float32")
    lifted = lift_onnx(to_onnx(model, weights, opset=opset).SerializeToString())
    assert not lifted.unmapped, [u.reason for u in lifted.unmapped]
    back = assert_same_figures(model, lifted)
    # variant s0a with the gate computes what s0 does: the ONNX form cannot tell them apart.
    same = specdsl.load(text.replace("eps=0.001, variant=s0a)", "eps=0.001)"))
    want = [n.args for n in same.graph.nodes[1:]]
    assert [n.args for n in back.graph.nodes[1:]] == want
    assert sorted(lifted.weights) == sorted(weights)
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 4))
    np.testing.assert_allclose(NumpyModel(back, lifted.weights, "float64")(x),
                               NumpyModel(model, weights, "float64")(x), rtol=1e-6, atol=1e-6)
