"""Multi-output nodes: split and chunk, their parts (`@s.0`), and channel shuffle."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import specdsl  # noqa: E402
from specdsl.backends.numpy import to_numpy  # noqa: E402
from specdsl.backends.torch.emit import check_emitted, emit  # noqa: E402
from specdsl.backends.torch.fx import to_torch  # noqa: E402
from specdsl.backends.torch.verify import verify  # noqa: E402
from specdsl.cli.main import main  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402
from specdsl.render.dot import to_dot  # noqa: E402

# ShuffleNetV2's stride-1 unit: half the channels pass, half go through a branch, then shuffle.
SHUFFLE_UNIT = """\
model unit
input [8, 6, 6]
layers {
    chunk(2) as s
    @s.1 -> conv(4, k=1, bias=false) -> bn -> relu as b
    [@s.0, @b] -> concat -> channel_shuffle(2)
    split([2, 6]) as t
    @t.1 -> conv(2, k=3, pad=1) as c
    [@t.0, @c] -> add
}
"""


def load(text: str = SHUFFLE_UNIT) -> specdsl.Model:
    return specdsl.load(text)


def test_parts_have_their_shapes_and_the_split_the_whole() -> None:
    m = load()
    assert m.shape("s") == (8, 6, 6)
    shapes = {node.path: fig.shape for node, fig in m.rows()}
    assert shapes["s.0"] == (4, 6, 6)  # a part's path: its split's, then the part's number
    assert shapes["s.1"] == (4, 6, 6)
    assert shapes["t.1"] == (6, 6, 6)
    assert m.rows()[-1][1].shape == (2, 6, 6)


def test_each_part_is_one_node_however_often_it_is_referred_to() -> None:
    text = SHUFFLE_UNIT.replace("[@t.0, @c] -> add", "[@t.0, @c] -> add as a\n    [@t.0, @a] -> add")
    parts = [n for n in load(text).graph.nodes if n.op == "part"]
    assert sorted(n.path for n in parts) == ["s.0", "s.1", "t.0", "t.1"]


def test_yaml_refers_to_parts_as_name_dot_index() -> None:
    text = "\n".join([
        "model: y", "input: [6, 4, 4]", "layers:",
        '  - {split: {sizes: [2, 4]}, name: s}',
        '  - {conv: {out: 2, k: 1}, inputs: [s.1]}',
        '  - {add: null, inputs: [s.0, layers_1]}',
    ])
    with pytest.raises(SpecError):  # layers_1 is no name: the parts alone are the point here
        specdsl.load(text)
    text = text.replace("{conv: {out: 2, k: 1}, inputs: [s.1]}", "{conv: {out: 2, k: 1}, inputs: [s.1], name: c}")
    m = specdsl.load(text.replace("layers_1", "c"))
    assert m.rows()[-1][1].shape == (2, 4, 4)


def test_chunk_follows_torch_chunk_for_unequal_parts() -> None:
    m = specdsl.load("model: c\ninput: [5, 2]\nlayers:\n  - {chunk: 2, name: s}\n  - {identity: null, inputs: [s.1]}\n",
                     warn=False)
    assert m.rows()[-1][1].shape == (2, 2)  # torch.chunk(5 channels, 2) gives 3 + 2
    assert [w.code for w in m.warnings] == ["W340"]
    x = torch.randn(1, 5, 2)
    assert to_torch(m)(x).shape == torch.chunk(x, 2, dim=1)[1].shape


@pytest.mark.parametrize(("layers", "code", "snippet"), [
    (["split([3, 4]) as s", "@s.0 -> relu"], "E341", "split sizes [3, 4] add up to 7, but the input has 8 channels"),
    (["chunk(2) as s", "@s.2 -> relu"], "E342", "part .2 does not exist: the split has 2 parts (.0 to .1)"),
    (["conv(8, 1) as c", "@c.0 -> relu"], "E342", "can only be taken of a split or chunk"),
    (["chunk(2)", "relu"], "E344", "'relu' is given a split's outputs as one input: it has 2 parts"),
    (["chunk(2)"], "E345", "the model ends in a chunk with 2 parts"),
    (["channel_shuffle(3)"], "E343", "groups must divide the channels; received groups=3, channels=8"),
    (["chunk(2, dim=0) as s", "@s.0 -> relu"], "E340", "chunk dim must be a non-batch axis"),
])
def test_bad_splits_are_located_spec_errors(layers: list[str], code: str, snippet: str) -> None:
    text = "model b\ninput [8, 4, 4]\nlayers {\n" + "".join(f"    {line}\n" for line in layers) + "}\n"
    with pytest.raises(SpecError) as info:
        specdsl.load(text)
    errors = info.value.errors
    assert errors[0].code == code
    assert snippet in errors[0].message
    assert errors[0].loc is not None and errors[0].hint


def test_a_missing_part_points_at_the_reference() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load("model b\ninput [8, 4, 4]\nlayers {\n    chunk(2) as s\n    @s.7 -> relu\n}\n")
    loc = info.value.errors[0].loc
    assert (loc.line, loc.col, loc.end_col) == (5, 6, 9)  # `s.7`


def test_unknown_split_name_suggests_the_node() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load("model b\ninput [8, 4, 4]\nlayers {\n    chunk(2) as parts\n    @part.0 -> relu\n}\n")
    error = info.value.errors[0]
    assert error.code == "E314" and "'part'" in error.message and "parts" in (error.hint or "")


def test_split_and_parts_are_views_in_the_memory_figures() -> None:
    m = load("model v\ninput [8, 4, 4]\nlayers {\n    chunk(2) as s\n    [@s.0, @s.1] -> add\n}\n")
    # Only the add's output is a new tensor; the chunk and its parts look into the input.
    assert m.totals.activation_elements == 4 * 4 * 4
    assert m.totals.peak_bytes == (8 * 16 + 4 * 16) * 4


def test_torch_matches_static_shapes_params_and_macs() -> None:
    report = verify(load())
    assert report.ok, [str(x) for x in report.mismatches]


def test_emitted_source_matches_in_memory_module() -> None:
    m = load()
    source = emit(m)
    assert "torch.chunk(x, 2, dim=1)" in source and "s[1]" in source
    assert check_emitted(m, source) == []


def test_numpy_matches_torch() -> None:
    m = load()
    net = to_numpy(m)
    module = to_torch(m).double().eval()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in net.weights.items()})
    x = np.random.default_rng(0).standard_normal((2, 8, 6, 6))
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(x), expected, rtol=1e-10, atol=1e-10)


def test_channel_shuffle_is_shufflenets_view_transpose_view() -> None:
    x = torch.arange(2 * 12 * 3 * 3, dtype=torch.float32).reshape(2, 12, 3, 3)
    m = specdsl.load("model s\ninput [12, 3, 3]\nlayers {\n    channel_shuffle(3)\n}\n")
    expected = x.view(2, 3, 4, 3, 3).transpose(1, 2).contiguous().view(2, 12, 3, 3)
    assert torch.equal(to_torch(m)(x), expected)
    np.testing.assert_array_equal(to_numpy(m)(x.numpy()), expected.numpy())


def test_diagram_draws_one_box_and_one_labelled_edge_per_part() -> None:
    dot = to_dot(load())
    assert "part" not in dot.split("->")[0]  # no box for a part
    assert '" .0 4×6×6 "' in dot and '" .1 4×6×6 "' in dot
    assert dot.count("chunk") == 1


def test_convert_round_trips_part_references(tmp_path, capsys) -> None:
    src = tmp_path / "unit.cnn"
    src.write_text(SHUFFLE_UNIT)
    assert main(["convert", str(src), "--to", "yaml", "-o", str(tmp_path / "unit.yaml")]) == 0
    yaml_text = (tmp_path / "unit.yaml").read_text()
    assert "inputs: [s.0, b]" in yaml_text
    assert main(["convert", str(tmp_path / "unit.yaml"), "--to", "dsl", "-o", str(tmp_path / "back.cnn")]) == 0
    back = (tmp_path / "back.cnn").read_text()
    assert "@s.1 ->" in back and "[@s.0, @b]" in back
    assert specdsl.load(str(tmp_path / "back.cnn")).totals == load().totals


def test_json_report_lists_parts_with_their_inputs() -> None:
    nodes = load().to_json()["nodes"]
    parts = [n for n in nodes if n["op"] == "part"]
    assert len(parts) == 4 and all(len(n["inputs"]) == 1 for n in parts)
