"""The zoo's GoogLeNet and Inception v3 with torchvision's auxiliary classifiers (aux=true).

tests/reference/aux_heads.json (written by make_aux_heads.py beside it, from torchvision 0.29.1
with aux_logits=True) holds their input, train-mode output shapes, parameters, buffers, MACs and
state_dict layout. The shapes must come in torchvision's order, the aux heads included, and for the
models converted to torchvision's names (test_torchvision_keys) the keys too, so torchvision's
weights load by name. With aux=false the models are exactly as before: test_zoo_reference
checks them against tests/reference/torchvision_cnns.json.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from test_torchvision_keys import converted
from test_zoo_reference import assert_torchvision_layout
from test_zoo_reference import reference as reference_without_aux

import specdsl
from specdsl.cli.main import main

AUX_REFERENCE = Path(__file__).parent / "reference" / "aux_heads.json"
NAMES = ["googlenet", "inception_v3"]


@cache
def reference() -> dict[str, Any]:
    return json.loads(AUX_REFERENCE.read_text(encoding="utf-8"))["models"]


@cache
def with_aux(name: str) -> specdsl.Model:
    return specdsl.load(name, params={"aux": True})


@pytest.mark.parametrize("name", NAMES)
def test_input_and_output_shapes(name: str) -> None:
    m, ref = with_aux(name), reference()[name]
    assert list(m.graph.input_shape) == ref["input"]
    assert [key for key, _ in m.graph.outputs] == [None] * len(ref["outputs"])  # a tuple, as torchvision's
    assert [list(m.analysis.figures[node].shape) for _, node in m.graph.outputs] == ref["outputs"]


@pytest.mark.parametrize("name", NAMES)
def test_params_buffers_and_macs(name: str) -> None:
    t, ref = with_aux(name).totals, reference()[name]
    assert (t.params, t.buffers, t.macs) == (ref["params"], ref["buffers"], ref["macs"])


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_shapes_in_torchvision_order(name: str) -> None:
    pytest.importorskip("torch")
    assert_torchvision_layout(with_aux(name), reference()[name]["state_dict"])


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="not converted yet"))
                                  if not converted(n) else n for n in NAMES])
def test_state_dict_keys_are_torchvisions_aux_heads_included(name: str) -> None:
    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        module = specdsl.to_torch(with_aux(name))
    assert [(k, list(v.shape)) for k, v in module.state_dict().items()] == \
        [(k, list(s)) for k, s in reference()[name]["state_dict"]]


@pytest.mark.parametrize("name", NAMES)
def test_aux_false_is_the_plain_model(name: str) -> None:
    m, ref = specdsl.load(name), reference_without_aux()[name]
    assert m.graph.outputs == ()  # one output: the plain logits tensor
    assert (m.totals.params, m.totals.buffers, m.totals.macs) == (ref["params"], ref["buffers"], ref["macs"])
    assert specdsl.load(name, params={"aux": False}).totals == m.totals


@pytest.mark.parametrize("name", NAMES)
def test_classes_sets_every_head(name: str) -> None:
    m = specdsl.load(name, params={"aux": True, "classes": 10})
    assert [list(m.analysis.figures[node].shape) for _, node in m.graph.outputs] == \
        [[10]] * len(reference()[name]["outputs"])
    assert list(specdsl.load(name, params={"classes": 10}).rows()[-1][1].shape) == [10]


# Inception v3's aux head pools Mixed_6e (k=5, stride 3) and then convolves it with k=5: that needs
# Mixed_6e at 17x17, so the model's own 299x299 (the smallest input that gives it). In train mode
# its batch norm after the 1x1 map needs a batch of 2; GoogLeNet's heads fit 64x64 at batch 1.
RUN = {"googlenet": (1, 3, 64, 64), "inception_v3": (2, 3, 299, 299)}


@pytest.mark.parametrize("name", NAMES)
def test_train_mode_returns_a_tuple_like_torchvisions(name: str) -> None:
    torch = pytest.importorskip("torch")
    from specdsl.backends.torch.fx import to_torch

    module = to_torch(with_aux(name), seed=0).train()
    batch = RUN[name][0]
    with torch.no_grad():
        out = module(torch.randn(*RUN[name]))
    assert isinstance(out, tuple)
    assert [tuple(t.shape) for t in out] == [(batch, *shape) for shape in reference()[name]["outputs"]]
    assert all(torch.isfinite(t).all() for t in out)


def test_api_and_cli_take_the_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    assert specdsl.load("googlenet", params={"aux": True}).totals.params == reference()["googlenet"]["params"]
    assert main(["check", "googlenet", "--param", "aux=true"]) == 0
    assert "13,004,888" in capsys.readouterr().out
    assert main(["check", "inception_v3", "--param", "aux=true", "--param", "classes=10"]) == 0
