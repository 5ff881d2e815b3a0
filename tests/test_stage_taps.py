"""`@stage.k`: a layer inside a named stage, reached from outside it (a segmentation head's tap).

torchvision's segmentation models keep the backbone one container (`backbone.0` ... `backbone.16`)
and tap an inner layer's output for the head; a spec does the same with `@backbone.4`, the
output of the stage's layer 4. Where the name is no stage, `@name.k` stays a split's part k.
"""

from __future__ import annotations

import pytest

import specdsl
from specdsl.errors import SpecError

TAPS = """model taps
input [3, 16, 16]
layers {
    stage {
        conv(4, k=3, pad=1) -> relu
        stage { conv(8, k=3, stride=2, pad=1) -> relu } as down
        conv(8, k=1) -> relu
    } as backbone
    [@backbone, @backbone.3] -> add as summed
}
"""

YAML = """model: taps
input: [3, 16, 16]
layers:
  - stage:
      - conv: {out: 4, k: 3, pad: 1}
      - stage: [{conv: {out: 8, k: 3, stride: 2, pad: 1}}, relu]
        name: down
    name: backbone
  - relu:
    inputs: [backbone.down]
"""


def test_a_stage_layer_is_reached_by_position_and_in_yaml_by_name() -> None:
    m = specdsl.load(TAPS)
    add = m.node("summed")[0]
    assert [m.graph.nodes[i].path for i in add.inputs] == ["backbone[4]", "backbone[3]"]
    assert m.totals.params == 4 * 27 + 4 + 8 * 36 + 8 + 8 * 8 + 8
    y = specdsl.load(YAML)
    last = y.graph.nodes[y.graph.output]
    assert y.graph.nodes[last.inputs[0]].path == "backbone.down[1]"


def test_a_missing_stage_layer_is_a_located_error() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load(TAPS.replace("@backbone.3]", "@backbone.7]"))
    d = info.value.diagnostics[0]
    assert d.code == "E314" and "stage 'backbone' has no layer '7'" in d.message
    assert d.loc is not None and d.loc.line == 9


def test_a_split_part_is_still_a_part() -> None:
    m = specdsl.load("model p\ninput [4, 8, 8]\nlayers {\n    chunk(2) as halves\n"
                     "    [@halves.0, @halves.1] -> add\n}\n")
    assert [n.op for n in m.graph.nodes] == ["input", "chunk", "part", "part", "add"]


def test_torchvision_keys_with_a_tapped_backbone() -> None:
    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        keys = list(specdsl.to_torch(specdsl.load(TAPS)).state_dict())
    assert keys == ["backbone.0.weight", "backbone.0.bias", "backbone.down.0.weight", "backbone.down.0.bias",
                    "backbone.3.weight", "backbone.3.bias"]


def test_a_member_of_what_is_no_stage_is_an_error_not_a_crash() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load("model p\ninput [4, 8, 8]\nlayers {\n    chunk(2) as halves\n    @halves.foo -> relu\n}\n")
    d = info.value.diagnostics[0]
    assert d.code == "E314" and "'halves' is no stage" in d.message and d.loc is not None and d.loc.line == 5


def test_a_declared_output_may_be_a_stage_layer() -> None:
    m = specdsl.load(TAPS + "outputs(out=@summed, tap=@backbone.3)\n")
    assert [(k, m.graph.nodes[i].path) for k, i in m.graph.outputs] == [("out", "summed"), ("tap", "backbone[3]")]
    with pytest.raises(SpecError) as info:
        specdsl.load(TAPS + "outputs(out=@summed, tap=@backbone.9)\n")
    assert info.value.diagnostics[0].code == "E314"
