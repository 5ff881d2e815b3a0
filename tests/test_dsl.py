"""The text DSL: syntax errors (golden), round trips with YAML, fmt, limits."""

from __future__ import annotations

import os
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specdsl
from specdsl import zoo
from specdsl.api import read_data
from specdsl.budgets import Budgets
from specdsl.cli.main import main
from specdsl.errors import SpecError
from specdsl.frontend.dsl import load_dsl, parse_dsl, parser
from specdsl.render.json import model_json
from specdsl.render.printer import to_dsl, to_yaml

GOLDEN = Path(__file__).parent / "golden_dsl"
CASES = sorted(p.stem for p in GOLDEN.glob("*.cnn"))
UPDATE = os.environ.get("SPECDSL_UPDATE_GOLDEN") == "1"


def figures(model: specdsl.Model) -> dict[str, Any]:
    """Everything the analysis says, minus where the text came from."""
    data = model_json(model)
    data.pop("file")
    for node in data["nodes"]:
        node.pop("location")
    for diag in data["diagnostics"]:
        diag.pop("location")
        # "while expanding block 'b' (...) called at FILE:LINE:COL (path)": the call's place in the text.
        diag["notes"] = [re.sub(r" called at \S+ ", " called at ", n) for n in diag.get("notes") or []]
    return data


@pytest.mark.parametrize("name", CASES)
def test_syntax_error_golden(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(GOLDEN)
    with pytest.raises(SpecError) as info:
        specdsl.load(f"{name}.cnn")
    actual = info.value.render(full=True) + "\n"
    expected = GOLDEN / f"{name}.out"
    if UPDATE:
        expected.write_text(actual, encoding="utf-8")
    assert actual == expected.read_text(encoding="utf-8")
    assert actual.startswith(f"{name}.cnn:")
    assert "^" in actual


def test_at_least_fifteen_syntax_goldens() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_round_trip_yaml_dsl_yaml(name: str) -> None:
    file, text = zoo.find(name)  # type: ignore[misc]
    data, _ = read_data(text, file)
    dsl = to_dsl(data)
    data_from_dsl, _ = load_dsl(dsl, "x.cnn")
    yaml_text = to_yaml(data_from_dsl)
    original = figures(specdsl.load(name, warn=False))  # the zoo's warnings are asserted in test_zoo.py
    assert figures(specdsl.load(dsl, warn=False)) == original
    assert figures(specdsl.load(yaml_text, warn=False)) == original
    # Canonical text is a fixed point of the round trip.
    assert to_dsl(read_data(yaml_text, "y.yaml")[0]) == dsl


def test_zoo_carries_both_syntaxes() -> None:
    suffixes = {zoo.find(n)[0].rsplit(".", 1)[1] for n in zoo.names()}  # type: ignore[index]
    assert suffixes == {"yaml", "cnn"}


def test_dsl_and_yaml_resnet18_agree() -> None:
    dsl_model = specdsl.load("resnet18")
    assert dsl_model.file.endswith(".cnn")
    assert dsl_model.totals.params == 11_689_512
    assert dsl_model.totals.macs == 1_814_073_344


def test_locations_point_into_the_dsl_text() -> None:
    text = "model m\ninput [3, 8, 8]\nlayers {\n    conv(4, k=3, groups=3)\n}\n"
    with pytest.raises(SpecError) as info:
        specdsl.load(text)
    (diag,) = info.value.errors
    assert diag.code == "E303"
    assert (diag.loc.line, diag.loc.col) == (4, 25)  # the value of groups


def test_comments_newlines_and_arrow_continuation() -> None:
    text = (
        "# header\nmodel m  # trailing\ninput [3, 8, 8]\n\nlayers {\n"
        "    conv(4, k=3)  # c1\n    -> relu\n\n    # own line\n    conv(\n        8,\n        k=1\n    ) ->\n"
        "    relu\n}\n"
    )
    parsed = parse_dsl(text)
    assert parsed.data["layers"] == [{"conv": {"out": 4, "k": 3}}, "relu", {"conv": {"out": 8, "k": 1}}, "relu"]
    assert [c[2] for c in parsed.comments] == ["# header", "# trailing", "# c1", "# own line"]


def test_parses_in_threads_keep_their_own_comments_and_budgets() -> None:
    # The parser is shared; each call's comments, open brackets and budgets are its own.
    def text(i: int) -> str:
        rows = "".join(f"    conv({i + 1}, k=1)  # row {i}.{j}\n" for j in range(40))
        return f"# file {i}\nmodel m{i}\ninput [3, 8, 8]\nlayers {{\n{rows}}}\n"

    tight = Budgets(max_tokens=50)
    barrier = threading.Barrier(8)

    def run(i: int) -> None:
        barrier.wait()
        for _ in range(5):
            if i % 2:  # refused by its own budget, while the others parse with the default
                with pytest.raises(SpecError) as info:
                    parse_dsl(text(i), budgets=tight)
                assert info.value.errors[0].code == "E409" and "50 tokens" in info.value.errors[0].message
                continue
            parsed = parse_dsl(text(i))
            assert parsed.data["model"] == f"m{i}"
            assert [c[2] for c in parsed.comments] == [f"# file {i}", *(f"# row {i}.{j}" for j in range(40))]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so the parses interleave
    try:
        with ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(run, i) for i in range(8)]:
                future.result()
    finally:
        sys.setswitchinterval(interval)


