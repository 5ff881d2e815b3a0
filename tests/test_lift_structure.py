"""Structure recovery (specdsl.lift): every zoo model, lifted as a capture would hand it over,
recovers into a spec whose graph is the model's, node for node (tests/lift_oracle.py), and whose
text `specdsl fmt` leaves as it is."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from lift_oracle import lifted
from strategies import spec_text, specs

import specdsl
from specdsl import zoo
from specdsl.api import read_data
from specdsl.blocks.engine import expand
from specdsl.errors import SpecError
from specdsl.lift.compare import first_difference
from specdsl.lift.graph import LiftedGraph, LiftedNode, Unmapped
from specdsl.lift.lines import BOUND, FAMILIES, code_lines, hand_written_lines
from specdsl.lift.simplify import without_identities
from specdsl.lift.structure import RecoveryError, recover
from specdsl.render.printer import to_dsl
from specdsl.render.reformat import format_text
from specdsl.schema.document import validate_document

# torchvision's 78 CNNs (the bar): each must recover, but for those listed with the reason
# recovery gives. Other zoo models (timm's families) recover or raise RecoveryError saying why.
TORCHVISION = set(json.loads((Path(__file__).parent / "reference" / "torchvision_cnns.json")
                             .read_text(encoding="utf-8"))["models"])
NOT_YET: dict[str, str] = {}


def recovered_text(name: str) -> tuple[str, object]:
    try:
        graph = specdsl.load(name, warn=False).graph
    except SpecError as exc:  # the zoo's own tests report it; there is nothing to recover
        pytest.skip(f"the zoo model does not load: {exc}")
    lg = lifted(graph)
    return to_dsl(recover(lg)), lg


@pytest.mark.parametrize("name", sorted(zoo.variants()))
def test_zoo_model_recovers_node_for_node(name: str) -> None:
    if name in NOT_YET:
        with pytest.raises(RecoveryError, match=NOT_YET[name]):
            recovered_text(name)
        return
    try:
        text, lg = recovered_text(name)
    except RecoveryError:
        if name in TORCHVISION:
            raise
        return
    data, smap = read_data(text, "recovered.cnn")
    graph = expand(validate_document(data, smap))
    assert first_difference(lg, graph) is None  # type: ignore[arg-type]
    assert format_text(text, "recovered.cnn") == text


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_recovered_zoo_member_reads_as_if_written(name: str) -> None:
    """The zoo's own graph of resnet50, densenet121, efficientnet_b0, convnext_tiny recovers into at most
    1.5x the lines of its family's hand-written file (benchmarks/bench_import_lines.py prints them)."""
    text, _ = recovered_text(name)
    assert code_lines(text) <= BOUND * hand_written_lines(FAMILIES[name]), text


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_torchvision_import_reads_as_if_written(name: str) -> None:
    """The same bound for torchvision's own modules, captured (needs torchvision: /work/tvenv)."""
    torchvision = pytest.importorskip("torchvision")
    capture = pytest.importorskip("specdsl.backends.torch.capture_lift")
    module = getattr(torchvision.models, name)(weights=None)
    lg = capture.lift_module(module, (3, 224, 224), name=name, weights=False)
    text = to_dsl(recover(lg))
    assert code_lines(text) <= BOUND * hand_written_lines(FAMILIES[name]), text
    data, smap = read_data(text, "recovered.cnn")
    assert first_difference(without_identities(lg), expand(validate_document(data, smap))) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_random_specs_recover_or_say_why(data: dict[str, Any]) -> None:
    """Any spec's graph recovers into one that loads node for node, or RecoveryError says what no spec
    can write; never a different model, never another exception."""
    try:
        graph = specdsl.load(spec_text(data), warn=False).graph
    except SpecError:
        return
    lg = lifted(graph)
    try:
        recovered = recover(lg)
    except RecoveryError:
        return
    text = to_dsl(recovered)
    parsed, smap = read_data(text, "recovered.cnn")
    assert first_difference(lg, expand(validate_document(parsed, smap))) is None, text


def test_builtin_calls_with_and_without_a_default_are_no_run() -> None:
    """Regression (found by the property test above): a built-in call leaves out the arguments equal to
    its rule's defaults, so `dense(.., drop=0.2)` then `dense(..)` hold different slots; they were taken
    as two copies of one run and the writer read past the slots. Each is written as it is."""
    text = ("model random\ninput [1, 3]\nlayers {\n    dense(n=1, growth=1, drop=0.2)\n"
            "    dense(n=1, growth=1)\n}\n")
    lg = lifted(specdsl.load(text, warn=False).graph)
    recovered = to_dsl(recover(lg))
    assert "dense(n=1, growth=1, drop=0.2) -> dense(n=1, growth=1)" in recovered, recovered
    data, smap = read_data(recovered, "recovered.cnn")
    assert first_difference(lg, expand(validate_document(data, smap))) is None, recovered
    same = text.replace("    dense(n=1, growth=1)\n", "    dense(n=1, growth=1, drop=0.2)\n")
    assert "x2" in to_dsl(recover(lifted(specdsl.load(same, warn=False).graph)))  # equal calls still run


def test_long_flat_model_recovers_as_one_repeat() -> None:
    """Work stays linear in the model (one hash per container, no isomorphism search), and a flat
    sequence of equal groups reads as one repeated stage."""
    body = "\n".join("    conv(8, k=3, pad=1) -> bn -> relu" for _ in range(300))
    text = f"model flat\ninput [8, 16, 16]\nlayers {{\n{body}\n}}\n"
    data, smap = read_data(text, "flat.cnn")
    lg = lifted(expand(validate_document(data, smap)))
    recovered = to_dsl(recover(lg))
    assert "x300" in recovered and code_lines(recovered) <= 7, recovered


def _graph(*nodes: LiftedNode) -> LiftedGraph:
    return LiftedGraph("m", (3, 8, 8), [LiftedNode("input", {}, (), "", False), *nodes], (len(nodes),))


def test_what_no_spec_can_write_is_refused_naming_the_node() -> None:
    with pytest.raises(RecoveryError, match=r"node 1 \(c: conv\) has arguments .*greater than 0"):
        recover(_graph(LiftedNode("conv", {"out": -1, "k": 3}, (0,), "c", True)))
    with pytest.raises(RecoveryError, match="op 'frob', which specdsl does not know"):
        recover(_graph(LiftedNode("frob", {}, (0,), "c", True, origin="nn.Frob")))
    with pytest.raises(RecoveryError, match="no specdsl op, the first 'head'"):
        recover(replace(_graph(LiftedNode("relu", {}, (0,), "", False)),
                        unmapped=[Unmapped("head", "MyOp", "a custom autograd function")]))


def test_a_module_called_twice_is_written_again_unnamed() -> None:
    """torchvision's BasicBlock calls its one `relu` twice: the second call is a layer of its own (it owns
    no tensors, so no key changes); a sparse argument dict equals the op's full one."""
    lg = _graph(LiftedNode("conv", {"out": 4, "k": 3, "pad": 1}, (0,), "conv1", True),
                LiftedNode("relu", {}, (1,), "relu", True),
                LiftedNode("conv", {"out": 4, "k": 3, "pad": 1, "bias": True}, (2,), "conv2", True),
                LiftedNode("relu", {}, (3,), "relu", True))
    text = to_dsl(recover(lg))
    assert text.count("as relu") == 1 and "as conv2" in text, text
