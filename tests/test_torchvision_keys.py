"""Names are the checkpoint (issue 24): every zoo model's state_dict keys are torchvision's, in order.

The reference (tests/reference/torchvision_cnns.json) lists each torchvision CNN's state_dict as
(key, shape) pairs in torchvision's order. A converted model gives exactly those, from to_torch
and from the NumPy backend's weight keys (the same node paths), so torchvision checkpoints load
by name. Models not converted yet are listed in NOT_YET_CONVERTED, expected to fail (strictly:
a model that starts to match must leave the list, so it only shrinks). The rules a spec follows
are the README's "Names" section.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import specdsl
from specdsl.errors import SpecError

REFERENCE = Path(__file__).parent / "reference" / "torchvision_cnns.json"

# Zoo models whose module names are not torchvision's yet (they load with match="position").
NOT_YET_CONVERTED: frozenset[str] = frozenset()


@cache
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))["models"]


def converted(name: str) -> bool:
    """Whether a zoo model's keys are torchvision's (so its checkpoints load by name)."""
    return name not in NOT_YET_CONVERTED


def _cases() -> list[Any]:
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason="not converted yet"))
            if name in NOT_YET_CONVERTED else name for name in reference()]


def test_the_list_names_only_reference_models() -> None:
    assert NOT_YET_CONVERTED <= set(reference())


@pytest.mark.parametrize("name", _cases())
def test_state_dict_keys_are_torchvisions_in_order(name: str) -> None:
    torch = pytest.importorskip("torch")
    model = specdsl.load(name, warn=False)
    # On the meta device nothing is allocated or initialised.
    with torch.device("meta"):
        module = specdsl.to_torch(model)
    ours = [(k, list(v.shape)) for k, v in module.state_dict().items()]
    theirs = [(k, list(s)) for k, s in reference()[name]["state_dict"]]
    assert ours == theirs
    # The NumPy backend keys its weights by the same node paths.
    from specdsl.backends.numpy.weights import weight_shapes

    assert [(k, list(shape)) for k, (shape, _) in weight_shapes(model).items()] == theirs


# -- names a spec gives ------------------------------------------------------------


def _error(text: str) -> Any:
    with pytest.raises(SpecError) as info:
        specdsl.load(text)
    return info.value.diagnostics[0]


DUPLICATE = """model dup
input [3, 8, 8]
layers {
    conv(4, k=3) as stem
    conv(4, k=3) as stem
}
"""


def test_a_duplicated_name_is_a_located_error_noting_the_first() -> None:
    d = _error(DUPLICATE)
    assert d.code == "E315" and "'stem'" in d.message
    assert (d.loc.line, d.loc.col) == (5, 21)
    assert any("first defined at" in n and ":4:" in n for n in d.notes)


@pytest.mark.parametrize(("name", "why"), [("__class__", "`__`"), ("forward", "nn.Module"), ("12", "digits"),
                                           ("a.b", "NAME.k"), ("input", "nn.Module")])
def test_an_invalid_name_is_a_located_error(name: str, why: str) -> None:
    d = _error(f"model bad\ninput [3, 8, 8]\nlayers {{\n    conv(4, k=3) as \"{name}\"\n}}\n")
    assert d.code == "E380" and why in d.message
    assert (d.loc.line, d.loc.col) == (4, 21)


def test_names_in_yaml_are_checked_too() -> None:
    d = _error("model: bad\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3}\n    name: train\n")
    assert d.code == "E380" and (d.loc.line, d.loc.col) == (5, 11)


PATHS = """model paths(n=3)
input [3, 16, 16]
block unit(c: int) = residual(shortcut=auto, post=relu) {
    conv(c, k=3, pad=1, bias=false) as conv1 -> bn as bn1
}
layers {
    conv(8, k=3, pad=1) -> relu if n > 5 -> relu
    stage { unit(16) -> unit(16) x(n - 1) } as layer1
    stage { conv(8, k=1) -> relu } x2
    unit(8) x(2, j) as "block-{j + 1}"
    gap -> linear(10) as fc
}
"""


def test_paths_follow_the_naming_rules() -> None:
    m = specdsl.load(PATHS)
    paths = [n.path for n in m.graph.nodes[1:] if n.op in ("conv", "linear", "bn")]
    assert paths == [
        "[0]",  # the relu switched off by `if` takes no place
        "layer1[0].conv1", "layer1[0].bn1", "layer1[0].downsample[0]", "layer1[0].downsample[1]",
        "layer1[1].conv1", "layer1[1].bn1", "layer1[2].conv1", "layer1[2].bn1",
        "[3]", "[5]",  # an unnamed stage is transparent: its layers number on
        "block-1.conv1", "block-1.bn1", "block-2.conv1", "block-2.bn1",  # copies named by a template
        "fc",
    ]


def test_emitted_source_adds_modules_that_are_not_attributes() -> None:
    pytest.importorskip("torch")
    from specdsl.backends.torch.emit import check_emitted, emit

    model = specdsl.load(PATHS)
    source = emit(model)
    assert "self.add_module('block-1', " in source and "self.get_submodule('block-1')" in source
    assert "self.add_module('0', nn.Conv2d(" in source and "self.get_submodule('0')" in source
    assert "self.layer1 = nn.Sequential(" in source and "self.fc = nn.Linear(" in source
    # The same state_dict (keys, order, shapes) and outputs as to_torch's; every zoo model is
    # checked so in test_torch_backend.test_emitted_module_matches_in_memory_module.
    assert check_emitted(model, source) == []


NUMBERED = """model numbered
input [3, 16, 16]
block aspp_like() = inception(numbered=true) {
    branch b0 {
        conv(4, k=1) -> bn
    }
    branch pooling {
        adaptive_avgpool(1) -> conv(4, k=1) -> relu as pooled
        [@pooled, @input] -> upsample(mode=bilinear)
    }
}
layers {
    aspp_like() as convs
}
"""


def test_numbered_inception_branches_are_positional_like_a_module_list() -> None:
    # torchvision's DeepLabV3 keeps ASPP's branches in an nn.ModuleList (classifier.0.convs.4.1.weight).
    m = specdsl.load(NUMBERED)
    assert [n.path for n in m.graph.nodes if n.op in ("conv", "bn")] == ["convs[0][0]", "convs[0][1]", "convs[1][1]"]
    named = specdsl.load(NUMBERED.replace("(numbered=true)", ""))
    assert [n.path for n in named.graph.nodes if n.op == "conv"] == ["convs.b0[0]", "convs.pooling[1]"]