def test_the_parser_is_not_cached_on_disk() -> None:
    # lark's cache=True reads back a pickle from the temp folder: anyone who can write there runs code.
    assert not parser().options.cache


def test_fmt_keeps_comments_and_is_idempotent(tmp_path: Path) -> None:
    src = tmp_path / "m.cnn"
    src.write_text(
        "# My model\nmodel  m\ninput [3,8,8]\nlayers {\n  # stem\n  conv(4,k=3)->relu # first\n"
        "  conv(8, k=3) -> relu\n}\n# end\n"
    )
    assert main(["fmt", str(src)]) == 0
    once = src.read_text()
    for comment in ("# My model", "# stem", "# first", "# end"):
        assert comment in once
    assert "conv(4, k=3) -> relu  # first" in once
    assert main(["fmt", "--check", str(src)]) == 0
    assert main(["fmt", str(src)]) == 0
    assert src.read_text() == once


def test_fmt_check_reports_unformatted(tmp_path: Path) -> None:
    src = tmp_path / "m.cnn"
    src.write_text("model m\ninput [3,8,8]\nlayers {\n relu\n}\n")
    assert main(["fmt", "--check", str(src)]) == 1
    assert src.read_text() == "model m\ninput [3,8,8]\nlayers {\n relu\n}\n"


def test_fmt_refuses_yaml(tmp_path: Path) -> None:
    src = tmp_path / "m.yaml"
    src.write_text("model: m\ninput: [3, 8, 8]\nlayers: [relu]\n")
    assert main(["fmt", str(src)]) == 2


def test_convert_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "lenet5", "--to", "yaml"]) == 0
    yaml_text = capsys.readouterr().out
    assert "\nmodel: lenet5\n" in yaml_text and yaml_text.startswith("# LeNet-5")  # the comments come along
    out = tmp_path / "l.cnn"
    assert main(["convert", "vgg16", "--to", "dsl", "-o", str(out)]) == 0
    assert specdsl.load(str(out)).totals.params == 138_357_544


def test_convert_takes_a_parseable_but_invalid_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.yaml"
    src.write_text("model: m\ninput: [3, 8, 8]\nlayers:\n  - covn: {out: 3, k: 3}\n")
    assert main(["convert", str(src), "--to", "dsl"]) == 0  # a typo is for check to report, not convert
    assert "covn(out=3, k=3)" in capsys.readouterr().out


@pytest.mark.parametrize("opener", ["(", "[", "{"])
def test_deep_nesting_is_a_clean_error(opener: str) -> None:
    # How long this takes is measured by benchmarks/bench_hostile_inputs.py, not asserted here.
    text = "model m\ninput [3, 8, 8]\nlayers {\n    conv" + opener * 100_000 + "\n"
    with pytest.raises(SpecError) as info:
        specdsl.load(text)
    assert info.value.errors[0].loc is not None


