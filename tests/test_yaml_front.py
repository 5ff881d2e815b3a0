"""The YAML front end: safe, strict, location-preserving (specdsl/frontend/yaml.py)."""

from __future__ import annotations

import copy
import math
from dataclasses import FrozenInstanceError

import pytest

import specdsl
from specdsl.errors import SourceLoc, SpecError
from specdsl.frontend.dsl import load_dsl
from specdsl.frontend.yaml import MAX_DEPTH, load_yaml

TEXT = """\
model: m
input: [3, 32, 32]
layers:
  - conv: {out: 6, k: 5}
  - relu
"""


def error(text: str, **kw) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_yaml(text, "f.yaml", **kw)
    return info.value


def codes(text: str) -> list[str]:
    return [d.code for d in error(text).diagnostics]


def value(text: str):
    return load_yaml(f"v: {text}\n")[0]["v"]


# ---------------------------------------------------------------- plain data and locations


def test_plain_data() -> None:
    data, _ = load_yaml(TEXT)
    assert data == {"model": "m", "input": [3, 32, 32], "layers": [{"conv": {"out": 6, "k": 5}}, "relu"]}


def test_locations_are_one_based_and_exact() -> None:
    _, smap = load_yaml(TEXT, "f.yaml")
    assert smap.file == "f.yaml"
    assert smap.keys[("model",)] == SourceLoc("f.yaml", 1, 1, 1, 6)
    assert smap.values[("model",)] == SourceLoc("f.yaml", 1, 8, 1, 9)
    assert smap.values[("input", 0)] == SourceLoc("f.yaml", 2, 9, 2, 10)
    assert smap.values[("input", 1)] == SourceLoc("f.yaml", 2, 12, 2, 14)
    assert smap.values[("input", 2)] == SourceLoc("f.yaml", 2, 16, 2, 18)
    # a flow mapping's span covers its braces
    assert smap.values[("input",)] == SourceLoc("f.yaml", 2, 8, 2, 19)
    assert smap.values[("layers", 0, "conv")] == SourceLoc("f.yaml", 4, 11, 4, 25)
    assert smap.keys[("layers", 0, "conv", "k")] == SourceLoc("f.yaml", 4, 20, 4, 21)
    assert smap.values[("layers", 0, "conv", "k")] == SourceLoc("f.yaml", 4, 23, 4, 24)
    assert smap.values[("layers", 1)] == SourceLoc("f.yaml", 5, 5, 5, 9)
    assert str(smap.values[("layers", 1)]) == "f.yaml:5:5"


def test_every_location_points_at_its_text() -> None:
    _, smap = load_yaml(TEXT)
    lines = TEXT.splitlines()
    assert smap.raw
    for path, raw in smap.raw.items():
        loc = smap.values[path]
        assert lines[loc.line - 1][loc.col - 1:loc.end_col - 1] == raw
    for path, loc in smap.keys.items():
        assert lines[loc.line - 1][loc.col - 1:loc.end_col - 1] == path[-1]


def test_value_loc_falls_back_to_the_longest_prefix() -> None:
    _, smap = load_yaml(TEXT)
    assert smap.value_loc(("layers", 0, "conv", "stride")) == smap.values[("layers", 0, "conv")]
    assert smap.key_loc(("layers", 1)) == smap.values[("layers", 1)]


def test_both_front_ends_hand_out_a_frozen_source_map() -> None:
    for smap in (load_yaml(TEXT)[1], load_dsl("model m\ninput [3, 8, 8]\nlayers {\n    relu\n}\n")[1]):
        with pytest.raises(FrozenInstanceError):
            smap.values = {}  # type: ignore[misc]
        with pytest.raises(TypeError):
            smap.values[("model",)] = SourceLoc("x", 1, 1)  # type: ignore[index]
        assert copy.deepcopy(smap) is smap


def test_raw_text_of_plain_scalars_is_kept() -> None:
    _, smap = load_yaml("a: 1.10\nb: '1.10'\n")
    assert smap.raw[("a",)] == "1.10"
    assert ("b",) not in smap.raw


def test_locations_count_characters_not_bytes() -> None:
    err = error('{d: "héé😀", k: 012}\n')
    assert err.diagnostics[0].loc.col == 16


def test_crlf_line_endings() -> None:
    err = error("a: 1\r\nb: [1, 012]\r\n")
    loc = err.diagnostics[0].loc
    assert (loc.line, loc.col) == (2, 8)
    assert "   2 | b: [1, 012]" in err.render()


def test_byte_order_mark_and_tabs() -> None:
    assert load_yaml("\ufeffa: 1\n")[0] == {"a": 1}
    assert load_yaml("a:\tb\n")[0] == {"a": "b"}


def test_empty_document() -> None:
    assert load_yaml("")[0] is None
    assert load_yaml("# only a comment\n")[0] is None


