"""Issue 17, items 7 and 9, the parts left: tall diagrams folded into columns, an evenly spaced legend,
and an emitted reset_parameters that reads like torchvision's.

The folded golden is ``tests/golden_dot/residual_all_wrap2.dot`` (accept new output with
SPECDSL_UPDATE_GOLDEN=1, then review the diff and render it with ``dot -Tpng``).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import specdsl
from specdsl import zoo
from specdsl.cli.main import main
from specdsl.render.dot import to_dot
from specdsl.render.dot_layout import parse_wrap

GOLDEN = Path(__file__).parent / "golden_dot"
UPDATE = os.environ.get("SPECDSL_UPDATE_GOLDEN") == "1"
SVG = "{http://www.w3.org/2000/svg}"
NODE_STMT = re.compile(r"^\s*([nb]\d+) \[", re.M)
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


# -- 7. a tall graph folds into columns -------------------------------------------------------------

def test_folded_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    actual = to_dot(specdsl.load("residual.cnn"), expand=None, wrap=2)
    expected = GOLDEN / "residual_all_wrap2.dot"
    if UPDATE:
        expected.write_text(actual, encoding="utf-8")
    assert actual == expected.read_text(encoding="utf-8")
    assert actual.count("subgraph cluster_column") == 2 and "(continued)" not in actual


def test_fold_draws_everything_once_and_cuts_edges_loose() -> None:
    model = specdsl.load("densenet121")
    flat, folded = to_dot(model, expand=None), to_dot(model, expand=None, wrap=None)
    assert "cluster_column" not in flat  # the API draws one column unless asked
    n = folded.count("subgraph cluster_column")
    assert 4 <= n <= 16
    assert sorted(NODE_STMT.findall(folded)) == sorted(NODE_STMT.findall(flat))
    assert folded.count(" -> ") - n + 1 == flat.count(" -> ")  # the same edges, plus the invisible ties
    assert 0 < folded.count("constraint=false") < 3 * n
    assert "dense (continued)" in folded
    assert to_dot(model, expand=None, wrap=None) == folded  # deterministic
    assert to_dot(specdsl.load("resnet18"), wrap=None) == to_dot(specdsl.load("resnet18"))  # short: unfolded


def test_parse_wrap() -> None:
    assert (parse_wrap("auto"), parse_wrap("none"), parse_wrap(" 3 ")) == (None, 1, 3)
    for bad in ("0", "-1", "x"):
        with pytest.raises(ValueError, match="expected auto, none or a number of columns"):
            parse_wrap(bad)


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


@needs_dot
def test_expanded_densenet_png_reads_on_a_screen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folded, strip = tmp_path / "d.png", tmp_path / "strip.png"
    assert main(["diagram", "densenet121", "--expand", "all", "-o", str(folded), "--dpi", "30"]) == 0
    assert main(["diagram", "densenet121", "--expand", "all", "-o", str(strip), "--dpi", "30", "--wrap", "none"]) == 0
    (w, h), (sw, sh) = png_size(folded), png_size(strip)
    assert sh > 20 * sw  # what a reader got before: a strip
    assert 0.5 < h / w < 2  # now about as wide as tall
    assert main(["diagram", "densenet121", "--expand", "all", "--wrap", "0"]) == 2
    assert "expected auto, none or a number of columns" in capsys.readouterr().err


@needs_dot
def test_folded_left_to_right_graph_has_rows(tmp_path: Path) -> None:
    out = tmp_path / "r.png"
    assert main(["diagram", "resnet18", "--expand", "all", "--rankdir", "LR", "--wrap", "none", "-o", str(out),
                 "--dpi", "30"]) == 0
    w1, h1 = png_size(out)
    assert main(["diagram", "resnet18", "--expand", "all", "--rankdir", "LR", "--wrap", "4", "-o", str(out),
                 "--dpi", "30"]) == 0
    w4, h4 = png_size(out)
    assert w4 < w1 / 2 and h4 > 2 * h1


# -- 7. the legend's rows share columns ------------------------------------------------------------

@needs_dot
def test_legend_rows_are_evenly_spaced() -> None:
    from specdsl.render.graphviz import render

    root = ET.fromstring(render(to_dot(specdsl.load("resnet18")), "svg"))
    graph = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "graph")
    # The legend's swatches: small filled boxes drawn in the graph's own label, before any node.
    swatches = []
    for poly in graph.iter(f"{SVG}polygon"):
        xs = [float(p.split(",")[0]) for p in poly.get("points", "").split()]
        ys = [float(p.split(",")[1]) for p in poly.get("points", "").split()]
        if poly.get("fill") != "none" and xs and max(xs) - min(xs) == 16:
            swatches.append((round(min(ys)), round(min(xs), 1)))
    rows: dict[int, list[float]] = {}
    for y, x in sorted(swatches):
        rows.setdefault(y, []).append(x)
    first, *others = [sorted(xs) for _, xs in sorted(rows.items())]
    assert len(first) == 5 and others, rows
    for row in others:
        assert row == first[:len(row)]  # every row starts its entries where the first row does


# -- 9. reset_parameters as a loop, the same draws ------------------------------------------------

def test_reset_parameters_is_a_loop() -> None:
    from specdsl.backends.torch.emit import emit

    source = emit(specdsl.load("resnet18"))
    body = source.split("def reset_parameters(self) -> None:\n")[1].split("\n\n")[0].splitlines()
    assert body[0].strip() == "for _, m in self.named_modules():"
    assert "if isinstance(m, nn.Conv2d):" in body[1] and "elif isinstance(m, nn.BatchNorm2d):" in body[3]
    assert len(body) == 6


def _small_zoo() -> list[str]:
    """Zoo models under 8M parameters (each is built twice; the big ones add minutes, not coverage).
    SPECDSL_EXPORT_ALL=1 takes every model."""
    import os

    names = zoo.names()
    if os.environ.get("SPECDSL_EXPORT_ALL"):
        return names
    small = []
    for name in names:
        try:
            if specdsl.load(name, warn=False).totals.params < 8_000_000:
                small.append(name)
        except specdsl.SpecError:
            small.append(name)  # let the test itself report it
    return small


@pytest.mark.parametrize("name", _small_zoo())
def test_loop_initialises_exactly_as_the_unrolled_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    torch = pytest.importorskip("torch")
    from specdsl.backends.torch import emit as emit_module
    from specdsl.backends.torch.emit import load_emitted

    model = specdsl.load(name, warn=False)  # the zoo's warnings are asserted in test_zoo.py
    looped = emit_module.emit(model)
    monkeypatch.setattr(emit_module, "init_loop", lambda *a: None)
    unrolled = emit_module.emit(model)
    states = []
    for source in (looped, unrolled):
        torch.manual_seed(0)
        states.append(load_emitted(source)().state_dict())
    assert list(states[0]) == list(states[1])
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key
