"""Indexed repeats: `x(n, j)` (YAML `repeat: n` + `index: j`) number the copies for their arguments and `if`."""

from __future__ import annotations

import pytest

import specdsl
from specdsl.errors import SpecError
from specdsl.render.reformat import convert_text, format_text

DSL = """\
model m(n=3)
input [3, 16, 16]

block unit(c: int, p: float) {
    conv(c, k=3, pad=1) -> relu -> dropout(p)
}

layers {
    conv(8, k=1)
    unit(8 + 4 * j, p=0.1 * j) x(n, j) as stack
    conv(16, k=1) x(3, j) if j != 1
    [@stack, @stack] -> add
    gap -> linear(10)
}
"""


def rows(model: specdsl.Model, op: str) -> list[tuple[str, object]]:
    return [(node.path, fig) for node, fig in model.rows() if node.op == op]


def test_each_copy_sees_its_number() -> None:
    model = specdsl.load(DSL, warn=False)  # W351: the `if j != 1` convs feed nothing, on purpose
    assert [fig.shape[0] for _, fig in rows(model, "conv")] == [8, 8, 12, 16, 16, 16]
    assert [fig.attrs.p for _, fig in rows(model, "dropout")] == [0.0, 0.1, 0.2]
    # `if j != 1` keeps copies 0 and 2; unnamed, they number on among their siblings (the one
    # switched off takes no place)
    assert [path for path, _ in rows(model, "conv")][-2:] == ["[2]", "[3]"]
    # `as stack` is the container of the copies, and names the last copy's output
    stack = next(n for n in model.graph.nodes if n.name == "stack")
    assert stack.path == "stack[2][2]"


def test_the_count_comes_from_parameters_and_zero_leaves_the_layer_out() -> None:
    assert len(rows(specdsl.load(DSL, params={"n": 5}, warn=False), "dropout")) == 5
    with pytest.raises(SpecError) as info:
        specdsl.load(DSL, params={"n": 0})  # @stack is then switched off, the add's only inputs
    assert info.value.errors[0].code == "E378"


def test_yaml_round_trip_and_fmt() -> None:
    yaml_text = convert_text(DSL, "<m.cnn>", "yaml", True)
    assert "index: j" in yaml_text and "repeat: n" in yaml_text
    back = convert_text(yaml_text, "<m.yaml>", "dsl", False)
    assert "x(n, j) as stack" in back and "x(3, j) if j != 1" in back
    assert (specdsl.load(yaml_text, warn=False).totals == specdsl.load(DSL, warn=False).totals
            == specdsl.load(back, warn=False).totals)
    assert format_text(back, "<m.cnn>") == back


@pytest.mark.parametrize(("layer", "message"), [
    ("conv(4, k=3) x(2, min)", "a repeat index is a name such as `j`; received 'min'"),
    ("conv(4, k=3) x(2, n)", "the repeat index 'n' would hide the parameter 'n'"),
    ("conv(4, k=3, index=j)", "this layer has no `repeat`"),
    ("conv(4, k=3) x(n / 2, j)", "a repeat count is a whole number, 0 or more; received 1.5"),
    ("relu x(1000000000, j)", "this layer would expand to about 1,000,000,000 nodes"),
    ("conv(4 - j, k=1) x(5, j)", "must be greater than 0; received 0"),  # copy 4: its own error
])
def test_mistakes_are_located_errors(layer: str, message: str) -> None:
    text = f"model m(n=3)\ninput [3, 8, 8]\nlayers {{\n    {layer}\n}}\n"
    with pytest.raises(SpecError) as info:
        specdsl.load(text)
    error = info.value.errors[0]
    assert message in error.message and error.loc is not None and error.loc.line == 4, error


def test_the_index_is_not_seen_outside_its_layer() -> None:
    text = "model m\ninput [3, 8, 8]\nlayers {\n    relu x(2, j)\n    conv(j, k=1)\n}\n"
    with pytest.raises(SpecError) as info:
        specdsl.load(text)
    assert info.value.errors[0].loc.line == 5


def test_the_copies_lower_to_torch_with_their_own_arguments() -> None:
    pytest.importorskip("torch")
    from specdsl.backends.torch.emit import check_emitted, emit

    model = specdsl.load(DSL, warn=False)
    module = specdsl.to_torch(model)
    assert [m.p for m in module.modules() if type(m).__name__ == "Dropout"] == [0.0, 0.1, 0.2]
    assert check_emitted(model, emit(model)) == []


def test_calls_differing_only_in_a_float_share_one_emitted_class() -> None:
    """The copies' drop rates differ; the emitted class computes its own from the index (a model
    parameter written as its value), and an integer argument never takes a float expression."""
    pytest.importorskip("torch")
    from specdsl.backends.torch.emit import check_emitted, emit

    text = ("model m(rate=0.1)\ninput [3, 8, 8]\n"
            "block unit(c: int, i: int) {\n    conv(c // 2, k=1) -> dropout(rate * i / 4) -> conv(c, k=1)\n}\n"
            "layers {\n    conv(8, k=1)\n    unit(8, i=j) x(4, j)\n}\n")
    model = specdsl.load(text)
    source = emit(model)
    assert source.count("class Unit") == 1, source
    assert "nn.Dropout(0.1 * i / 4)" in source and "nn.Conv2d(in_channels, c // 2" in source
    assert check_emitted(model, source) == []