def test_explicit_single_document_markers_are_fine() -> None:
    assert load_yaml("---\na: 1\n...\n")[0] == {"a": 1}
    assert load_yaml("%YAML 1.2\n---\na: 1\n")[0] == {"a": 1}


# ---------------------------------------------------------------- scalar typing (YAML 1.2 core, no 1.1 surprises)


@pytest.mark.parametrize(("text", "expected"), [
    ("3", 3), ("-5", -5), ("+3", 3), ("0", 0),
    ("0x1F", 31), ("0o17", 15),
    ("1.5", 1.5), ("1.", 1.0), (".5", 0.5), ("1e3", 1000.0), ("1E-2", 0.01), ("-2.5e1", -25.0),
    (".inf", math.inf), ("-.inf", -math.inf),
    ("true", True), ("True", True), ("FALSE", False),
    ("null", None), ("~", None), ("Null", None), ("", None),
    ("relu", "relu"), ("nearest-exact", "nearest-exact"), ("c * 4", "c * 4"), ("1.2.3", "1.2.3"),
])
def test_plain_scalars(text: str, expected) -> None:
    got = value(text)
    assert got == expected
    assert type(got) is type(expected)


def test_nan() -> None:
    assert math.isnan(value(".nan"))


@pytest.mark.parametrize("text", ["'012'", '"no"', '"1.10"', "'true'", '"null"', "'0x10'", '"3"', "'yes'", '""'])
def test_quoted_scalars_stay_strings(text: str) -> None:
    assert value(text) == text[1:-1]


def test_block_scalars_stay_strings() -> None:
    assert load_yaml("d: |\n  012\n  no\n")[0] == {"d": "012\nno\n"}


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "NO", "On", "OFF"])
def test_yaml11_booleans_are_refused(word: str) -> None:
    (diag,) = error(f"v: {word}\n").diagnostics
    assert diag.code == "E105"
    assert diag.message == (f"ambiguous YAML value '{word}': YAML 1.1 reads it as a boolean, YAML 1.2 as a string")
    assert diag.hint == f'write true/false for a flag, or quote it ("{word}") for a name'


@pytest.mark.parametrize(("text", "hint"), [
    ("012", "write 12 for the number, or quote it for a string"),
    ("-012", "write -12 for the number, or quote it for a string"),
    ("00", "write 0 for the number, or quote it for a string"),
    ("1_000", "write 1000 without underscores, or quote it"),
])
def test_ambiguous_numbers_are_refused(text: str, hint: str) -> None:
    (diag,) = error(f"v: {text}\n").diagnostics
    assert diag.code == "E106"
    assert diag.hint == hint


def test_keys_are_never_typed() -> None:
    # `n`, `y`, `no`, `012` are fine as keys: keys are names
    assert load_yaml("n: 1\ny: 2\nno: 3\n012: 4\n1: 5\n")[0] == {"n": 1, "y": 2, "no": 3, "012": 4, "1": 5}


def test_all_ambiguous_values_are_reported_together() -> None:
    err = error("a: yes\nb: [012, off]\n")
    assert [(d.code, d.loc.line, d.loc.col) for d in err.diagnostics] == [
        ("E105", 1, 4), ("E106", 2, 5), ("E105", 2, 10)]


# ---------------------------------------------------------------- safety


@pytest.mark.parametrize("text", [
    'a: !!python/object/apply:os.system ["touch /tmp/specdsl-pwned"]\n',
    "a: !!python/name:os.system\n",
    "a: !!python/object/new:subprocess.Popen [[ls]]\n",
    "a: !!binary aGk=\n",
    "a: !custom 1\n",
    "a: !!str 3\n",
    "!!map {a: 1}\n",
])
def test_tags_are_refused_before_anything_is_constructed(text: str) -> None:
    err = error(text)
    assert [d.code for d in err.diagnostics] == ["E104"]
    assert err.diagnostics[0].message.startswith("YAML tags are not allowed (received !")


def test_python_tag_message_shows_the_tag() -> None:
    (diag,) = error("- !!python/object/apply:os.system [echo]\n").diagnostics
    assert diag.message == "YAML tags are not allowed (received !!python/object/apply:os.system)"
    assert (diag.loc.line, diag.loc.col) == (1, 3)


def test_anchor_and_alias_refused() -> None:
    (diag,) = error("a: &x {k: 3}\nb: *x\n").diagnostics
    assert (diag.code, diag.message, diag.loc.line) == ("E103", "YAML anchors are not allowed (received &x)", 1)
    (diag,) = error("b: *x\n").diagnostics
    assert diag.code in ("E101", "E103")


def test_billion_laughs_is_refused_at_the_first_anchor() -> None:
    text = 'a: &a ["lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
    err = error(text)
    assert [d.code for d in err.diagnostics] == ["E103"]


