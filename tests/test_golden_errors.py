"""Golden tests: the exact text of every kind of error message.

Each ``tests/golden/NAME.yaml`` is a small spec with a mistake; ``NAME.out``
is what specdsl prints for it (location, caret snippet, path, notes, hint).
The files double as documentation of the messages.

To accept new output after a deliberate change of wording::

    SPECDSL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_errors.py

then review the diff of ``tests/golden/*.out`` before committing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import specdsl
from specdsl.cli.main import main
from specdsl.errors import SpecError, render_all

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))
UPDATE = os.environ.get("SPECDSL_UPDATE_GOLDEN") == "1"


def render(name: str) -> tuple[str, bool]:
    """The full rendering of a golden spec's diagnostics, and whether it raised."""
    try:
        model = specdsl.load(f"{name}.yaml", warn=False)  # its warnings are the golden file's
    except SpecError as exc:
        return exc.render(full=True) + "\n", True
    return render_all(model.diagnostics, model.sources, full=True) + "\n", False


@pytest.fixture
def in_golden(monkeypatch: pytest.MonkeyPatch) -> Path:
    # Relative file names keep the rendered `file:line:col` independent of the checkout.
    monkeypatch.chdir(GOLDEN)
    return GOLDEN


@pytest.mark.parametrize("name", CASES)
def test_golden(in_golden: Path, name: str) -> None:
    actual, _ = render(name)
    expected_file = in_golden / f"{name}.out"
    if UPDATE:
        expected_file.write_text(actual, encoding="utf-8")
    assert expected_file.exists(), f"no {name}.out: run with SPECDSL_UPDATE_GOLDEN=1 and review it"
    assert actual == expected_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CASES)
def test_golden_output_is_located_and_has_a_snippet(in_golden: Path, name: str) -> None:
    text, _ = render(name)
    first = text.splitlines()[0]
    assert re.match(rf"{name}\.yaml:\d+:\d+: (error|warning) [EW]\d{{3}}: \S", first), first
    # the source line and a caret line under it
    assert re.search(r"^ +\d+ \| ", text, re.M)
    assert re.search(r"^ +\| +\^+$", text, re.M)
    assert "Traceback" not in text


@pytest.mark.parametrize("name", CASES)
def test_cli_prints_the_same_text(in_golden: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    text, raised = render(name)
    status = main(["check", f"{name}.yaml"])
    err = capsys.readouterr().err
    assert status == (1 if raised else 0)
    assert err.startswith(text.rstrip("\n") + "\n")
    assert re.search(r"^\d+ (error|warning)\(s\)", err.splitlines()[-1])


def test_golden_files_pair_up() -> None:
    outs = {p.stem for p in GOLDEN.glob("*.out")}
    assert outs == set(CASES)


def test_golden_set_covers_the_required_messages() -> None:
    text = "\n".join((GOLDEN / f"{name}.out").read_text(encoding="utf-8") for name in CASES)
    codes = set(re.findall(r": (?:error|warning) ([EW]\d{3}):", text))
    messages = set(re.findall(r"^\S+:\d+:\d+: (?:error|warning) [EW]\d{3}: (.*)$", text, re.M))
    assert len(messages) >= 15
    required = {
        "E101",  # YAML syntax
        "E102",  # duplicate key
        "E103",  # alias / anchor
        "E104",  # tags
        "E105",  # YAML 1.1 booleans
        "E106",  # leading-zero numbers
        "E108",  # several documents
        "E109",  # nesting
        "E201",  # unknown key
        "E202",  # wrong type
        "E203",  # missing key
        "E204",  # unknown layer, two ops
        "E205",  # out of range
        "E302",  # channel / feature mismatch
        "E303",  # groups
        "E304",  # kernel too large
        "E312",  # merge shapes
        "E314",  # unknown node
        "W301",  # dropped pixels
        "W302",  # linear on multi-dim input
    }
    assert required <= codes, sorted(required - codes)
    assert "did you mean" in text
