"""Issue 26, items 9 and 10: blocks with several outputs (`outputs [@a, @b]` in a block, read as
`@call.k`) and lists of modules (`as convs.1`: registration order independent of data flow).

Each form is checked in the figures, to_torch, the emitted source (one class per block, its forward
returning a tuple), NumPy, ONNX, the diagram, fmt/convert round trips, the YAML syntax, the JSON
Schema, and in its errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import specdsl  # noqa: E402
from specdsl.api import read_data  # noqa: E402
from specdsl.backends.torch.emit import check_emitted, emit  # noqa: E402
from specdsl.backends.torch.fx import to_torch  # noqa: E402
from specdsl.backends.torch.verify import verify  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402
from specdsl.render.dot import to_dot  # noqa: E402
from specdsl.render.printer import to_dsl  # noqa: E402
from specdsl.render.printer_yaml import to_yaml  # noqa: E402
from specdsl.schema.jsonschema import json_schema  # noqa: E402

# Two branches in, two out (an HRNet module in miniature), its modules in two lists registered
# in the order timm would: convs.0, convs.1, then bns.0, bns.1 (data flow: conv 0, bn 0, conv 1, bn 1).
PAIR = """\
model pair_net
input [3, 16, 16]

block pair(c: int) inputs(a, b) {
    @a -> conv(c, k=3, pad=1, bias=false) as convs.0 -> bn as bns.0 -> relu as ra
    @b -> conv(c, k=3, pad=1, bias=false) as convs.1 -> bn as bns.1 -> relu as rb
    [@ra, @rb] -> add as s
    outputs [@s, @rb]
}

layers {
    conv(8, k=3, pad=1) as stem
    [@stem, @stem] -> pair(8) as p
    [@p.0, @p.1] -> pair(8) x2 as q
    [@q.0, @q.1] -> concat -> gap -> linear(10) as fc
}
outputs [@fc, @p.1]
"""

PAIR_YAML = """\
model: pair_net
input: [3, 16, 16]
blocks:
  pair:
    params: {c: int}
    inputs: [a, b]
    layers:
      - {conv: {out: c, k: 3, pad: 1, bias: false}, inputs: [a], name: convs.0}
      - {bn: null, name: bns.0}
      - {relu: null, name: ra}
      - {conv: {out: c, k: 3, pad: 1, bias: false}, inputs: [b], name: convs.1}
      - {bn: null, name: bns.1}
      - {relu: null, name: rb}
      - {add: null, inputs: [ra, rb], name: s}
    outputs: [s, rb]
layers:
  - {conv: {out: 8, k: 3, pad: 1}, name: stem}
  - {pair: 8, inputs: [stem, stem], name: p}
  - {pair: 8, inputs: [p.0, p.1], repeat: 2, name: q}
  - {concat: null, inputs: [q.0, q.1]}
  - gap
  - {linear: 10, name: fc}
