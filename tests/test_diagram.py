"""Graph diagrams (specdsl/render/dot.py): DOT text, escaping, expansion, rendering with `dot`, the CLI.

Golden DOT files live in ``tests/golden_dot/``. To accept new output after a deliberate change::

    SPECDSL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_diagram.py

then review the diff of ``tests/golden_dot/*.dot`` (and render one: ``dot -Tsvg``).
Tests that run Graphviz skip, saying why, when the `dot` program is not installed (see ``needs_dot``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import specdsl
from specdsl import zoo
from specdsl.cli.main import EXIT_OK, EXIT_SPEC, EXIT_USAGE, main
from specdsl.render.dot import to_dot
from specdsl.render.dot_layout import parse_expand
from specdsl.render.dot_style import ERROR_COLOURS, html_text, quoted, tooltip
from specdsl.render.figures import path_segments
from specdsl.render.graphviz import DotFailed, render

GOLDEN = Path(__file__).parent / "golden_dot"
UPDATE = os.environ.get("SPECDSL_UPDATE_GOLDEN") == "1"
SVG = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"

# The tests that run Graphviz skip, with this reason, where `dot` is missing (scripts/test.sh says so at
# the start and the end of its run); SPECDSL_REQUIRE_DOT=1, which .ci/run sets, makes them run and fail.
DOT_MISSING = ("Graphviz's `dot` is not installed (not on PATH): diagram rendering test skipped; "
               "install it with `apt-get install graphviz` or `brew install graphviz`")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None and os.environ.get("SPECDSL_REQUIRE_DOT") != "1",
                               reason=DOT_MISSING)

NODE_STMT = re.compile(r"^\s*([nb]\d+) \[", re.M)
EDGE_STMT = re.compile(r"^\s*([nb]\d+) -> ([nb]\d+) ", re.M)


@pytest.fixture
def in_golden(monkeypatch: pytest.MonkeyPatch) -> Path:
    # Relative file names keep the tooltips' `file:line:col` independent of the checkout.
    monkeypatch.chdir(GOLDEN)
    return GOLDEN


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# ---------------------------------------------------------------- the expansion rule, stated independently

def groups_of(path: str, blocks: dict[str, str]) -> list[str]:
    """The nesting levels around a node, outermost first: each level is a block call, or a repeat
    of block calls (``layers[4]`` for ``layers[4][0]`` and ``layers[4][1]``), which counts once."""
    levels: list[str] = []
    prefix = ""
    for seg in path_segments(path):
        parent = prefix
        prefix = prefix + seg if seg.startswith("[") or not prefix else f"{prefix}.{seg}"
        if prefix in blocks:
            is_copy = seg.startswith("[") and parent and parent not in blocks
            levels.append(parent if is_copy else prefix)
    return levels


def expected_items(model: specdsl.Model, expand: int | None) -> int:
    """How many boxes a diagram draws: a node inside `expand` or more levels of blocks is drawn
    as the box of its level-`expand` group; every other node is drawn itself."""
    drawn: set[str] = set()
    for node in model.graph.nodes:
        levels = groups_of(node.path, model.graph.blocks)
        if expand is not None and len(levels) > expand:
            drawn.add("box:" + levels[expand])
        else:
            drawn.add(f"node:{node.index}")
    return len(drawn)


def svg_of(model: specdsl.Model, **kw) -> ET.Element:
    return ET.fromstring(render(to_dot(model, **kw), "svg"))


def svg_groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


# ---------------------------------------------------------------- golden DOT

GOLDEN_CASES = {
    "lenet5": ("lenet5", {}),
    "residual": ("residual.cnn", {}),
    "residual_all": ("residual.cnn", {"expand": None}),
    "broken": ("broken.yaml", {}),
    "broken_all": ("broken.yaml", {"expand": None}),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_dot(in_golden: Path, name: str) -> None:
    source, kw = GOLDEN_CASES[name]
    actual = to_dot(specdsl.load(source, strict=False), **kw)
    expected_file = in_golden / f"{name}.dot"
    if UPDATE:
        expected_file.write_text(actual, encoding="utf-8")
    assert expected_file.exists(), f"no {name}.dot: run with SPECDSL_UPDATE_GOLDEN=1 and review it"
    assert actual == expected_file.read_text(encoding="utf-8")


def test_dot_is_deterministic() -> None:
    texts = {to_dot(specdsl.load("googlenet"), expand=1) for _ in range(3)}
    assert len(texts) == 1


def test_residual_golden_structure(in_golden: Path) -> None:
    """What the goldens pin, stated: one box per block call (a repeat is one box), dashed
    shortcut edges into add when expanded, clusters named cluster_..., a legend."""
    model = specdsl.load("residual.cnn")
    collapsed = to_dot(model)
    assert "unit ×2" in collapsed and "stage2" in collapsed
    assert "subgraph" not in collapsed
    assert len(NODE_STMT.findall(collapsed)) == expected_items(model, 0) == 8
    expanded = to_dot(model, expand=None)
    assert len(re.findall(r"^\s*subgraph cluster_\d+ \{", expanded, re.M)) == len(model.graph.blocks) == 3
    assert len(NODE_STMT.findall(expanded)) == len(model.graph.nodes)
    shortcuts = [line for line in expanded.splitlines() if "style=dashed" in line and " -> " in line]
    assert len(shortcuts) == 3  # every residual add gets its shortcut dashed
    assert "shortcut into add" in expanded and "block (collapsed)" in collapsed  # the legend
    assert "conv 3×3 s2 p1, 32 ch" in expanded  # op and key attributes
    assert "conv 1×1 s2, 32 ch" in expanded  # the projection shortcut of shortcut=auto


# ---------------------------------------------------------------- escaping

NASTY = ['say "hi"', "back\\slash", "trailing\\", "\\N \\G \\n \\l", "<b>&amp;</b> & <", "two\nlines",
         "tab\tand\x00nul\x1b", "]]> <!-- -->", "ünï ×→ 😀", "{ } [ ] ; = , -> --"]


def test_quoted_strings_cannot_break_out() -> None:
    for text in NASTY:
        for q in (quoted(text), tooltip(text)):
            assert q.startswith('"') and q.endswith('"')
            body = q[1:-1]
            # every quote inside is escaped, and the string does not end in an odd run of backslashes
            assert not re.search(r'(?<!\\)(?:\\\\)*"', body)
            assert "\n" not in body and "\x00" not in body
        h = html_text(text)
        assert not set(h) & set('<>"\n') and "\x00" not in h


@needs_dot
def test_escaped_text_survives_graphviz_exactly() -> None:
    printable = [t for t in NASTY if "\x00" not in t]
    lines = ["digraph G {"]
    for i, text in enumerate(printable):
        lines.append(f"  n{i} [label=<{html_text(text.replace(chr(10), ' '))}>, tooltip={tooltip(text)}];")
    lines.append("}")
    root = ET.fromstring(render("\n".join(lines), "svg"))
    tips = [a.get(XLINK_TITLE) for a in root.iter(f"{SVG}a")]
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert tips == printable
    assert labels == [t.replace("\n", " ") for t in printable]


@needs_dot
def test_spec_strings_with_odd_characters_render(tmp_path: Path, capsys) -> None:
    """A file name full of DOT and XML syntax, and a shape error, still give valid SVG."""
    odd = tmp_path / 'we "ird" \\n <x> & {y}\\.yaml'
    odd.write_text((GOLDEN / "broken.yaml").read_text())
    out = tmp_path / "odd.svg"
    status, _, err = run(capsys, "diagram", str(odd), "-o", str(out))
    assert status == EXIT_SPEC and "E312" in err
    tips = [a.get(XLINK_TITLE) or "" for a in ET.parse(out).getroot().iter(f"{SVG}a")]
    assert any(f"{odd}:8:5" in t for t in tips)


# ---------------------------------------------------------------- the zoo, rendered by dot

@needs_dot
@pytest.mark.parametrize("name", zoo.names())
def test_zoo_renders_collapsed_svg(name: str) -> None:
    model = specdsl.load(name, warn=False)  # the zoo's warnings are asserted in test_zoo.py
    root = svg_of(model)
    assert root.tag == f"{SVG}svg"
    assert len(svg_groups(root, "node")) == expected_items(model, 0)
    assert not svg_groups(root, "cluster")  # collapsed: blocks are boxes, not clusters


@needs_dot
@pytest.mark.parametrize("name", ["resnet18", "googlenet", "densenet121"])
def test_expanded_svg_draws_every_node_and_block(name: str) -> None:
    model = specdsl.load(name)
    root = svg_of(model, expand=None)
    assert len(svg_groups(root, "node")) == len(model.graph.nodes)
    assert len(svg_groups(root, "cluster")) == len(model.graph.blocks)


def test_densenet_concats_are_drawn_with_linear_edges() -> None:
    """Each DenseNet concat reads every earlier map; drawn as the previous concat plus the new
    map (the same tensor), the edges stay linear in the number of layers."""
    model = specdsl.load("densenet121")
    dot = to_dot(model, expand=None)
    fan_in = sum(len(n.inputs) for n in model.graph.nodes)
    edges = len(EDGE_STMT.findall(dot))
    assert edges < 1.2 * len(model.graph.nodes) < fan_in
    assert "stands for inputs 1-" in dot


@pytest.mark.parametrize("expand", [0, 1, 2, None])
def test_expand_depth_counts(expand: int | None) -> None:
    for name in ("squeezenet1_0", "mobilenet_v2", "inception_v3"):
        model = specdsl.load(name, warn=False)
        dot = to_dot(model, expand=expand)
        assert len(NODE_STMT.findall(dot)) == expected_items(model, expand), (name, expand)


def test_expand_levels_differ_where_blocks_nest() -> None:
    model = specdsl.load("mobilenet_v2")  # features holds 'ir' blocks, whose conv stage holds 'cbr' blocks
    counts = [expected_items(model, e) for e in (0, 1, 2, 3, 4, None)]
    assert counts[0] < counts[1] < counts[2] < counts[3] < counts[4] == counts[5] == len(model.graph.nodes)


def test_parse_expand() -> None:
    assert parse_expand("all") is None and parse_expand("none") == 0 and parse_expand("2") == 2
    with pytest.raises(Exception, match="expected all, none or a block depth"):
        parse_expand("deep")


# ---------------------------------------------------------------- errors in the spec

def test_failing_node_is_red_with_its_message(in_golden: Path) -> None:
    model = specdsl.load("broken.yaml", strict=False)
    failing = next(n for n in model.graph.nodes if n.path == "[2].add")
    dot = to_dot(model, expand=None)
    line = next(x for x in dot.splitlines() if x.strip().startswith(f"n{failing.index} ["))
    assert f'fillcolor="{ERROR_COLOURS[0]}"' in line and "E312" in line
    assert "add needs inputs of equal shape" in line.split("tooltip=")[1]
    # downstream nodes were not checked: dashed, not red
    last = model.graph.nodes[-1]
    tail = next(x for x in dot.splitlines() if x.strip().startswith(f"n{last.index} ["))
    assert "dashed" in tail and ERROR_COLOURS[0] not in tail


@needs_dot
def test_failing_spec_renders_red_node_in_svg(in_golden: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "broken.svg"
    status, _, err = run(capsys, "diagram", "broken.yaml", "--expand", "all", "-o", str(out))
    assert status == EXIT_SPEC
    assert "error E312" in err and f"wrote {out}" in err
    root = ET.parse(out).getroot()
    red = [g for g in svg_groups(root, "node")
           if any(p.get("fill") == ERROR_COLOURS[0] for p in g.iter() if p.tag in (f"{SVG}path", f"{SVG}polygon"))]
    assert len(red) == 1
    tips = [a.get(XLINK_TITLE) or "" for a in red[0].iter(f"{SVG}a")]
    assert any("error E312: add needs inputs of equal shape" in t for t in tips)


def test_expansion_error_draws_nothing(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "bad_block.yaml"
    spec.write_text("model: m\ninput: [3, 8, 8]\nblocks:\n  b:\n    params: {c: int}\n    layers:\n"
                    "      - conv: {out: c, k: 3}\nlayers:\n  - b: {c: 4, d: 5}\n")
    out = tmp_path / "x.dot"
    status, _, err = run(capsys, "diagram", str(spec), "-o", str(out))
    assert status == EXIT_SPEC and "error" in err
    assert not out.exists()


# ---------------------------------------------------------------- CLI options

def test_cli_writes_dot_and_options(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.dot"
    assert run(capsys, "diagram", "resnet18", "-o", str(out))[0] == EXIT_OK
    collapsed = out.read_text()
    assert "rankdir=TB" in collapsed and "layer1" in collapsed and "<B>stage</B>" in collapsed  # a box per stage
    assert run(capsys, "diagram", "resnet18", "--expand", "all", "--rankdir", "LR", "-o", str(out))[0] == EXIT_OK
    expanded = out.read_text()
    assert "rankdir=LR" in expanded
    assert len(NODE_STMT.findall(expanded)) == len(specdsl.load("resnet18").graph.nodes)
    assert run(capsys, "diagram", "resnet18", "--expand", "none", "-o", str(out))[0] == EXIT_OK
    assert out.read_text() == collapsed
    status, stdout, _ = run(capsys, "diagram", "lenet5", "--show", "rf")  # no -o: DOT on stdout
    assert status == EXIT_OK and stdout.startswith('digraph "lenet5"') and "RF 5/1/0" in stdout
    labels = [line.split("tooltip=")[0] for line in stdout.splitlines() if NODE_STMT.match(line)]
    assert labels and not any("params" in label or "MACs" in label for label in labels)


def test_show_none_has_no_edge_labels(capsys) -> None:
    status, stdout, _ = run(capsys, "diagram", "resnet18", "--show", "none")
    assert status == EXIT_OK
    assert not [line for line in stdout.splitlines() if " -> " in line and "label=" in line]


@pytest.mark.parametrize("argv, message", [
    (["-o", "x.bmp"], "cannot tell the format"),
    (["--expand", "deep"], "expected all, none or a block depth"),
    (["--rankdir", "BT"], "invalid choice"),
    (["--show", "flops"], "expected a comma-separated list"),
])
def test_cli_usage_errors(capsys, argv: list[str], message: str) -> None:
    status, _, err = run(capsys, "diagram", "lenet5", *argv)
    assert status == EXIT_USAGE and message in err


def test_missing_dot_says_how_to_install(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    status, _, err = run(capsys, "diagram", "lenet5", "-o", str(tmp_path / "x.svg"))
    assert status == EXIT_USAGE
    assert "needs Graphviz's `dot` program" in err
    for how in ("apt-get install graphviz", "brew install graphviz", "conda install"):
        assert how in err
    assert not (tmp_path / "x.svg").exists()
    assert run(capsys, "diagram", "lenet5", "-o", str(tmp_path / "x.dot"))[0] == EXIT_OK
    assert (tmp_path / "x.dot").read_text().startswith("digraph")


def _fake_dot(tmp_path: Path, body: str, monkeypatch) -> None:
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n" + body + "\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(fake.parent))


@pytest.mark.skipif(os.name != "posix", reason="a shell-script stand-in for dot")
def test_dot_failure_is_reported(tmp_path: Path, monkeypatch, capsys) -> None:
    _fake_dot(tmp_path, "echo 'Error: syntax error in line 1' >&2; exit 1", monkeypatch)
    status, _, err = run(capsys, "diagram", "lenet5", "-o", str(tmp_path / "x.png"))
    assert status == EXIT_USAGE and "`dot` failed (exit 1): Error: syntax error" in err


@pytest.mark.skipif(os.name != "posix", reason="a shell-script stand-in for dot")
def test_dot_timeout(tmp_path: Path, monkeypatch) -> None:
    _fake_dot(tmp_path, "exec /bin/sleep 5", monkeypatch)
    with pytest.raises(DotFailed, match="did not finish"):
        render("digraph G {}", "svg", timeout=0.3)


@needs_dot
@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_png_and_pdf(tmp_path: Path, capsys, fmt: str, magic: bytes) -> None:
    out = tmp_path / f"lenet5.{fmt}"
    assert run(capsys, "diagram", "lenet5", "-o", str(out))[0] == EXIT_OK
    assert out.read_bytes().startswith(magic)
