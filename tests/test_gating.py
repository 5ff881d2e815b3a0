"""Broadcasting merges (add, mul), the whole-input receptive field of a global-pool gate, the
squeeze-and-excitation block, two-input upsample and crop, and W321 (fixed upsample sizes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import specdsl
from specdsl.errors import SpecError
from specdsl.ops.merge import WHOLE
from specdsl.ops.rule import AxisRF
from specdsl.passes.receptive import sees_global

REFERENCE = Path(__file__).parent / "reference" / "torchvision_cnns.json"


def gate(*tail: Any, c: int = 8, hw: int = 10, se: bool = False) -> list[Any]:
    """conv `x`, then a squeeze-and-excitation gate `g` of it, then `tail`."""
    head: list[Any] = [{"conv": {"out": c, "k": 3, "pad": 1}, "name": "x"}]
    if se:
        return [*head, {"se": {"channels": c, "squeeze": 2}}, *tail]
    return [*head, {"gap": {"keepdims": True}}, {"conv": {"out": 2, "k": 1}}, "relu",
            {"conv": {"out": c, "k": 1}}, {"sigmoid": None, "name": "g"},
            {"mul": None, "inputs": ["x", "g"]}, *tail]


# ---------------------------------------------------------------- shapes, figures, messages


@pytest.mark.parametrize(("a", "b", "out"), [
    ((8, 10, 10), (8, 1, 1), (8, 10, 10)),
    ((8, 1, 1), (8, 10, 10), (8, 10, 10)),
    ((1, 10, 10), (8, 10, 10), (8, 10, 10)),
    ((8, 1, 10), (8, 10, 1), (8, 10, 10)),
    ((8, 10), (8, 10), (8, 10)),
])
@pytest.mark.parametrize("op", ["add", "mul"])
def test_broadcast_shapes_and_extra_ops(h: Any, op: str, a: tuple[int, ...], b: tuple[int, ...],
                                        out: tuple[int, ...]) -> None:
    from specdsl.ops import OPS
    from specdsl.ops.rule import RuleContext, numel

    rule = OPS[op]
    inferred = rule.infer(rule.args(), [a, b], RuleContext())
    assert inferred.shape == out
    assert rule.extra(inferred.attrs, [a, b], out) == numel(out)
    three = rule.infer(rule.args(), [a, b, a], RuleContext())
    assert rule.extra(three.attrs, [a, b, a], out) == 2 * numel(out)


def test_equal_shape_add_keeps_its_attrs_and_residual_traits() -> None:
    from specdsl.ops import OPS
    from specdsl.ops.merge import MergeAttrs
    from specdsl.ops.rule import RuleContext, Trait

    assert OPS["add"].infer(OPS["add"].args(), [(4, 5, 5)] * 2, RuleContext()).attrs == MergeAttrs(2)
    assert OPS["add"].has(Trait.SUM) and not OPS["mul"].has(Trait.SUM)
    assert OPS["mul"].has(Trait.MERGE)


def _error(*layers: Any, input: tuple[int, ...] = (8, 10, 10)) -> Any:
    with pytest.raises(SpecError) as info:
        specdsl.load(_text(*layers, input=input))
    (err,) = info.value.errors
    return err


def _text(*layers: Any, input: tuple[int, ...] = (8, 10, 10)) -> str:
    from conftest import spec_text

    return spec_text(*layers, input=input)


def test_channel_mismatch_names_both_shapes_and_hints_a_projection() -> None:
    err = _error({"conv": {"out": 4, "k": 1}, "name": "a"}, {"mul": None, "inputs": ["input", "a"]})
    assert err.code == "E312"
    assert "[8, 10, 10] (input 1) and [4, 10, 10] (input 2): the channels differ (8 vs 4)" in err.message
    assert "conv: {out: 8, k: 1}" in err.hint  # hints are written in the spec's own syntax


def test_padding_slip_does_not_suggest_a_projection() -> None:
    err = _error({"conv": {"out": 8, "k": 3}, "name": "a"}, {"add": None, "inputs": ["input", "a"]})
    assert "the sizes along H differ (10 vs 8)" in err.message
    assert "padding" in err.hint and "1×1" not in err.hint and "gap" not in err.hint


def test_downsampled_gate_suggests_global_pool_for_mul() -> None:
    err = _error({"conv": {"out": 8, "k": 1, "stride": 2}, "name": "a"}, {"mul": None, "inputs": ["input", "a"]})
    assert "gap: {keepdims: true}" in err.hint and "stride 2" in err.hint


def test_gap_without_keepdims_is_told_to_keep_the_axes() -> None:
    err = _error({"gap": None, "name": "p"}, {"mul": None, "inputs": ["input", "p"]})
    assert err.code == "E312" and "gap: {keepdims: true} gives [8, 1, 1]" in err.hint


# ---------------------------------------------------------------- receptive field and alignment


def test_global_gate_keeps_the_local_field_and_adds_global_context() -> None:
    # specdsl.passes.receptive: the field through paths without a global pool, "+ global" for the gate.
    m = specdsl.load(_text(*gate({"conv": {"out": 8, "k": 3, "pad": 1}})))
    rows = m.rows()
    assert rows[2][1].rf == (WHOLE, WHOLE)  # the gap sees only the whole input
    assert rows[-2][1].rf == (AxisRF(3, 1, 1),) * 2 and sees_global(rows[-2][1].rf)  # the mul: x's field
    assert rows[-1][1].rf == (AxisRF(5, 1, 2),) * 2 and sees_global(rows[-1][1].rf)  # a conv after it
    assert m.warnings == []
    table = str(m.summary())
    assert "5/1/2 + global" in table
    assert "7]: 5×5, effective stride 1, padding 2, and the whole input through a global pool's gate" in table
    nodes = m.to_json()["nodes"]
    assert nodes[-1]["receptive_field"][0] == {"size": 5, "stride": 1, "padding": 2, "global": True}


def test_residual_around_se_is_not_misaligned() -> None:
    layers = gate({"conv": {"out": 8, "k": 1}, "name": "p"}, {"add": None, "inputs": ["x", "p"]}, se=True)
    m = specdsl.load(_text(*layers))
    assert m.warnings == []
    assert m.rows()[-1][1].rf == (AxisRF(3, 1, 1),) * 2 and sees_global(m.rows()[-1][1].rf)


def test_alignment_still_warns_on_local_inputs_of_mul() -> None:
    m = specdsl.load(_text({"conv": {"out": 8, "k": 2, "pad": "same"}, "name": "a"},
                           {"mul": None, "inputs": ["a", "input"]}), warn=False)
    assert [d.code for d in m.warnings] == ["W320"]


def test_broadcast_of_a_local_window_reports_no_field() -> None:
    # A [C, 1, 1] map from a strided conv sees one window, not the input: no (size, stride, pad) form.
    m = specdsl.load(_text({"conv": {"out": 8, "k": 4}, "name": "a"}, {"mul": None, "inputs": ["a", "a"]},
                           {"conv": {"out": 8, "k": 1}, "name": "b"}, {"mul": None, "inputs": ["input", "b"]},
                           input=(8, 4, 4)))
    assert m.rows()[-1][1].rf is None
    assert m.warnings == []


# ---------------------------------------------------------------- se block


def test_se_expands_to_torchvision_layout() -> None:
    m = specdsl.load(_text(*gate(se=True)))
    ops = [n.op for n in m.graph.nodes]
    assert ops == ["input", "conv", "gap", "conv", "relu", "conv", "sigmoid", "mul"]
    assert [n.path for n in m.graph.nodes[2:]] == [f"[1].{p}" for p in
                                                   ("avgpool", "fc1", "activation", "fc2", "scale_activation", "scale")]
    assert m.totals.params == 8 * 8 * 9 + 8 + (2 * 8 + 2) + (8 * 2 + 8)


def test_se_matches_mobilenet_v3_large_state_dict() -> None:
    torch = pytest.importorskip("torch")
    from specdsl.backends.torch.fx import to_torch

    ref = json.loads(REFERENCE.read_text())["models"]["mobilenet_v3_large"]["state_dict"]
    expected = [(k.removeprefix("features.4.block.2."), tuple(s)) for k, s in ref
                if k.startswith("features.4.block.2.")]
    assert [k for k, _ in expected] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    m = specdsl.load(_text({"se": {"channels": 72, "squeeze": 24, "gate": "sigmoid"}}, input=(72, 28, 28)))
    with torch.device("meta"):
        sd = to_torch(m).state_dict()
    assert [(k.removeprefix("0."), tuple(v.shape)) for k, v in sd.items()] == expected


def test_se_in_the_dsl_and_back(tmp_path: Path) -> None:
    from specdsl.api import read_data
    from specdsl.render.printer import to_dsl, to_yaml

    text = "model s\ninput [16, 8, 8]\n\nlayers {\n    se(channels=16, reduction=4, act=silu)\n}\n"
    path = tmp_path / "s.cnn"
    path.write_text(text)
    m = specdsl.load(str(path))
    assert [n.op for n in m.graph.nodes][1:] == ["gap", "conv", "silu", "conv", "sigmoid", "mul"]
    assert m.rows()[3][1].shape == (4, 1, 1)
    data, _ = read_data(text, "s.cnn")
    dsl, yaml = to_dsl(data), to_yaml(data)
    assert "se(channels=16, reduction=4, act=silu)" in dsl
    (tmp_path / "again.cnn").write_text(dsl)
    (tmp_path / "again.yaml").write_text(yaml)
    for again in ("again.cnn", "again.yaml"):
        assert specdsl.load(str(tmp_path / again)).totals.params == m.totals.params


def test_se_hardsigmoid_gate_matches_mobilenet_v3() -> None:
    from specdsl.ops import OPS

    if "hardsigmoid" not in OPS:
        pytest.skip("hardsigmoid is not an op yet")
    m = specdsl.load(_text({"se": {"channels": 72, "squeeze": 24, "gate": "hardsigmoid"}}, input=(72, 28, 28)))
    assert [n.op for n in m.graph.nodes][-2:] == ["hardsigmoid", "mul"]
    assert m.totals.params == 24 * 72 + 24 + 72 * 24 + 72


@pytest.mark.parametrize(("args", "code", "needle"), [
    ({"channels": 16}, "E313", "exactly one of squeeze"),
    ({"channels": 16, "squeeze": 4, "reduction": 4}, "E313", "both"),
    ({"channels": 16, "reduction": 32}, "E301", "16 // 32 = 0"),
    ({"channels": 16, "squeeze": 4, "act": "conv"}, "E375", "activation op"),
    ({"channels": 12, "squeeze": 4}, "E302", "channels=12 but receives 16"),
])
def test_se_bad_arguments(args: dict[str, Any], code: str, needle: str) -> None:
    err = _error({"se": args}, input=(16, 8, 8))
    assert err.code == code and needle in err.message


# ---------------------------------------------------------------- two-input upsample and crop


def test_upsample_to_the_model_input_follows_check_input() -> None:
    layers = [{"conv": {"out": 4, "k": 3, "stride": 4, "pad": 1}, "name": "low"},
              {"upsample": {"mode": "bilinear", "align_corners": False}, "inputs": ["low", "input"]}]
    assert specdsl.load(_text(*layers, input=(3, 32, 32))).rows()[-1][1].shape == (4, 32, 32)
    m = specdsl.load(_text(*layers, input=(3, 32, 32)), input=(3, 45, 37))
    assert m.rows()[-1][1].shape == (4, 45, 37)
    assert m.warnings == []


def test_crop_centre_and_errors() -> None:
    layers = [{"conv": {"out": 4, "k": 3}, "name": "small"}, {"crop": None, "inputs": ["input", "small"]}]
    m = specdsl.load(_text(*layers, input=(3, 9, 8)))
    f = m.rows()[-1][1]
    assert f.shape == (3, 7, 6) and f.attrs.offsets == (1, 1)
    assert m.warnings == []  # crop is not a merge: no alignment check
    err = _error({"conv": {"out": 4, "k": 3}, "name": "small"}, {"crop": None, "inputs": ["small", "input"]})
    assert err.code == "E318" and "H 8 < 10" in err.message and "swap" in err.hint


def test_two_input_upsample_refuses_a_size_too() -> None:
    err = _error({"upsample": {"size": 4}, "inputs": ["input", "input"]})
    assert err.code == "E313" and "size" in err.message


def test_fixed_upsample_size_that_no_longer_matches_the_input_warns() -> None:
    layers = [{"conv": {"out": 4, "k": 3, "stride": 4, "pad": 1}},
              {"upsample": {"size": [32, 32], "mode": "bilinear"}}]
    assert specdsl.load(_text(*layers, input=(3, 32, 32))).warnings == []
    m = specdsl.load(_text(*layers, input=(3, 32, 32)), input=(3, 64, 64), warn=False)
    (w,) = m.warnings
    assert w.code == "W321" and "[@x, @input] -> upsample" in w.hint
    # A fixed size inside the network, not setting the output's size, is left alone.
    mid = [*layers, {"conv": {"out": 4, "k": 3, "stride": 2, "pad": 1}}]
    assert specdsl.load(_text(*mid, input=(3, 32, 32)), input=(3, 64, 64)).warnings == []


# ---------------------------------------------------------------- backends agree


GATED = [
    *gate({"conv": {"out": 8, "k": 3, "pad": 1}, "name": "y"}, se=True),
    {"add": None, "inputs": ["y", "x"]},
    {"gap": {"keepdims": True}, "name": "p"},
    {"add": None, "inputs": ["y", "p", "p"]},  # a broadcast input third: no in-place add into [C, 1, 1]
    {"mul": None, "inputs": ["p", "y", "p"]},
    {"conv": {"out": 4, "k": 3, "stride": 2}, "name": "low"},
    {"upsample": {"mode": "bilinear", "align_corners": False}, "inputs": ["low", "input"], "name": "up"},
    {"crop": None, "inputs": ["up", "low"], "name": "c"},
    {"upsample": {"mode": "nearest"}, "inputs": ["c", "up"]},
]


def _gated(input: tuple[int, ...] = (8, 11, 10)) -> Any:
    return specdsl.load(_text(*GATED, input=input), warn=False)  # odd sizes drop a column (W301), on purpose


def test_numpy_and_torch_agree_on_gates_crops_and_resizes() -> None:
    pytest.importorskip("torch")
    from specdsl.cli.diff import diff_model

    rows = diff_model(_gated(), dtype="float64", rtol=1e-9, atol=1e-9)
    assert all(r.ok for r in rows), [(r.label, r.problem) for r in rows if not r.ok]


def test_emitted_source_matches_in_memory_module() -> None:
    pytest.importorskip("torch")
    from specdsl.backends.torch.emit import check_emitted, emit

    model = _gated()
    source = emit(model)
    assert "UpsampleTo" in source and "CenterCrop" in source
    assert check_emitted(model, source) == []


def test_verify_shapes_and_counts() -> None:
    pytest.importorskip("torch")
    from specdsl.backends.torch.verify import verify

    report = verify(_gated())
    assert report.ok, [str(m) for m in report.mismatches]
