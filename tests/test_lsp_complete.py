"""Completion offers only what fits where the cursor is; which YAML is a spec; figures upstream of an error."""

from __future__ import annotations

import pytest

pytest.importorskip("pygls")

from specdsl.api import read_source
from specdsl.lsp.analysis import analyse, is_spec_yaml
from specdsl.lsp.complete import DSL_TRIGGERS, YAML_TRIGGERS, complete
from specdsl.lsp.features import hover, ref_names
from specdsl.lsp.index import Index


def _at_end(text: str, line_text: str, dsl: bool = True, trigger: str | None = None, names=None) -> dict[str, str]:
    """Completion with the cursor at the end of `line_text`, inserted as a new line before the text's last line."""
    lines = text.rstrip("\n").split("\n")
    lines.insert(len(lines) - 1, line_text)
    items = complete("\n".join(lines), len(lines) - 1, len(line_text) + 1, dsl, names, trigger)
    return {i.label: i.insert or i.label for i in items}


LENET = read_source("lenet5")[1]


def test_refs_are_the_document_names_never_words_of_comments() -> None:
    assert "as taught today" in LENET
    assert list(_at_end(LENET, "    [@", trigger="@")) == ["input", "c1", "c3", "s4", "c5"]


def test_refs_follow_the_scope_of_the_cursor() -> None:
    unet = read_source("unet")[1]
    lines = unet.split("\n")
    inside = next(i for i, t in enumerate(lines) if t.startswith("block up")) + 2
    text = "\n".join([*lines[:inside], "    [@", *lines[inside:]])
    names = {i.label for i in complete(text, inside + 1, 7, True, trigger="@")}
    assert {"input", "x", "skip"} <= names and "enc1" not in names


def test_nothing_in_comments_or_strings() -> None:
    assert _at_end(LENET, "    relu  # a comment ") == {}
    assert _at_end(LENET, "    # as ") == {}
    assert _at_end(LENET, '    conv(8, padding_mode="ref') == {}
    assert _at_end(LENET, '    conv(8, padding_mode="zeros", ')["stride"] == "stride="  # the string is closed


def test_enum_and_bool_values() -> None:
    # Written as `specdsl fmt` writes them (a bare word).
    assert _at_end(LENET, "    conv(8, padding_mode=", trigger="=") == {
        "zeros": "zeros", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}
    assert _at_end(LENET, "    conv(8, bias=f") == {"true": "true", "false": "false"}
    assert _at_end(LENET, "    conv(8, k=", trigger="=") == {}  # an int: nothing to choose from
    spec = "model: m\ninput: [3, 8, 8]\nlayers:\n  - relu\n"
    assert set(_at_end(spec, "  - conv: {out: 8, padding_mode: ", dsl=False)) == {
        "zeros", "reflect", "replicate", "circular"}
    block = "model: m\ninput: [3, 8, 8]\nlayers:\n  - conv:\n      out: 8\n"
    assert set(_at_end(block, "      padding_mode: r", dsl=False)) == {"zeros", "reflect", "replicate", "circular"}
    assert "padding_mode" in _at_end(block, "      pa", dsl=False)


def test_trigger_characters_fit_the_language() -> None:
    assert " " not in DSL_TRIGGERS + YAML_TRIGGERS
    ops = _at_end(LENET, "    relu ->", trigger=">")
    assert "maxpool" in ops and "conv" in ops
    assert _at_end(LENET, "    relu > ", trigger=">") == {}
    assert _at_end(LENET.replace("input [1, 32, 32]", "input [1, 32,"), "", trigger=",") == {}
    assert "k" in _at_end(LENET, "    conv(8,", trigger=",")
    assert _at_end(LENET, "    layers {", trigger="{") == {}


def test_yaml_refs_come_from_the_parsed_document() -> None:
    spec = "model: m\ninput: [3, 8, 8]\nlayers:\n  - conv: 8\n    name: stem  # as taught\n  - relu\n"
    ix = Index(analyse(spec, "m.yaml"))
    names = lambda line: ref_names(ix, line)  # noqa: E731
    assert set(_at_end(spec, "  - {add: {}, inputs: [", dsl=False, names=names)) >= {"input", "stem"}
    assert "taught" not in _at_end(spec, "    inputs: [", dsl=False, names=names)


@pytest.mark.parametrize(("text", "spec"), [
    ("model: m\ninput: [3, 8, 8]\nlayers:\n  - relu\n", True),
    ("# specdsl\nlayers:\n  - relu\n", True),
    ("# yaml-language-server: $schema=./specdsl.schema.json\nmodel: m\n", True),
    ("model: {name: resnet50, lr: 0.1}\ntrainer:\n  max_epochs: 10\n", False),  # Hydra / Lightning
    ("model:\n  name: resnet50\ninput:\n  size: 224\n", False),
    ("model: resnet50\ntrainer: {gpus: 1}\n", False),
    ("defaults:\n  - model: resnet\nlayers: 3\n", False),
    ("services:\n  web:\n    image: nginx\n", False),
])
def test_which_yaml_is_a_spec(text: str, spec: bool) -> None:
    assert is_spec_yaml(text) is spec


def test_specs_of_the_zoo_are_specs() -> None:
    for name in ("alexnet", "inception_v3", "timeseries_cnn", "fractalnet_cifar10"):
        assert is_spec_yaml(read_source(name)[1]), name


UPSTREAM = """model m
input [3, 32, 32]
layers {
    conv(16, k=3, pad=1) -> relu
    conv(8, k=3, groups=3)
    maxpoool(2)
    conv(8, k=99)
}
"""


def test_figures_upstream_of_the_first_error() -> None:
    doc = analyse(UPSTREAM, "m.cnn")
    codes = {(d.code, d.loc.line) for d in doc.diagnostics}
    assert ("E204", 6) in codes
    assert ("E303", 5) in codes  # a shape error before the unknown op is no longer hidden
    assert doc.upstream_of == 3
    ix = Index(doc)
    conv, _ = hover(ix, 4, 6)
    assert "output `[16, 32, 32]`" in conv and "params 448" in conv
    later, _ = hover(ix, 7, 6)
    assert "downstream of the first error" in later


def test_a_failing_block_moves_the_cut_to_its_first_call() -> None:
    text = UPSTREAM.replace("layers {", "block bad(c: int) {\n    conv(c, k=3) -> nope\n}\n\nlayers {").replace(
        "    maxpoool(2)\n", "    bad(4)\n")
    doc = analyse(text, "m.cnn")
    assert doc.upstream_of == 3
    assert "output `[16, 32, 32]`" in hover(Index(doc), 8, 6)[0]
