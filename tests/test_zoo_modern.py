"""EfficientNet-B0, MobileNetV3-Small/-Large and LR-ASPP: the zoo specs against torchvision.

Totals and state_dict layouts come from tests/reference/torchvision_cnns.json (measured from
torchvision itself, see the README beside it). The other checks cover what equal totals cannot
show: batch-norm eps and momentum, stochastic depth, the dilated backbone and the head's taps,
and that the emitted source computes what to_torch computes. Where torchvision is importable,
its weights are loaded into ours by position and the outputs compared.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from test_zoo_reference import assert_torchvision_layout

import specdsl

REFERENCE = Path(__file__).parent / "reference" / "torchvision_cnns.json"
MODELS = ("efficientnet_b0", "mobilenet_v3_small", "mobilenet_v3_large", "lraspp_mobilenet_v3_large")
# Small inputs that still reach every layer (the LR-ASPP taps are 8x8 and 4x4 at 64x64).
SMALL = (3, 64, 64)


@cache
def reference(name: str) -> dict[str, Any]:
    models: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))["models"]
    return models[name]


@cache
def loaded(name: str, small: bool = False) -> specdsl.Model:
    return specdsl.load(name, input=SMALL) if small else specdsl.load(name)


@pytest.mark.parametrize("name", MODELS)
def test_shapes_params_buffers_and_macs_equal_torchvision(name: str) -> None:
    m, ref = loaded(name), reference(name)
    assert list(m.graph.input_shape) == ref["input"]
    assert list(m.analysis.figures[m.graph.output].shape) == ref["output"]
    t = m.totals
    assert (t.params, t.buffers, t.macs) == (ref["params"], ref["buffers"], ref["macs"])
    assert m.warnings == []


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_shapes_come_in_torchvision_order(name: str) -> None:
    pytest.importorskip("torch")
    assert_torchvision_layout(loaded(name), reference(name)["state_dict"])


@pytest.mark.parametrize("name", MODELS)
def test_emitted_source_computes_what_to_torch_computes(name: str) -> None:
    pytest.importorskip("torch")
    from specdsl.backends.torch.emit import check_emitted, emit

    model = loaded(name, small=True)
    assert check_emitted(model, emit(model)) == []


def _batch_norms(name: str) -> list[tuple[float, float]]:
    torch = pytest.importorskip("torch")
    from specdsl.backends.torch.fx import to_torch

    with torch.device("meta"):
        module = to_torch(loaded(name))
    return [(m.eps, m.momentum) for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]


@pytest.mark.parametrize(("name", "count", "settings"), [
    ("efficientnet_b0", 49, [(1e-5, 0.1)]),  # torchvision passes no norm_layer for B0
    ("mobilenet_v3_small", 34, [(1e-3, 0.01)]),
    ("mobilenet_v3_large", 46, [(1e-3, 0.01)]),
])
def test_batch_norm_eps_and_momentum(name: str, count: int, settings: list[tuple[float, float]]) -> None:
    norms = _batch_norms(name)
    assert len(norms) == count
    assert set(norms) == set(settings)


def test_lraspp_backbone_keeps_mobilenet_norms_and_head_uses_defaults() -> None:
    norms = _batch_norms("lraspp_mobilenet_v3_large")
    assert norms == [(1e-3, 0.01)] * 46 + [(1e-5, 0.1)]


def test_efficientnet_stochastic_depth_grows_over_the_blocks() -> None:
    # torchvision: p = 0.2 * i / 16 for block i, applied only where the block has its shortcut.
    graph = loaded("efficientnet_b0").graph
    drops = [n.args for n in graph.nodes if n.op == "stochastic_depth"]
    expected = [0.2 * i / 16 for i in (2, 4, 6, 7, 9, 10, 12, 13, 14)]
    assert [d.p for d in drops] == pytest.approx(expected)  # type: ignore[union-attr]
    assert {d.mode for d in drops} == {"row"}  # type: ignore[union-attr]


def test_lraspp_taps_and_dilated_backbone() -> None:
    m = loaded("lraspp_mobilenet_v3_large")
    low = m.node("classifier.low_classifier")[0].inputs[0]  # the head's tap @backbone.4
    assert m.graph.nodes[low].path.startswith("backbone[4].")
    assert m.analysis.figures[low].shape == (40, 65, 65)  # C2, output stride 8
    assert m.node("backbone[16][2]")[1].shape == (960, 33, 33)  # dilation instead of the C4 stride: output stride 16
    assert m.node("classifier.logits")[1].shape == (21, 65, 65)
    dilated = [n for n in m.graph.nodes if n.op == "conv" and n.args.dilation not in (1, [1, 1])]  # type: ignore[union-attr]
    assert len(dilated) == 3 and all(n.args.groups == n.args.out for n in dilated)  # type: ignore[union-attr]


def test_lraspp_output_follows_an_overridden_input() -> None:
    m = specdsl.load("lraspp_mobilenet_v3_large", input=[3, 97, 131])
    assert m.analysis.figures[m.graph.output].shape == (21, 97, 131)


TORCHVISION = {
    "efficientnet_b0": ("efficientnet_b0", {}),
    "mobilenet_v3_small": ("mobilenet_v3_small", {}),
    "mobilenet_v3_large": ("mobilenet_v3_large", {}),
    "lraspp_mobilenet_v3_large": ("segmentation.lraspp_mobilenet_v3_large", {"weights_backbone": None}),
}


@pytest.mark.parametrize("name", MODELS)
def test_torchvision_weights_load_by_position_and_give_the_same_output(name: str) -> None:
    torch = pytest.importorskip("torch")
    tvm = pytest.importorskip("torchvision.models")
    from specdsl.backends.torch.fx import to_torch

    attr, kwargs = TORCHVISION[name]
    builder: Any = tvm
    for part in attr.split("."):
        builder = getattr(builder, part)
    gen = torch.Generator().manual_seed(0)
    theirs = builder(weights=None, **kwargs).double().eval()
    for mod in theirs.modules():
        # Small running variances make eps matter; random statistics make every norm count.
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=gen, dtype=torch.float64) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=gen, dtype=torch.float64) * 0.01 + 0.001)
            mod.weight.data.copy_(mod.running_var.sqrt() * (torch.rand(n, generator=gen, dtype=torch.float64) + 0.5))
            mod.bias.data.copy_(torch.randn(n, generator=gen, dtype=torch.float64) * 0.1)
    model = loaded(name, small=True)
    ours = to_torch(model).double().eval()
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values(), strict=True)))
    x = torch.randn(2, *SMALL, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        expected = theirs(x)
        got = ours(x)
    if isinstance(expected, dict):
        expected = expected["out"]
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9 * float(expected.abs().max()))