# libyaml (the C parser in PyYAML's wheels; 6.0.4's refuses flow nesting deeper than 1000 levels)
# looks up to 1024 characters ahead on a line before it hands over the first `[`, so on one long
# line of brackets its own limit fires first; the YAML front end reports that as our E109 too.
@pytest.mark.parametrize(("text", "line"), [
    ("model: m\ninput: " + "[" * 100_000 + "\n", 2),
    ("model: m\ninput: " + "[" * 200 + "\n", 2),  # deeper than the budget, within libyaml's limit
    ("model: m\ninput: " + "[\n" * 100_000, 65),  # one per line: the parser hands them over one by one
])
def test_nested_yaml_brackets_clean_error(text: str, line: int) -> None:
    # How long this takes is measured by benchmarks/bench_hostile_inputs.py, not asserted here.
    with pytest.raises(SpecError) as info:
        specdsl.load(text, budgets=Budgets(max_file_bytes=1 << 20))  # past the default file size
    (d,) = info.value.errors
    assert d.loc is not None and d.loc.line == line, d
    rendered = info.value.render(full=True)
    assert "Traceback" not in rendered and f"<string>:{line}:" in rendered
    assert d.code == "E109", d
    assert "max_depth budget" in d.message and "--max-depth" in (d.hint or ""), d


def test_expressions_round_trip_through_both_syntaxes() -> None:
    text = (
        "model m\ninput [3, 16, 16]\nblock b(c: int, s=1) {\n    conv(c * 2 + 1, k=3, stride=s, pad=(c - c) // 2 + 1)"
        " -> conv(-(-c // 2), k=1)\n}\nlayers {\n    b(4, s=2)\n}\n"
    )
    data, _ = load_dsl(text)
    body = data["blocks"]["b"]["layers"]
    assert body[0]["conv"] == {"out": "c * 2 + 1", "k": 3, "stride": "s", "pad": "(c - c) // 2 + 1"}
    assert body[1]["conv"]["out"] == "-(-c // 2)"
    model = specdsl.load(text)
    assert model.rows()[-2][1].shape == (9, 8, 8)
    assert model.rows()[-1][1].shape == (2, 8, 8)
    assert figures(specdsl.load(to_yaml(data))) == figures(model)


# -- random specs round-trip --------------------------------------------------

_ACT = st.sampled_from(["relu", "relu6", "gelu", "silu", "tanh", "sigmoid", "hardswish", "identity"])


@st.composite
def chain_layer(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["conv", "act", "bn", "pool", "dropout", "block"]))
    if kind == "conv":
        args: dict[str, Any] = {"out": draw(st.integers(1, 8)), "k": draw(st.sampled_from([1, 3]))}
        if args["k"] == 3:
            args["pad"] = draw(st.sampled_from([1, "same"]))
        if draw(st.booleans()):
            args["bias"] = False
        layer: Any = {"conv": args}
    elif kind == "act":
        layer = draw(_ACT)
    elif kind == "bn":
        layer = draw(st.sampled_from(["bn", {"bn": {"eps": 0.001}}, {"groupnorm": {"groups": 1}}]))
    elif kind == "pool":
        layer = {"maxpool": {"k": 3, "stride": 1, "pad": 1}}
    elif kind == "dropout":
        layer = {"dropout": {"p": draw(st.sampled_from([0.0, 0.25, 0.5]))}}
    else:
        layer = {"unit": {"c": draw(st.integers(1, 6))}}
    if isinstance(layer, dict) and draw(st.integers(0, 4)) == 0:
        layer["repeat"] = draw(st.integers(1, 3))
    return layer


