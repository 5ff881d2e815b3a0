"""The error catalogue (specdsl/catalog/) against the source, both ways, and against specdsl itself.

Every code literal in specdsl/ and backends/ must have an entry, every entry must be raised
somewhere (or be marked retired), and each entry's example spec, given to specdsl.load, must
produce exactly that code: the loader is the oracle that the catalogue tells the truth.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import specdsl
from specdsl import catalog
from specdsl.budgets import Budgets
from specdsl.catalog import Entry
from specdsl.cli.main import main
from specdsl.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"[EW]\d{3}")
ENTRIES = catalog.entries()


def _source_codes() -> dict[str, list[str]]:
    """Code -> the files whose string literals name it (the catalogue's own files left out)."""
    found: dict[str, list[str]] = {}
    for folder in ("specdsl", "backends"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "catalog" in path.relative_to(ROOT).parts[1:2]:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.fullmatch(node.value):
                    found.setdefault(node.value, []).append(str(path.relative_to(ROOT)))
    return found


SOURCE = _source_codes()


def test_the_scan_finds_the_codes() -> None:
    # Guards the scan itself: a regression in it would make the two tests below pass vacuously.
    assert {"E101", "E303", "E401", "E501", "W301"} <= set(SOURCE) and len(SOURCE) > 60


def test_every_code_in_the_source_is_catalogued() -> None:
    missing = {code: files for code, files in SOURCE.items() if code not in ENTRIES}
    assert not missing, f"codes raised but not in specdsl/catalog/ (add an entry): {missing}"


def test_every_catalogued_code_is_raised_or_retired() -> None:
    unused = [code for code, e in ENTRIES.items() if code not in SOURCE and not e.retired]
    assert not unused, f"catalogued but raised nowhere (mark them retired, with the reason): {unused}"
    revived = [code for code, e in ENTRIES.items() if e.retired and code in SOURCE]
    assert not revived, f"retired codes are raised again; give the new fault a new number: {revived}"


@pytest.mark.parametrize("entry", ENTRIES.values(), ids=list(ENTRIES))
def test_entry_is_complete(entry: Entry) -> None:
    assert CODE.fullmatch(entry.code)
    assert entry.title and len(entry.title) <= 60 and not entry.title.endswith(".")
    assert entry.explanation.endswith((".", ".)")) and entry.fix.endswith((".", ".)"))
    assert entry.example.strip()
    assert not (entry.unchecked and entry.load), "an example not run needs no load options"


CHECKED = {code: e for code, e in ENTRIES.items() if not e.unchecked and not e.retired}


def _diagnostics(entry: Entry) -> list[specdsl.Diagnostic]:
    options = dict(entry.load)
    if "budgets" in options:
        options["budgets"] = Budgets(**options["budgets"])
    try:
        return specdsl.load(entry.example, strict=False, warn=False, **options).diagnostics
    except SpecError as exc:
        return exc.diagnostics


@pytest.mark.parametrize("entry", CHECKED.values(), ids=list(CHECKED))
def test_example_produces_its_code(entry: Entry) -> None:
    diags = _diagnostics(entry)
    assert [d.code for d in diags] == [entry.code], [f"{d.code}: {d.message}" for d in diags]
    assert diags[0].severity == entry.severity


def test_most_examples_are_checked() -> None:
    # Only what needs torch, a file or a command line is exempt; each says why.
    assert len(CHECKED) >= len(ENTRIES) - 14  # E510, E511: an import needs torch and a model to trace; E512 a file
    assert all(e.unchecked is None or len(e.unchecked) > 10 for e in ENTRIES.values())


def test_lookup_and_did_you_mean() -> None:
    assert catalog.lookup("e303") is ENTRIES["E303"]
    assert catalog.lookup("E999") is None
    assert catalog.closest("E3O3") == "E303" and catalog.closest("303") == "E303"
    assert catalog.closest("X") is None


def test_importing_the_catalogue_is_cheap() -> None:
    code = ("import sys, specdsl.catalog as c; c.entries(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pydantic', 'lark', 'yaml')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_explain_prints_the_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "e303"]) == 0
    out = capsys.readouterr().out
    entry = ENTRIES["E303"]
    assert out.startswith("E303 (error): groups must divide the channels\n")
    assert "conv(8, k=3, groups=2)" in out and "Fix:" in out and entry.fix.split()[0] in out


def test_explain_shows_the_options_an_example_needs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "E360"]) == 0
    assert "(checked with: specdsl check FILE --variant toy_smal)" in capsys.readouterr().out


def test_explain_unknown_code_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "E3O3"]) == 2
    assert "did you mean E303?" in capsys.readouterr().err
    assert main(["explain", "E999"]) == 2
    assert "run `specdsl explain` to list the codes" in capsys.readouterr().err


def test_explain_without_a_code_lists_them_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split()[0] for line in lines if CODE.fullmatch(line.split()[0] if line else "")]
    assert listed == list(ENTRIES)
    assert "E313  exactly one of two sizing arguments" in lines


def test_check_points_at_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "bad.cnn"
    spec.write_text(ENTRIES["E303"].example)
    assert main(["check", str(spec)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[-2:] == ["for more on a code: specdsl explain E303", "1 error(s)"]
    assert main(["check", "--concise", str(spec)]) == 1
    assert "specdsl explain" not in capsys.readouterr().err


def test_readme_shows_what_explain_prints(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ specdsl explain E303\n", 1)[1].split("```", 1)[0]
    assert main(["explain", "E303"]) == 0
    assert capsys.readouterr().out == shown


def test_the_catalogue_ships_in_the_wheel() -> None:
    # setuptools' package list is explicit: a package left out of it is missing from the wheel only.
    assert '"specdsl.catalog"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
