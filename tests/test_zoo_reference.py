"""Every zoo model that torchvision also has, against figures measured from torchvision itself.

The reference (tests/reference/torchvision_cnns.json, see the README beside it) holds, per
torchvision model, its input and output shape, parameters, buffers, MACs and state_dict layout.
A zoo model or variant whose name is a key there must match all of them; state_dict keys may differ (ours
follow the spec's paths) but the tensor shapes must come in the same order, so torchvision
weights load into the generated module by position.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import specdsl
from specdsl import zoo

REFERENCE = Path(__file__).parent / "reference" / "torchvision_cnns.json"


@cache
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))["models"]


def covered() -> list[str]:
    # Family files (resnet.cnn) count by their variants (resnet50).
    return [name for name in zoo.all_names() if name in reference()]


@cache
def loaded(name: str) -> specdsl.Model:
    return specdsl.load(name, warn=False)  # the zoo's warnings are asserted in test_zoo.py


def test_the_reference_covers_the_torchvision_part_of_the_zoo() -> None:
    # A rename on either side would silently drop a model from the checks below.
    names = set(covered())
    assert {"alexnet", "resnet50", "mobilenet_v2", "r3d_18"} <= names


@pytest.mark.parametrize("name", covered())
def test_input_and_output_shape(name: str) -> None:
    m, ref = loaded(name), reference()[name]
    assert list(m.graph.input_shape) == ref["input"]
    assert list(m.analysis.figures[m.graph.output].shape) == ref["output"]


@pytest.mark.parametrize("name", covered())
def test_params_buffers_and_macs(name: str) -> None:
    t, ref = loaded(name).totals, reference()[name]
    assert (t.params, t.buffers, t.macs) == (ref["params"], ref["buffers"], ref["macs"])


@pytest.mark.parametrize("name", covered())
def test_state_dict_shapes_in_torchvision_order(name: str) -> None:
    pytest.importorskip("torch")
    assert_torchvision_layout(loaded(name), reference()[name]["state_dict"])


def assert_torchvision_layout(model: specdsl.Model, theirs: list[tuple[str, list[int]]]) -> None:
    """The model's state_dict holds torchvision's tensor shapes, in torchvision's order."""
    import torch

    from specdsl.backends.torch.fx import to_torch

    # On the meta device no memory is allocated and initialisation costs nothing.
    with torch.device("meta"):
        module = to_torch(model)
    ours = [list(t.shape) for t in module.state_dict().values()]
    for i, (shape, (key, ref_shape)) in enumerate(zip(ours, theirs, strict=False)):
        assert shape == ref_shape, f"state_dict entry {i}: {shape}, torchvision's {key} is {ref_shape}"
    assert len(ours) == len(theirs)
