"""Issue 17, "the first hour of a new user": each complaint reproduced, then held fixed.

Messages are golden files: ``tests/golden_new_user/NAME.{cnn,yaml}`` and the ``NAME.out`` that
specdsl prints for it (accept new wording with SPECDSL_UPDATE_GOLDEN=1, then review the diff).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import warnings
from pathlib import Path

import pytest

import specdsl
from specdsl.cli.main import main
from specdsl.errors import SpecError, render_all

GOLDEN = Path(__file__).parent / "golden_new_user"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.suffix in (".cnn", ".yaml"))
UPDATE = os.environ.get("SPECDSL_UPDATE_GOLDEN") == "1"
ROOT = Path(__file__).parent.parent

NO_FLATTEN = "model noflat\ninput [3, 8, 10]\n\nlayers {\n    conv(32, k=3, pad=1) -> relu -> linear(10)\n}\n"


def rendered(name: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", specdsl.SpecWarning)
        try:
            model = specdsl.load(name)
        except SpecError as exc:
            return exc.render(full=True) + "\n"
    return render_all(model.diagnostics, model.sources, full=True) + "\n"


@pytest.mark.parametrize("name", CASES)
def test_golden(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(GOLDEN)
    actual = rendered(name)
    expected = GOLDEN / (Path(name).stem + Path(name).suffix.replace(".", "_") + ".out")
    if UPDATE:
        expected.write_text(actual, encoding="utf-8")
    assert expected.exists(), f"no {expected.name}: run with SPECDSL_UPDATE_GOLDEN=1 and review it"
    assert actual == expected.read_text(encoding="utf-8")


@pytest.fixture
def noflat(tmp_path: Path) -> Path:
    path = tmp_path / "noflat.cnn"
    path.write_text(NO_FLATTEN, encoding="utf-8")
    return path


# -- 1. warnings reach the user on every command and in the API ---------------------------------

@pytest.mark.parametrize("command", [["check"], ["build"], ["diagram"]])
def test_every_command_prints_the_warnings(noflat: Path, capsys: pytest.CaptureFixture[str],
                                           command: list[str]) -> None:
    assert main([*command, str(noflat)]) == 0
    err = capsys.readouterr().err
    assert "warning W302: linear acts on the last axis only" in err and "= hint: add `flatten`" in err
    assert main([*command, str(noflat), "--quiet"]) == 0
    assert "W302" not in capsys.readouterr().err
    assert main([*command, str(noflat), "--strict"]) == 1
    assert "--strict treats as errors" in capsys.readouterr().err


def test_build_says_what_it_wrote(noflat: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.py"
    assert main(["build", str(noflat), "-o", str(out)]) == 0
    assert f"wrote {out} (class Noflat, 1,006 parameters)" in capsys.readouterr().err


def test_run_shows_the_output_shape_and_warnings(noflat: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    assert main(["run", str(noflat), "--batch", "2", "--steps", "1"]) == 0
    captured = capsys.readouterr()
    assert "output:     [2, 32, 8, 10] (float32)" in captured.out
    assert "W302" in captured.err


def test_the_api_issues_spec_warnings(noflat: Path) -> None:
    with pytest.warns(specdsl.SpecWarning, match="W302") as record:
        specdsl.load(noflat)
    assert record[0].message.diagnostic.code == "W302"  # type: ignore[union-attr]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        specdsl.load(noflat, warn=False)


def test_str_of_spec_error_is_the_full_rendering() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load(GOLDEN / "same_stride.cnn")
    assert str(info.value) == info.value.render(full=True)
    assert "= hint: give explicit padding" in str(info.value)


# -- 2. unused nodes and parameters -------------------------------------------------------------

def test_unused_warnings_have_path_and_line() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = specdsl.load(GOLDEN / "unused_node.cnn")
    (w,) = m.warnings
    assert (w.code, w.path, w.loc.line if w.loc else None) == ("W350", "unused", 6)


def test_a_part_never_referred_to_is_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert specdsl.load(GOLDEN / "split_part.cnn").warnings == []


@pytest.mark.parametrize("name", ["resnet50", "densenet121", "googlenet", "inception_v3", "unet",
                                  "fractalnet_cifar10", "mobilenet_v2"])
def test_the_zoo_wastes_nothing(name: str) -> None:
    assert not [d.code for d in specdsl.load(name).warnings if d.code.startswith("W35")]


# -- 3. cascading errors --------------------------------------------------------------------------

def test_a_failed_block_call_is_reported_once() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load(GOLDEN / "cascade.cnn")
    assert [d.code for d in info.value.diagnostics] == ["E204"]


# -- 6. hints in the user's syntax ------------------------------------------------------------------

def test_hints_follow_the_file_syntax() -> None:
    from specdsl.passes.voice import to_dsl, to_yaml

    assert to_dsl("give explicit padding, e.g. pad: (k - 1) // 2") == "give explicit padding, e.g. pad=(k - 1) // 2"
    assert to_dsl("write upsample: {scale: 2}") == "write upsample(scale=2)"
    assert to_dsl("name a layer with `name:` before referring to it").endswith("`as NAME` before referring to it")
    assert to_yaml("keep the pooled axes: gap(keepdims=true)") == "keep the pooled axes: gap: {keepdims: true}"
    assert to_yaml("e.g. conv(128, k=1) on input 2") == "e.g. conv: {out: 128, k: 1} on input 2"
    assert to_yaml("(Python: Budgets(max_depth=N))") == "(Python: Budgets(max_depth=N))"


# -- 7. diagrams -----------------------------------------------------------------------------------

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


@needs_dot
def test_png_dpi_and_jpg(tmp_path: Path) -> None:
    low, high, jpg = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.jpg"
    assert main(["diagram", "lenet5", "-o", str(low), "--dpi", "72"]) == 0
    assert main(["diagram", "lenet5", "-o", str(high)]) == 0
    assert main(["diagram", "lenet5", "-o", str(jpg)]) == 0

    def width(p: Path) -> int:
        return struct.unpack(">I", p.read_bytes()[16:20])[0]

    assert width(high) > 2 * width(low) * 0.9
    assert jpg.read_bytes()[:2] == b"\xff\xd8"


def test_expand_one_named_block(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "resnet18", "--expand", "layer1[0]"]) == 0
    one = capsys.readouterr().out
    assert main(["diagram", "resnet18"]) == 0
    none = capsys.readouterr().out
    assert one.count("subgraph cluster") > none.count("subgraph cluster")
    assert main(["diagram", "resnet18", "--expand", "unti"]) == 2
    assert "did you mean 'unit'?" in capsys.readouterr().err


# -- 8. notebooks ----------------------------------------------------------------------------------

def test_model_displays_in_notebooks() -> None:
    m = specdsl.load("lenet5")
    assert repr(m.summary()).startswith("lenet5 — input [1, 32, 32]")
    assert "<table" in m._repr_html_() and "61,706" in m._repr_html_()
    svg = m._repr_svg_()
    assert svg is None if shutil.which("dot") is None else svg is not None and "<svg" in svg


def test_dir_shows_the_api() -> None:
    assert {"load", "to_torch", "to_numpy", "SpecWarning"} <= set(dir(specdsl))
    assert {"load", "to_torch", "to_numpy", "Model", "SpecError", "SpecWarning"} <= set(specdsl.__all__)
    for name in specdsl.__all__:
        assert getattr(specdsl, name) is not None


# -- 9. emitted code ---------------------------------------------------------------------------------

def test_variant_classes_say_what_differs() -> None:
    pytest.importorskip("torch")
    from specdsl.backends.torch.emit import emit

    source = emit(specdsl.load("resnet18"))
    assert re.search(r"^class UnitWithDownsample\(nn.Module\):", source, re.M)  # named by the part that differs


# -- 10. packaging ---------------------------------------------------------------------------------

def test_license_is_an_spdx_expression() -> None:
    # A TOML table here makes setuptools >= 77 warn on every install; the locked setuptools builds it silently.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^license = "MIT"$', text, re.M)
    assert '"setuptools>=77"' in text
