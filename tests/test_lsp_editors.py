"""The editor integration in editors/: the VS Code extension's manifest, grammar and client, and its .vsix build."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from specdsl.api import read_source

VSCODE = Path(__file__).resolve().parents[1] / "editors" / "vscode"


def _json(name: str) -> dict:
    return json.loads((VSCODE / name).read_text(encoding="utf-8"))


def test_manifest_contributes_the_language_grammar_and_server_settings() -> None:
    pkg = _json("package.json")
    (language,) = pkg["contributes"]["languages"]
    assert (language["id"], language["extensions"]) == ("specdsl", [".cnn"])
    (grammar,) = pkg["contributes"]["grammars"]
    assert (grammar["language"], grammar["scopeName"]) == ("specdsl", "source.specdsl")
    assert (VSCODE / grammar["path"]).is_file() and (VSCODE / language["configuration"]).is_file()
    settings = pkg["contributes"]["configuration"]["properties"]
    assert settings["specdsl.server.command"]["default"] == "specdsl"
    assert settings["specdsl.server.args"]["default"] == ["lsp"]
    assert "onLanguage:specdsl" in pkg["activationEvents"]
    # Exact versions: the lock (package-lock.json) pins the rest.
    for dep in (*pkg["dependencies"].values(), *pkg["devDependencies"].values()):
        assert re.fullmatch(r"\d+\.\d+\.\d+", dep), dep
    lock = _json("package-lock.json")
    assert lock["packages"][""]["dependencies"] == pkg["dependencies"]


def test_client_starts_specdsl_lsp() -> None:
    source = (VSCODE / "extension.js").read_text(encoding="utf-8")
    assert 'require("vscode-languageclient/node")' in source
    assert 'config.get("server.command", "specdsl")' in source and 'config.get("server.args", ["lsp"])' in source
    assert 'language: "specdsl"' in source and 'language: "yaml"' in source


def _scopes(line: str, grammar: dict) -> list[tuple[str, str]]:
    """A first-match tokenizer over the grammar's top-level patterns (what TextMate does for one-line rules)."""
    rules = []
    for include in grammar["patterns"]:
        rule = grammar["repository"][include["include"].lstrip("#")]
        rules.append((re.compile(rule["match"]), rule))
    out, pos = [], 0
    while pos < len(line):
        best = None
        for pattern, rule in rules:
            m = pattern.search(line, pos)
            if m and m.end() > m.start() and (best is None or m.start() < best[0].start()):
                best = (m, rule)
        if best is None:
            break
        m, rule = best
        if "name" in rule:
            out.append((m.group(), rule["name"]))
        for group, capture in rule.get("captures", {}).items():
            if m.group(int(group)):
                out.append((m.group(int(group)), capture["name"]))
        pos = m.end()
    return out


def test_grammar_tokenizes_the_language() -> None:
    grammar = _json("syntaxes/specdsl.tmLanguage.json")
    assert grammar["scopeName"] == "source.specdsl"
    for rule in grammar["repository"].values():
        re.compile(rule["match"])  # the patterns use only what Oniguruma and Python share
    assert _scopes("block basic(c: int, stride=1) = residual(shortcut=auto) {", grammar)[:4] == [
        ("block", "storage.type.block.specdsl"), ("basic", "entity.name.type.block.specdsl"),
        ("c", "entity.name.function.layer.specdsl"), (":", "keyword.operator.specdsl")]
    tokens = dict(_scopes("    [@skip, @up.0] -> conv(64, k=3, bias=false) x2 as stem  # a comment", grammar))
    assert tokens["@skip"] == tokens["@up.0"] == "variable.other.reference.specdsl"
    assert tokens["conv"] == "entity.name.function.layer.specdsl"
    assert tokens["k"] == "variable.parameter.specdsl" and tokens["64"] == "constant.numeric.specdsl"
    assert tokens["false"] == "constant.language.specdsl" and tokens["x2"] == "keyword.operator.repeat.specdsl"
    assert tokens["as"] == "keyword.control.specdsl" and tokens["# a comment"] == "comment.line.number-sign.specdsl"
    assert _scopes("model resnet18", grammar)[0] == ("model", "keyword.other.declaration.specdsl")
    for name in ("resnet", "vgg", "densenet", "squeezenet", "mnasnet", "googlenet", "unet", "lenet5"):
        for line in read_source(name)[1].splitlines():  # every word of the zoo's DSL gets a scope
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", line.split("#")[0]))
            scoped = {w for t, _ in _scopes(line, grammar) for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", t)}
            assert words <= scoped, line


def test_language_configuration() -> None:
    config = _json("language-configuration.json")
    assert config["comments"]["lineComment"] == "#"
    assert ["{", "}"] in config["brackets"]
    assert re.fullmatch(config["wordPattern"], "@stem.0")


_OFFLINE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "ENETUNREACH", "network")


def test_extension_builds_to_a_vsix(tmp_path: Path) -> None:
    """`npm ci` (the pinned lock; needs the npm registry, as CI has) then `npm run package` (vsce)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    work = tmp_path / "vscode"
    shutil.copytree(VSCODE, work, ignore=shutil.ignore_patterns("node_modules", "*.vsix"))
    ci = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=work, capture_output=True, text=True, timeout=600)
    if ci.returncode != 0 and any(word in ci.stderr for word in _OFFLINE):
        pytest.skip(f"the npm registry is unreachable: {ci.stderr.strip().splitlines()[-1]}")
    assert ci.returncode == 0, ci.stderr
    built = subprocess.run([npm, "run", "package"], cwd=work, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    vsix = work / "specdsl-0.1.0.vsix"
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("extension/package.json"))
    assert {"extension.vsixmanifest", "extension/extension.js", "extension/syntaxes/specdsl.tmLanguage.json",
            "extension/language-configuration.json", "extension/node_modules/vscode-languageclient/node.js"} <= names
    assert not any("@vscode/vsce" in n for n in names)  # the packaging tool is not shipped
    assert manifest["name"] == "specdsl"


def test_check_never_imports_the_language_server() -> None:
    import sys

    code = ("import sys; from specdsl.cli.main import main; main(['check', 'lenet5', '--concise']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol', 'torch')"
            " or m.startswith('specdsl.lsp.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