def test_duplicate_keys() -> None:
    (diag,) = error("model: a\ninput: [3]\nmodel: b\n").diagnostics
    assert diag.code == "E102"
    assert diag.message == "duplicate key 'model' (first defined at line 1)"
    assert (diag.loc.line, diag.loc.col) == (3, 1)
    assert codes("a: {b: 1, 'b': 2}\n") == ["E102"]


def test_same_key_in_different_mappings_is_fine() -> None:
    assert load_yaml("- {k: 1}\n- {k: 2}\n")[0] == [{"k": 1}, {"k": 2}]


def test_complex_keys_refused() -> None:
    assert codes("? [a, b]\n: 1\n") == ["E107"]
    assert codes("{[a]: 1}\n") == ["E107"]


def test_merge_key_is_just_a_key() -> None:
    assert load_yaml("<<: {a: 1}\n")[0] == {"<<": {"a": 1}}


def test_multiple_documents_refused() -> None:
    (diag,) = error("a: 1\n---\nb: 2\n").diagnostics
    assert diag.code == "E108"
    assert (diag.loc.line, diag.loc.col) == (2, 1)
    assert codes("a: 1\n...\n---\n") == ["E108"]


def test_nesting_limit() -> None:
    assert load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH)[0] is not None
    (diag,) = error("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).diagnostics
    assert diag.code == "E109"
    assert diag.loc.col == MAX_DEPTH + 1
    err = error("a: {b: {c: [1]}}\n", max_depth=3)
    assert [d.code for d in err.diagnostics] == ["E109"]


def test_deep_nesting_is_fast_and_does_not_recurse() -> None:
    text = "[" * 100_000 + "]" * 100_000
    assert codes(text) in (["E109"], ["E101"])


# ---------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(("text", "line", "col"), [
    ("a: [1, 2\n", 1, 9),
    ("a: b: c\n", 1, 5),
    ("a:\n  - 1\n - 2\n", 3, 2),
    ('a: "unterminated\n', 1, 17),
    ("- a\nb: 1\n", 2, 1),
])
def test_syntax_errors_are_located(text: str, line: int, col: int) -> None:
    err = error(text)
    (diag,) = err.diagnostics
    assert diag.code == "E101"
    assert diag.message.startswith("YAML syntax error: ")
    assert (diag.loc.line, diag.loc.col) == (line, col)
    # the location is always on a real line of the file, so a snippet can be drawn
    assert f"{line:>4} | " in err.render()


def test_syntax_error_keeps_earlier_diagnostics() -> None:
    err = error("a: yes\nb: [1\n")
    assert [d.code for d in err.diagnostics] == ["E105", "E101"]


def test_errors_carry_the_source_for_snippets() -> None:
    err = error("a: 012\n")
    assert err.sources == {"f.yaml": "a: 012\n"}
    assert err.render() == (
        "f.yaml:1:4: error E106: ambiguous number '012': a leading zero means octal in YAML 1.1\n"
        "   1 | a: 012\n"
        "     |    ^^^\n"
        "  = hint: write 12 for the number, or quote it for a string"
    )
    assert str(err) == err.render()  # the full rendering: a traceback or a notebook shows the hint too


# ---------------------------------------------------------------- through the public API


def test_load_refuses_python_tags_in_a_spec(tmp_path) -> None:
    marker = tmp_path / "pwned"
    text = f'model: m\ninput: [3]\nlayers:\n  - !!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(SpecError):
        specdsl.load(text)
    assert not marker.exists()


def test_quoted_model_name_stays_a_string() -> None:
    m = specdsl.load('model: "1.10"\ninput: [4]\nlayers:\n  - relu\n')
    assert m.name == "1.10"


def test_unquoted_numeric_model_name_is_a_type_error() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load("model: 1.10\ninput: [4]\nlayers:\n  - relu\n")
    (diag,) = info.value.diagnostics
    assert diag.code == "E202"
    assert diag.message == "'model' expects a string; received 1.10 (a number)"
    assert diag.hint == 'quote it to keep it as text: "1.10"'


def test_large_file_refused(tmp_path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (4 * 1024 * 1024) + "\n")
    with pytest.raises(SpecError) as info:
        specdsl.load(path)
    assert info.value.diagnostics[0].code == "E110"


def test_non_utf8_file_refused(tmp_path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError) as info:
        specdsl.load(path)
    (diag,) = info.value.diagnostics
    assert diag.code == "E111"
    assert "byte 10" in diag.message


@pytest.mark.parametrize("word", ["y", "n", "Y", "N"])
def test_single_letters_stay_strings(word: str) -> None:
    # YAML 1.1 lists y/n as booleans, but PyYAML and most tools read them as text,
    # and `n` is a common parameter name.
    assert load_yaml(f"v: {word}\n")[0] == {"v": word}
