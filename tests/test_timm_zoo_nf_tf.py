"""The zoo's timm models written with conv's ws (weight standardisation) and pad=same_tf (TensorFlow's
SAME) against timm itself (pretrained=False): parameters, buffers, MACs, state_dict keys in order, and
outputs to 1e-5 after loading timm's state_dict by name, at small inputs and, for tf_efficientnet_b0,
at 231 x 231, where fixed paddings would be off by a pixel at every stride-2 conv.

timm's module is built once per model and process (`_reference`: the tests only read it); its MACs at
the zoo's input are counted on the meta device where timm's constructor allows (tf_efficientnet_b0; the
FLOP counter sees the same ops without running them)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from timm_reference import full_size_macs, reference  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import specdsl  # noqa: E402

MODELS = ["tf_efficientnet_b0", "nf_resnet26", "nf_resnet50"]
SIZES = {"tf_efficientnet_b0": [(3, 224, 224), (3, 231, 231), (3, 33, 47), (3, 64, 64)],
         "nf_resnet26": [(3, 224, 224), (3, 64, 64), (3, 45, 37)], "nf_resnet50": [(3, 64, 64)]}


pytestmark = pytest.mark.usefixtures("torch_threads")


@functools.cache
def _reference(name: str) -> Any:
    return reference(name, ("running_var", "gain", "bn1.weight"))


@pytest.mark.parametrize("name", MODELS)
def test_params_buffers_macs_and_keys(name: str) -> None:
    ours = specdsl.load(name, warn=False)
    theirs = _reference(name)
    assert ours.totals.params == sum(p.numel() for p in theirs.parameters())
    assert ours.totals.buffers == sum(b.numel() for b in theirs.buffers())
    assert ours.totals.macs == full_size_macs(name, ours.graph.input_shape, theirs)
    module = specdsl.to_torch(ours)
    assert list(module.state_dict()) == list(theirs.state_dict())
    assert [tuple(v.shape) for v in module.state_dict().values()] == \
        [tuple(v.shape) for v in theirs.state_dict().values()]


@pytest.mark.parametrize("name,shape", [(n, s) for n in MODELS for s in SIZES[n]])
def test_outputs_match_after_loading_timms_state_dict(name: str, shape: tuple[int, ...]) -> None:
    theirs = _reference(name)
    ours = specdsl.load(name, input=shape, warn=False)
    module = specdsl.to_torch(ours).eval()
    module.load_state_dict(theirs.state_dict())
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    counter = FlopCounterMode(display=False)
    with torch.no_grad():
        with counter:  # timm's MACs at this size, from the forward the outputs come from (2 samples)
            want = theirs(x)
        got = module(x)
    assert ours.totals.macs == int(counter.get_total_flops()) // 2 // 2
    assert got.shape == want.shape
    err = ((got - want).abs().max() / want.abs().max()).item()
    assert err < 1e-5, f"{name} at {shape}: max rel. error {err:.3g}"
