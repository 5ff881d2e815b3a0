"""Editor setup as a user does it: the VS Code extension expands its settings; `lsp --help` shows what applies."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[1] / "editors" / "vscode"
NODE = shutil.which("node") or shutil.which("nodejs")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

CASES = [
    ("${workspaceFolder}/.venv/bin/specdsl", "/proj/.venv/bin/specdsl"),
    ("${workspaceRoot}/bin/specdsl", "/proj/bin/specdsl"),
    ("${workspaceFolderBasename}", "proj"),
    ("~/venvs/ml/bin/specdsl", "/home/ada/venvs/ml/bin/specdsl"),
    ("~", "/home/ada"),
    ("${userHome}/bin/specdsl", "/home/ada/bin/specdsl"),
    ("${env:VENV}/bin/specdsl", "/opt/venv/bin/specdsl"),
    ("${env:UNSET}/specdsl", "/specdsl"),
    ("specdsl", "specdsl"),
    ("a~b", "a~b"),
    ("${unknownVariable}/x", "${unknownVariable}/x"),
]


def _expand(values: list[str], folder: str | None) -> list[str]:
    script = (
        "const { expandSetting } = require(process.argv[1]);\n"
        "const [values, folder] = JSON.parse(process.argv[2]);\n"
        "const context = { home: '/home/ada', env: { VENV: '/opt/venv' },"
        " workspaceFolder: folder === null ? undefined : folder };\n"
        "console.log(JSON.stringify(values.map((v) => expandSetting(v, context))));\n"
    )
    proc = subprocess.run([NODE, "-e", script, str(EXTENSION / "expand.js"), json.dumps([values, folder])],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


def test_settings_expand_as_vscode_expands_its_variables() -> None:
    assert _expand([value for value, _ in CASES], "/proj") == [want for _, want in CASES]


def test_without_a_workspace_folder_the_variable_stays_visible() -> None:
    assert _expand(["${workspaceFolder}/.venv/bin/specdsl"], None) == ["${workspaceFolder}/.venv/bin/specdsl"]


def test_the_extension_expands_both_command_and_args() -> None:
    source = (EXTENSION / "extension.js").read_text(encoding="utf-8")
    assert 'expandSetting(config.get("server.command"' in source
    assert "map((arg) => expandSetting(arg, where))" in source


def test_lsp_help_offers_no_report_flags() -> None:
    """--quiet and --strict govern how a command reports a spec's diagnostics; the server has none to report."""
    from specdsl.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("lsp", "explain"):
        options = {o for a in commands[name]._actions for o in a.option_strings}
        assert not options & {"--strict", "--quiet", "-q"}, name
    assert "--strict" in {o for a in commands["check"]._actions for o in a.option_strings}
