"""The zoo's timm models written with blurpool, reshape and scale (issue 26, items 1-3) against timm
itself (pretrained=False): resnetblur18 / resnetblur50 (BlurPool2d anti-aliasing), ecaresnet26t /
ecaresnet50t (ECA's Conv1d over the channels, between two reshapes) and inception_resnet_v2 (residual
scales 0.17, 0.10, 0.20). Parameters, buffers (blurpool's non-persistent filter included), MACs
(specdsl's figure, pinned, and torch's FLOP counter on timm's module), state_dict keys and shapes in
order, and outputs to 1e-5 after loading timm's state_dict by name (through specdsl's own
checkpoint loader, strict by name) at small inputs, odd and non-square ones included.

timm's module is built once per model and process (`_reference`: the tests only read it); its MACs at
full size are counted on the meta device, where the FLOP counter sees the same ops without running them."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from timm_reference import full_size_macs, reference  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import specdsl  # noqa: E402

# At the zoo's input (timm's pretrained input size): params and MACs as timm's module gives them
# (measured with timm 1.0.20), pinned so a change of either side shows.
FIGURES = {
    "resnetblur18": ((3, 224, 224), 11_689_512, 2_337_684_992),
    "resnetblur50": ((3, 224, 224), 25_557_032, 5_133_020_672),
    "ecaresnet26t": ((3, 256, 256), 16_011_916, 3_330_405_888),
    "ecaresnet50t": ((3, 256, 256), 25_573_814, 5_612_148_480),
    "inception_resnet_v2": ((3, 299, 299), 55_843_464, 13_155_794_016),
}
MODELS = list(FIGURES)
SIZES = {"resnetblur18": [(3, 64, 64), (3, 45, 37)], "resnetblur50": [(3, 64, 48)],
         "ecaresnet26t": [(3, 64, 64), (3, 45, 37)], "ecaresnet50t": [(3, 49, 64)],
         "inception_resnet_v2": [(3, 77, 75)]}  # 75: its smallest input


@functools.cache
def _reference(name: str) -> Any:
    return reference(name, ("running_var", "bn.weight", "bn1.weight"))


pytestmark = pytest.mark.usefixtures("torch_threads")


@pytest.mark.parametrize("name", MODELS)
def test_params_buffers_macs_and_keys(name: str) -> None:
    shape, params, macs = FIGURES[name]
    ours = specdsl.load(name, warn=False)
    theirs = _reference(name)
    assert ours.graph.input_shape == shape
    assert ours.totals.params == params == sum(p.numel() for p in theirs.parameters())
    assert ours.totals.buffers == sum(b.numel() for b in theirs.buffers())
    assert ours.totals.macs == macs == full_size_macs(name, shape, theirs)
    module = specdsl.to_torch(ours)
    assert list(module.state_dict()) == list(theirs.state_dict())
    assert [tuple(v.shape) for v in module.state_dict().values()] == \
        [tuple(v.shape) for v in theirs.state_dict().values()]
    # Non-persistent buffers (blurpool's filter): the same names, shapes and values, in no state_dict.
    persistent = set(theirs.state_dict())
    ours_extra = {k: v for k, v in module.named_buffers() if k not in persistent}
    theirs_extra = {k: v for k, v in theirs.named_buffers() if k not in persistent}
    assert list(ours_extra) == list(theirs_extra)
    for key, value in theirs_extra.items():
        torch.testing.assert_close(ours_extra[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("name,shape", [(n, s) for n in MODELS for s in SIZES[n]])
def test_outputs_match_after_loading_timms_state_dict(name: str, shape: tuple[int, ...], tmp_path: Path) -> None:
    theirs = _reference(name)
    ours = specdsl.load(name, input=shape, warn=False)
    checkpoint = tmp_path / "timm.pt"
    torch.save(theirs.state_dict(), checkpoint)
    module = specdsl.to_torch(ours, weights=checkpoint).eval()  # by name, strictly
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