@st.composite
def random_spec(draw: st.DrawFn) -> dict[str, Any]:
    layers = draw(st.lists(chain_layer(), min_size=1, max_size=12))
    named = draw(st.booleans())
    data: dict[str, Any] = {
        "model": "rand",
        "input": [draw(st.integers(1, 4)), draw(st.integers(4, 12)), draw(st.integers(4, 12))],
        "blocks": {
            "unit": {
                "params": {"c": "int", "stride": 1},
                "residual": {
                    "body": [{"conv": {"out": "c * 2", "k": 3, "stride": "stride", "pad": 1}}, "bn"],
                    "shortcut": "auto",
                    "post": "relu",
                },
            }
        },
        "layers": [*layers, "gap", {"linear": {"out": draw(st.integers(1, 10))}}],
    }
    if named:
        data["layers"][0] = {**data["layers"][0], "name": "first"} if isinstance(data["layers"][0], dict) else \
            {data["layers"][0]: None, "name": "first"}
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec())
def test_random_specs_round_trip(data: dict[str, Any]) -> None:
    yaml_text = to_yaml(data)
    dsl_text = to_dsl(data)
    from_yaml = specdsl.load(yaml_text)
    from_dsl = specdsl.load(dsl_text)
    assert figures(from_yaml) == figures(from_dsl)
    # Both printers are fixed points on their own output.
    assert to_dsl(load_dsl(dsl_text)[0]) == dsl_text
    assert to_yaml(read_data(yaml_text, "r.yaml")[0]) == yaml_text


@settings(max_examples=60, deadline=None)
@given(random_spec(), st.lists(st.sampled_from(["# note", "", "   "]), max_size=3))
def test_fmt_is_idempotent(data: dict[str, Any], extra: list[str]) -> None:
    text = to_dsl(data)
    lines = text.splitlines()
    # Sprinkle comments and blank lines between statements of the layers section.
    start = lines.index("layers {") + 1
    for i, line in enumerate(extra):
        lines.insert(start + i, "    " + line)
    messy = "\n".join(lines) + "\n"
    first = parse_dsl(messy)
    once = to_dsl(first.data, first.smap, first.comments)
    second = parse_dsl(once)
    twice = to_dsl(second.data, second.smap, second.comments)
    assert once == twice
    assert once.count("# note") == messy.count("# note")


def test_grammar_has_no_colliding_terminals() -> None:
    """lark's strict mode (slow, so not used at run time) proves no two terminals can match the same text."""
    from specdsl.frontend.dsl_parser import build_parser

    assert build_parser(strict=True) is not None


def test_the_packaged_parse_tables_match_the_grammar_and_lark() -> None:
    from specdsl.frontend import dsl_parser

    assert dsl_parser._load_tables() is not None, (
        "grammars/specdsl.tables.json was made from another grammar or another lark: "
        "run `.venv/bin/python scripts/build_parser_tables.py`")


BROKEN_DSL = ["model m\ninput [3,8,8]\nlayers {\n  conv(4, k=3) -> \n}\n", "model m\nlayers { relu( }\n",
              "model m(x: int = 2\n", "block b { -> }\n", "model m\nlayers {\n  [@a, @b.x y] -> add\n}\n",
              "variant v(width=)\n", "model m\noutputs [@a @b]\n"]


def test_the_packaged_tables_parse_as_the_grammar_does() -> None:
    """Every bundled spec gives the same tree (token types and positions too), every broken text the same
    error at the same place expecting the same tokens, from the packaged tables and from a fresh build."""
    from lark.exceptions import UnexpectedInput

    from specdsl.frontend.dsl_parser import ParseState, build_parser, parse_tree, parser

    packaged, built = parser(), build_parser()
    assert packaged is not built

    def outcome(text: str, using: Any) -> Any:
        try:
            tree = parse_tree(text, ParseState(max_tokens=10**6, max_depth=100), using)
        except UnexpectedInput as exc:
            return (type(exc).__name__, exc.line, exc.column, sorted(getattr(exc, "expected", None) or []))
        return [(t.type, str(t), t.line, t.column, t.end_pos) for t in tree.scan_values(lambda _: True)], tree

    from importlib import resources

    texts = [p.read_text(encoding="utf-8") for p in resources.files("specdsl.specs").iterdir()
             if p.name.endswith(".cnn")]
    assert len(texts) >= 15
    for text in texts:
        assert outcome(text, packaged) == outcome(text, built), text[:80]
    for text in BROKEN_DSL:
        assert isinstance(outcome(text, packaged)[0], str)  # an error, not a tree
        assert outcome(text, packaged) == outcome(text, built), text[:80]
