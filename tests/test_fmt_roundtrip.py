"""`specdsl fmt` never changes meaning: after formatting, the file parses to the same spec with every
comment kept (in the same body), or fmt refuses and writes nothing (issue 18; issue 17 item 4)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specdsl import zoo
from specdsl.cli.main import EXIT_OK, EXIT_SPEC, main
from specdsl.errors import SpecError
from specdsl.frontend.dsl import parse_dsl
from specdsl.frontend.yaml import load_yaml
from specdsl.render.printer import to_dsl
from specdsl.render.reformat import _difference, format_text

SPECS = Path(__file__).resolve().parents[1] / "specs"


def _zoo_dsl() -> list[str]:
    """Every zoo model as DSL text (YAML ones converted), the seeds of the property."""
    texts = []
    for name in zoo.names():
        for suffix in (".cnn", ".yaml"):
            path = SPECS / (name + suffix)
            if path.exists():
                text = path.read_text(encoding="utf-8")
                texts.append(text if suffix == ".cnn" else to_dsl(load_yaml(text, str(path))[0]))
    return texts


ZOO = _zoo_dsl()


def _same_meaning(before: str, after: str) -> None:
    a, b = parse_dsl(before, "a.cnn"), parse_dsl(after, "b.cnn")
    assert _difference(a.data, b.data, ()) is None
    assert Counter(c[2] for c in a.comments) == Counter(c[2] for c in b.comments)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, len(ZOO) - 1), st.lists(st.tuples(st.integers(0, 10_000), st.booleans(), st.integers(0, 3)),
                                              max_size=12))
def test_fmt_keeps_meaning_and_comments_of_commented_zoo_specs(index: int, inserts: list[tuple[int, bool, int]]
                                                               ) -> None:
    lines = ZOO[index].split("\n")
    for k, (at, trailing, spaces) in enumerate(inserts):
        i = at % len(lines)
        note = f"#{' ' * spaces}note {k}"
        if trailing and lines[i].strip() and "#" not in lines[i]:
            lines[i] += "  " + note
        else:
            lines.insert(i, note)
    text = "\n".join(lines)
    try:
        parse_dsl(text, "m.cnn")
    except SpecError:
        return  # a comment inside a string, say: not a parseable file
    try:
        out = format_text(text, "m.cnn")
    except SpecError as exc:
        assert exc.errors[0].code == "E420", exc.render()
        return
    _same_meaning(text, out)
    assert format_text(out, "m.cnn") == out  # formatting is idempotent


def test_every_zoo_dsl_file_formats_without_a_refusal() -> None:
    for path in sorted(SPECS.glob("*.cnn")):
        text = path.read_text(encoding="utf-8")
        _same_meaning(text, format_text(text, str(path)))


REPORTED = {
    "1e999 default": "model m\ninput [3, 8, 8]\n\nblock b(a=1e999, c=-1e999) {\n    relu\n}\n\nlayers {\n    b\n}\n",
    "comments on continuation lines": "model m\ninput [3, 8, 8]\n\nlayers {\n    conv(4,   # channels\n"
    "         k=3,   # kernel\n         # a whole line inside the brackets\n         pad=1)  # padding\n}\n",
    "comment at the end of a block": "model m\ninput [3, 8, 8]\n\nblock b() {\n    relu\n    # last in b\n}\n\n"
    "layers {\n    b\n    # last in layers\n}\n# the end\n",
    "comment after block parameters": "model m\ninput [3, 8, 8]\n\nblock b(c: int,  # width\n        k=3) {\n"
    "    conv(c, k=k)\n}\n\nlayers {\n    b(4)\n}\n",
    "unknown layer": "model m\ninput [3, 8, 8]\nlayers {\n    frobnicate(k=3)   ->   relu\n}\n",
    "a brace and a comment on one line": "model m\ninput [3, 8, 8]\n\nblock b() {  # opens\n    relu\n}  # closes\n\n"
    "layers {\n    b\n}\n",
}


@pytest.mark.parametrize("name", list(REPORTED))
def test_reported_fmt_bugs(name: str) -> None:
    text = REPORTED[name]
    out = format_text(text, "m.cnn")
    _same_meaning(text, out)


def test_fmt_refuses_what_it_cannot_write_and_leaves_the_file(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A raw ESC in a description: the DSL has no escape for it, so fmt refuses instead of writing `\\u001b`."""
    path = tmp_path / "esc.cnn"
    text = 'model m\ninput [3, 8, 8]\ndescription "a\x1bb"\nlayers {\n    relu  ->  relu\n}\n'
    path.write_text(text)
    try:
        parse_dsl(text, "esc.cnn")
    except SpecError:
        pytest.skip("the DSL reader refuses a raw ESC itself")
    assert main(["fmt", str(path)]) == EXIT_SPEC
    assert "E420" in capsys.readouterr().err and path.read_text() == text


def test_fmt_check_needs_a_parseable_file_and_goes_through_the_batch(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "a_broken.cnn"
    broken.write_text("model m\ninput [3, 8, 8]\nlayers {\n    relu(\n}\n")
    unknown = tmp_path / "b_unknown.cnn"
    unknown.write_text("model m\ninput [3, 8, 8]\nlayers {\n    frobnicate  ->  relu\n}\n")
    clean = tmp_path / "c_clean.cnn"
    clean.write_text("model m\ninput [3, 8, 8]\n\nlayers {\n    relu\n}\n")
    assert main(["fmt", "--check", str(broken), str(unknown), str(clean)]) == EXIT_SPEC
    err = capsys.readouterr().err
    assert "a_broken.cnn:5:1: error E401" in err and f"would reformat {unknown}" in err
    assert main(["fmt", str(broken), str(unknown), str(clean)]) == EXIT_SPEC
    assert unknown.read_text() == "model m\ninput [3, 8, 8]\n\nlayers {\n    frobnicate -> relu\n}\n"
    assert main(["fmt", "--check", str(unknown), str(clean)]) == EXIT_OK


def test_convert_keeps_comments_both_ways(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cnn = tmp_path / "m.cnn"
    cnn.write_text("# top\nmodel m\ninput [3, 8, 8]\n\nlayers {\n    # first\n    frobnicate -> relu  # act\n}\n")
    assert main(["convert", str(cnn), "--to", "yaml"]) == EXIT_OK
    yaml_text = capsys.readouterr().out
    for note in ("# top", "# first", "# act"):
        assert note in yaml_text
    yml = tmp_path / "m.yaml"
    yml.write_text(yaml_text)
    assert main(["convert", str(yml), "--to", "dsl"]) == EXIT_OK
    dsl_text = capsys.readouterr().out
    assert Counter(c[2] for c in parse_dsl(dsl_text, "x.cnn").comments) == Counter(["# top", "# first", "# act"])