outputs: [fc, p.1]
"""


def test_lists_register_where_their_first_member_is_built() -> None:
    keys = [k for k in to_torch(specdsl.load(PAIR)).state_dict() if k.startswith("p.")]
    assert keys[:4] == ["p.convs.0.weight", "p.convs.1.weight", "p.bns.0.weight", "p.bns.0.bias"]


def test_the_dsl_and_yaml_forms_are_one_model() -> None:
    dsl, yaml = specdsl.load(PAIR), specdsl.load(PAIR_YAML)
    assert (dsl.totals.params, dsl.totals.macs) == (yaml.totals.params, yaml.totals.macs)
    assert [n.path for n in dsl.graph.nodes] == [n.path for n in yaml.graph.nodes]
    assert list(to_torch(dsl).state_dict()) == list(to_torch(yaml).state_dict())


def test_a_call_with_several_outputs_in_every_backend(tmp_path: Path) -> None:
    model = specdsl.load(PAIR)
    call = model.graph.calls["p"]
    assert len(call.outputs) == 2 and call.output == call.outputs[0]
    # A repeated call hands both outputs on: the second copy reads the first's.
    assert model.graph.calls["q[1]"].inputs == model.graph.calls["q[0]"].outputs
    logits, side = to_torch(model, seed=0).eval()(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 10) and side.shape == (2, 8, 16, 16)
    source = emit(model)
    assert source.count("class Pair") >= 1 and "-> tuple[torch.Tensor, torch.Tensor]:" in source
    assert check_emitted(model, source) == []
    assert verify(model).ok
    got = specdsl.to_numpy(model)(np.random.default_rng(0).standard_normal((2, 3, 16, 16)))
    assert isinstance(got, tuple) and [g.shape for g in got] == [(2, 10), (2, 8, 16, 16)]
    assert "p.convs[0]" in to_dot(model) or "convs" in to_dot(model)


def test_onnx_of_a_call_with_several_outputs() -> None:
    pytest.importorskip("onnxruntime")
    from specdsl.backends.numpy.weights import random_weights
    from specdsl.backends.onnx import to_onnx
    from specdsl.backends.onnx.verify import verify as verify_onnx

    model = specdsl.load(PAIR)
    weights = random_weights(model, dtype="float32")
    proto = to_onnx(model, weights)
    assert all(e.ok for e in verify_onnx(proto.SerializeToString(), model, weights))


@pytest.mark.parametrize("name", ["res2net", "hrnet"])
def test_fmt_and_convert_round_trip_the_new_forms(name: str) -> None:
    from specdsl.zoo import find

    found = find(name)
    assert found is not None
    file, text = found
    data, smap = read_data(text, file)
    dsl = to_dsl(data, smap)
    assert "as convs.0" in dsl or "as fuse_layers.0.1" in dsl
    yaml_text = to_yaml(data, smap)
    for back in (dsl, yaml_text, to_dsl(read_data(yaml_text, "x.yaml")[0])):
        again = specdsl.load(back, warn=False)
        assert again.totals.params == specdsl.load(name, warn=False).totals.params
    assert "outputs [@y0, @y1]" in to_dsl(read_data(yaml_text, "x.yaml")[0]) or name == "res2net"


def test_the_json_schema_knows_a_blocks_outputs() -> None:
    block = json_schema()["$defs"]["BlockDef"]
    assert "outputs" in block["properties"]


def _error(text: str) -> tuple[str, str, str]:
    with pytest.raises(SpecError) as info:
        specdsl.load(text)
    e = info.value.errors[0]
    return e.code, e.message, e.hint or ""


BLOCK = "model m\ninput [3, 8, 8]\nblock two(c: int) {\n    conv(c, k=1) as a\n    conv(c, k=3, pad=1) as b\n" \
    "    outputs [@a, @b]\n}\n"


@pytest.mark.parametrize(("layers", "hint"), [
    ("two(4) as t\n    relu", "@t.0, @t.1"),                      # chained after the call
    ("two(4)\n    relu", "name the call"),                       # unnamed
    ("two(4) as t\n    @t -> relu", "read @t.0, @t.1"),         # the call as a whole
    ("two(4) as t\n    @t.2 -> relu", "read @t.0, @t.1"),       # an output it does not have
    ("two(4) as t", "outputs [@t.0, @t.1]"),                     # the model ends on it
])
def test_reading_a_call_with_several_outputs_as_one_tensor_is_e385(layers: str, hint: str) -> None:
    code, _, got_hint = _error(BLOCK + "layers {\n    " + layers + "\n}\n")
    assert code == "E385" and hint in got_hint


def test_a_model_returning_the_call_whole_is_e385() -> None:
    code, _, hint = _error(BLOCK + "layers {\n    two(4) as t\n}\noutputs [@t]\n")
    assert code == "E385" and "read @t.0, @t.1" in hint


def test_a_blocks_outputs_must_be_its_nodes() -> None:
    code, message, hint = _error(BLOCK.replace("outputs [@a, @b]", "outputs [@a, @bb]")
                                 + "layers {\n    two(4) as t\n    @t.0 -> relu\n}\n")
    assert code == "E368" and "block 'two'" in message and "'b'" in hint
    code, message, _ = _error(BLOCK.replace("conv(c, k=1) as a", "conv(c, k=1) as a if c > 8")
                              + "layers {\n    two(4) as t\n    @t.0 -> relu\n}\n")
    assert code == "E366" and "switched off" in message


def test_outputs_belong_to_a_blocks_body() -> None:
    code, message, _ = _error("model m\ninput [3, 8, 8]\nlayers {\n    conv(4, k=1) as a\n    outputs [@a]\n}\n")
    assert code == "E403" and "block" in message


@pytest.mark.parametrize(("layers", "code", "words"), [
    ("conv(4, k=1) as convs.0\n    conv(4, k=1) as convs.0", "E315", "already defined"),
    ("conv(4, k=1) as convs\n    conv(4, k=1) as convs.0", "E315", "cannot be a list"),
    ("conv(4, k=1) as convs.0\n    conv(4, k=1) as convs.0.1", "E315", "holds no members"),
    ("conv(4, k=1) as \"convs.01\"", "E380", "NAME.k"),
    ("conv(4, k=1) as \"forward.0\"", "E380", "nn.Module"),
])
def test_list_member_mistakes(layers: str, code: str, words: str) -> None:
    got, message, _ = _error("model m\ninput [3, 8, 8]\nlayers {\n    " + layers + "\n}\n")
    assert got == code and words in message


def test_gaps_and_nested_lists_keep_the_written_indices() -> None:
    model = specdsl.load("model m\ninput [3, 8, 8]\nlayers {\n    conv(4, k=1) as t.2\n"
                         "    @t.2 -> conv(4, k=1) as f.1.0\n    @f.1.0 -> relu\n}\n")
    assert list(to_torch(model).state_dict()) == ["t.2.weight", "t.2.bias", "f.1.0.weight", "f.1.0.bias"]
    assert check_emitted(model, emit(model)) == []


def test_the_table_folds_a_list_and_shows_each_output_of_a_call() -> None:
    from specdsl.render.table import rows

    folded = {r.label: r for r in rows(specdsl.load(PAIR), depth=1)}
    assert folded["p"].shape == "[8, 16, 16], [8, 16, 16]" and folded["q"].op == "pair ×2"
    model = specdsl.load("model m\ninput [3, 8, 8]\nlayers {\n    conv(4, k=1) as t.0\n"
                         "    @t.0 -> conv(4, k=1) as t.2\n}\n")
    assert model.graph.lists == {"t"} and {r.label: r.op for r in rows(model, depth=1)}["t"] == "list ×2"


def test_a_list_referred_to_whole_points_at_its_members() -> None:
    code, _, hint = _error("model m\ninput [3, 8, 8]\nlayers {\n    conv(4, k=1) as convs.0\n    @convs -> relu\n}\n")
    assert code == "E314" and "@convs.0" in hint


def test_the_editor_goes_to_a_members_and_an_outputs_definition() -> None:
    from specdsl.lsp.analysis import analyse
    from specdsl.lsp.features import definition
    from specdsl.lsp.index import Index

    text = PAIR.replace("layers {\n", "layers {\n    conv(8, k=1) as side.0\n    @side.0 -> relu\n")
    lines = text.splitlines()
    ix = Index(analyse(text, "pair.cnn"))

    def where(needle: str) -> tuple[int, int]:
        row = next(i for i, line in enumerate(lines) if needle in line)
        return row + 1, lines[row].index(needle) + 2  # 1-based, inside the text

    def target_text(line: int, col: int) -> str:
        span = definition(ix, line, col)
        assert span is not None
        return lines[span[0] - 1][span[1] - 1:span[3] - 1]

    assert target_text(*where("@side.0 ->")) == "side.0"  # a list member
    assert target_text(*where("@p.1]")) == "p"  # an output of the call named p


def test_an_indexed_repeat_fills_a_list_from_a_template() -> None:
    model = specdsl.load('model m\ninput [3, 8, 8]\nlayers {\n    conv(4, k=1) x(3, j) as "convs.{j}"\n}\n')
    assert [k for k in to_torch(model).state_dict() if k.endswith("weight")] == [
        "convs.0.weight", "convs.1.weight", "convs.2.weight"]
