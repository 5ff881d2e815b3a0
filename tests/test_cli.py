"""The command line: exit codes, output formats and flags (specdsl/cli.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import specdsl
from specdsl import zoo
from specdsl.cli.main import EXIT_BUG, EXIT_OK, EXIT_SPEC, EXIT_USAGE, main
from specdsl.ops import OPS
from specdsl.schema.jsonschema import json_schema

GOOD = "model: tiny\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3, pad: 1}\n  - relu\n  - gap\n  - linear: 2\n"
BAD = "model: bad\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3, groups: 2}\n"
WARN = "model: warn\ninput: [1, 7, 7]\nlayers:\n  - maxpool: 2\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, text in (("good", GOOD), ("bad", BAD), ("warn", WARN)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        paths[name] = str(path)
    return paths


# ---------------------------------------------------------------- check: exit codes and streams


def test_check_ok(capsys) -> None:
    status, out, err = run(capsys, "check", "vgg16")
    assert status == EXIT_OK == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "vgg16 — input [3, 224, 224] float32, batch 1"
    assert "Params:      138,357,544 (trainable 138,357,544, frozen 0); buffers 0" in out
    assert "MACs:        15,470,264,320 (15.47 G) per sample" in out
    assert "FLOPs:       30,940,528,640" in out
    assert "features" in out


def test_check_spec_error_exits_1(capsys, files) -> None:
    status, out, err = run(capsys, "check", files["bad"])
    assert status == EXIT_SPEC == 1
    assert out == ""
    assert f"{files['bad']}:4:34: error E303: groups must divide the input channels" in err
    assert "   4 |   - conv: {out: 4, k: 3, groups: 2}" in err
    assert err.rstrip().endswith("1 error(s)")
    assert "Traceback" not in err


def test_check_concise(capsys, files) -> None:
    status, _, err = run(capsys, "check", "--concise", files["bad"])
    assert status == 1
    assert err == (f"{files['bad']}:4:34: error E303: groups must divide the input channels; "
                   "received groups=2, in_channels=3\n")


def test_check_warnings_exit_0_and_go_to_stderr(capsys, files) -> None:
    status, out, err = run(capsys, "check", files["warn"])
    assert status == 0
    assert out.startswith("warn — input [1, 7, 7]")
    assert "warning W301" not in out
    assert err.count("warning W301") == 1 and "end of H and W are never read" in err  # one per layer
    assert err.rstrip().endswith("1 warning(s)")


def test_check_several_specs(capsys, files) -> None:
    status, out, err = run(capsys, "check", files["good"], files["bad"], "lenet5")
    assert status == 1  # one bad spec fails the run, the others still print
    assert "tiny — input" in out and "lenet5 — input" in out
    assert "E303" in err


def test_check_missing_file_is_a_spec_error(capsys) -> None:
    status, _, err = run(capsys, "check", "no/such/file.yaml")
    assert status == 1
    assert "error E100: no such file or zoo model: no/such/file.yaml" in err


def test_check_zoo_name_typo_suggests(capsys) -> None:
    status, _, err = run(capsys, "check", "resnet05")
    assert status == 1
    assert "did you mean 'resnet50'?" in err


# ---------------------------------------------------------------- --json


def test_json(capsys) -> None:
    status, out, err = run(capsys, "check", "--json", "alexnet")
    assert status == 0 and err == ""
    data = json.loads(out)
    assert data["ok"] is True
    assert data["model"] == "alexnet"
    assert data["input"] == [3, 224, 224]
    t = data["totals"]
    assert (t["params"], t["macs"], t["flops"]) == (61_100_840, 714_188_480, 2 * 714_188_480)
    assert t["trainable"] == 61_100_840 and t["frozen"] == 0
    assert set(data["conventions"]) == {"macs", "flops", "all_ops"}
    features = next(n for n in data["nodes"] if n["name"] == "features")
    assert features["shape"] == [256, 6, 6]
    assert features["receptive_field"] == [{"size": 195, "stride": 32, "padding": 66}] * 2
    assert features["location"]["line"] > 0
    assert data["nodes"][0]["op"] == "input"


def test_json_for_a_bad_spec(capsys, files) -> None:
    status, out, _ = run(capsys, "check", "--json", files["bad"])
    assert status == 1
    data = json.loads(out)
    assert data["ok"] is False
    (diag,) = data["diagnostics"]
    assert (diag["severity"], diag["code"]) == ("error", "E303")
    assert diag["location"] == {"file": files["bad"], "line": 4, "col": 34, "end_line": 4, "end_col": 35}
    assert diag["hint"] == "pick groups from the divisors of the input channels"


def test_json_for_several_specs_is_a_list(capsys, files) -> None:
    status, out, _ = run(capsys, "check", "--json", files["good"], files["bad"])
    assert status == 1
    data = json.loads(out)
    assert [d["ok"] for d in data] == [True, False]


def test_json_carries_warnings(capsys, files) -> None:
    status, out, _ = run(capsys, "check", "--json", files["warn"])
    assert status == 0
    assert [d["code"] for d in json.loads(out)["diagnostics"]] == ["W301"]


# ---------------------------------------------------------------- --input, --batch, --depth, --all-ops


@pytest.mark.parametrize("shape", ["3,299,299", "[3, 299, 299]", "3x299x299", "(3,299,299)"])
def test_input_override(capsys, shape: str) -> None:
    status, out, _ = run(capsys, "check", "--json", "--input", shape, "vgg16")
    assert status == 0
    data = json.loads(out)
    assert data["input"] == [3, 299, 299]
    assert data["totals"]["params"] == 138_357_544
    assert data["totals"]["macs"] > 15_470_264_320


def test_input_override_that_breaks_the_model(capsys) -> None:
    status, _, err = run(capsys, "check", "--input", "3,16,16", "vgg16")
    assert status == 1
    assert "E304" in err


@pytest.mark.parametrize("shape", ["abc", "3,0,4", "1,2,3,4,5", "", "3,-1", "3.5,2"])
def test_bad_input_is_a_usage_error(capsys, shape: str) -> None:
    status, out, err = run(capsys, "check", "--input", shape, "vgg16")
    assert status == EXIT_USAGE == 2
    assert out == ""
    assert "expected a shape without the batch such as 3,224,224" in err


def test_batch(capsys) -> None:
    _, one, _ = run(capsys, "check", "--json", "lenet5")
    status, eight, _ = run(capsys, "check", "--json", "--batch", "8", "lenet5")
    assert status == 0
    one, eight = json.loads(one), json.loads(eight)
    assert eight["batch"] == 8
    assert eight["totals"]["activation_bytes"] == 8 * one["totals"]["activation_bytes"]
    assert eight["totals"]["params"] == one["totals"]["params"]
    _, table, _ = run(capsys, "check", "--batch", "8", "lenet5")
    assert "batch 8" in table.splitlines()[0]


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5"])
def test_bad_batch_is_a_usage_error(capsys, value: str) -> None:
    status, _, err = run(capsys, "check", "--batch", value, "lenet5")
    assert status == 2
    assert "expected a positive integer" in err


def test_depth_folds_block_rows(capsys) -> None:
    _, full, _ = run(capsys, "check", "resnet18")
    status, folded, _ = run(capsys, "check", "--depth", "1", "resnet18")
    assert status == 0
    assert len(folded.splitlines()) < len(full.splitlines())
    # totals do not change with folding
    assert [ln for ln in folded.splitlines() if ln.startswith("Params:")] == \
           [ln for ln in full.splitlines() if ln.startswith("Params:")]
    assert "11,689,512" in folded


def test_depth_must_be_positive(capsys) -> None:
    assert run(capsys, "check", "--depth", "0", "lenet5")[0] == 2


def test_all_ops(capsys) -> None:
    _, plain, _ = run(capsys, "check", "lenet5")
    _, full, _ = run(capsys, "check", "--all-ops", "lenet5")
    assert "All ops:" not in plain
    assert "All ops:" in full and "torchinfo-like" in full


# ---------------------------------------------------------------- usage


def test_unknown_flag(capsys) -> None:
    status, _, err = run(capsys, "check", "--bogus", "lenet5")
    assert status == 2
    assert "unrecognized arguments: --bogus" in err


def test_unknown_command(capsys) -> None:
    assert run(capsys, "frobnicate")[0] == 2


def test_no_command_prints_help(capsys) -> None:
    status, out, err = run(capsys)
    assert status == 2
    assert "usage: specdsl" in err and out == ""


def test_check_needs_a_spec(capsys) -> None:
    assert run(capsys, "check")[0] == 2


def test_help_and_version(capsys) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "check" in out
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.strip() == f"specdsl {specdsl.__version__}"


# ---------------------------------------------------------------- zoo, schema, ops


def test_zoo(capsys) -> None:
    status, out, _ = run(capsys, "zoo")
    assert status == 0
    assert sorted(out.split()) == zoo.all_names()
    assert {"lenet5", "alexnet", "vgg16", "vgg16_bn"} <= set(out.split())
    lines = out.splitlines()
    vgg = lines.index("vgg")  # a family file, then its variants indented beneath it
    assert lines[vgg + 1:vgg + 3] == ["  vgg11", "  vgg11_bn"]


def test_zoo_verbose(capsys) -> None:
    status, out, _ = run(capsys, "zoo", "-v")
    assert status == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert out.splitlines()[0].split() == ["model", "input", "params", "MACs"]
    assert "138,357,544" in rows["vgg16"] and "15,470,264,320" in rows["vgg16"]
    assert "61,706" in rows["lenet5"]
    assert rows["vgg"].split()[1:] == ["family", "of", "8"]
    assert set(rows) == set(zoo.all_names())


def test_schema_prints_the_json_schema(capsys) -> None:
    status, out, _ = run(capsys, "schema")
    assert status == 0
    data = json.loads(out)
    assert data == json_schema()
    assert data["$schema"].startswith("https://json-schema.org/")


def test_schema_validates_a_zoo_spec(capsys) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from specdsl.frontend.yaml import load_yaml

    _, out, _ = run(capsys, "schema")
    validator = jsonschema.Draft202012Validator(json.loads(out))
    label, text = zoo.find("alexnet")
    assert label.endswith(".yaml")
    assert list(validator.iter_errors(load_yaml(text)[0])) == []


def test_ops(capsys) -> None:
    status, out, _ = run(capsys, "ops")
    assert status == 0
    listed = {line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")}
    assert listed == set(OPS)
    assert "(also: fc)" in out
    assert "args: out, k, stride=1, pad=0" in out


# ---------------------------------------------------------------- internal errors


def test_internal_error_exits_3(capsys, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("specdsl.api.load", boom)
    monkeypatch.delenv("SPECDSL_DEBUG", raising=False)
    status, out, err = run(capsys, "check", "lenet5")
    assert out == ""
    assert status == EXIT_BUG == 3
    assert err.startswith("specdsl: internal error — this is a bug: RuntimeError: boom\n")
    assert "while running `specdsl check` on ['lenet5']" in err
    assert "set SPECDSL_DEBUG=1 for the full traceback" in err
    assert "Traceback" not in err


def test_internal_error_traceback_with_debug(capsys, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise ValueError("kaput")

    monkeypatch.setattr("specdsl.api.load", boom)
    monkeypatch.setenv("SPECDSL_DEBUG", "1")
    status, _, err = run(capsys, "check", "lenet5")
    assert status == 3
    assert "Traceback (most recent call last)" in err
    assert "ValueError: kaput" in err


def test_internal_error_in_another_command(capsys, monkeypatch) -> None:
    def boom():
        raise KeyError("x")

    monkeypatch.setattr("specdsl.schema.jsonschema.json_schema", boom)
    status, _, err = run(capsys, "schema")
    assert status == 3
    assert "internal error — this is a bug: KeyError" in err


def test_keyboard_interrupt(capsys, monkeypatch) -> None:
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("specdsl.api.load", stop)
    assert run(capsys, "check", "lenet5")[0] == 130


# ---------------------------------------------------------------- as a real process


def _python(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SPECDSL_DEBUG"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, env=env, **kw)


def test_python_m_specdsl() -> None:
    ok = _python("-m", "specdsl", "check", "lenet5")
    assert ok.returncode == 0, ok.stderr
    assert "Params:      61,706" in ok.stdout
    bad = _python("-m", "specdsl", "check", "nope_not_a_model")
    assert bad.returncode == 1
    assert "E100" in bad.stderr and "Traceback" not in bad.stderr
    usage = _python("-m", "specdsl", "check", "--input", "zero", "lenet5")
    assert usage.returncode == 2


def test_python_m_specdsl_spec_error_file(files) -> None:
    proc = _python("-m", "specdsl", "check", files["bad"])
    assert proc.returncode == 1
    assert "error E303" in proc.stderr


def test_check_never_imports_torch_or_graphviz() -> None:
    code = ("import sys; from specdsl.cli.main import main; rc = main(['check', 'vgg16']); "
            "assert rc == 0, rc; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'graphviz' not in sys.modules, 'graphviz imported'; "
            "assert not any(m.startswith('specdsl.backends.') for m in sys.modules), 'backend imported'")
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr


def test_json_check_never_imports_torch() -> None:
    code = ("import sys; from specdsl.cli.main import main; main(['check', '--json', 'resnet50', 'alexnet']); "
            "assert 'torch' not in sys.modules and 'graphviz' not in sys.modules")
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr


def test_fractional_receptive_field_is_readable(capsys, tmp_path) -> None:
    path = tmp_path / "up.yaml"
    path.write_text("model: up\ninput: [4, 8, 8]\nlayers:\n  - deconv: {out: 4, k: 4, stride: 2, pad: 1}\n")
    status, out, _ = run(capsys, "check", str(path))
    assert status == 0
    row = next(line for line in out.splitlines() if line.startswith("[0] "))
    assert len(row.split()[-1].split("/")) == 3, row
