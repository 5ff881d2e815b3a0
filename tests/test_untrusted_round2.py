"""Untrusted input, round two (issue 18): no pickle, bounded work, exit codes, duplicates, never
losing a user's file. Each test reproduces one of the issue's reproducers.

fmt and convert round trips (meaning and comments kept) are in tests/test_fmt_roundtrip.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

import specdsl
from specdsl.budgets import DEFAULT, Budgets, defaults_for
from specdsl.cli.main import EXIT_OK, EXIT_SPEC, main
from specdsl.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]


def spec_error(source: Any, **kw: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        specdsl.load(source, **kw)
    return info.value


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ================================================================ no pickle


def test_the_dsl_parser_never_loads_a_pickle_planted_where_lark_looks(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Lark's `cache=True` unpickles /tmp/.lark_cache_<user>_<sha256>_3_11.tmp before checking it.
    Find the exact name lark would use for our grammar, plant a payload there, and parse."""
    import lark
    import lark.lark as lark_module

    from specdsl.frontend import dsl_parser

    looked: list[str] = []

    def spy_open(name: str, mode: str = "r", **kw: Any) -> Any:
        looked.append(name)
        raise FileNotFoundError(name) if "r" in mode else PermissionError(name)

    real_lark = lark.Lark
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(lark_module.FS, "open", spy_open)
    # Where lark would look were the parser built with its cache: same grammar and options, plus cache=True.
    monkeypatch.setattr(lark, "Lark", lambda *a, **kw: real_lark(*a, **{**kw, "cache": True}))
    dsl_parser.build_parser()  # the fallback where the packaged tables are stale: the same grammar and options
    cache_files = [p for p in looked if ".lark_cache_" in p]
    assert cache_files and all(Path(p).parent == tmp_path for p in cache_files), looked
    marker = tmp_path / "payload-ran"
    # A protocol-0 pickle of `open(marker, "w")`: loading it creates the marker file.
    payload = b"not-the-hash\ncbuiltins\nopen\n(V" + str(marker).encode() + b"\nVw\ntR."
    Path(cache_files[0]).write_bytes(payload)
    monkeypatch.undo()

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "specdsl", "check", "lenet5"], env=env, capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert not marker.exists(), "the DSL parser unpickled a file from the temporary folder"
    # The control: lark with its cache does load the planted file, so the test plants where it looks.
    control = ("import lark; from specdsl.frontend import dsl_parser; real = lark.Lark; "
               "lark.Lark = lambda *a, **kw: real(*a, **{**kw, 'cache': True}); dsl_parser.build_parser()")
    subprocess.run([sys.executable, "-c", control], env=env, capture_output=True, timeout=120, cwd=ROOT)
    assert marker.exists(), "the control did not load the payload: the planted name is not where lark looks"


def test_no_lark_cache_and_no_pickle_in_the_package() -> None:
    for path in (ROOT / "specdsl").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "cache=True" not in text and "import pickle" not in text, path


# ================================================================ bounded work


def _nested_blocks(levels: int, calls: int = 4) -> str:
    lines = ["model m", "input [3, 8, 8]", "", f"block b{levels}() {{\n    relu\n}}"]
    for k in range(levels - 1, 0, -1):
        lines.append(f"block b{k}() {{\n    " + " -> ".join([f"b{k + 1}"] * calls) + "\n}")
    lines.append("layers {\n    b1\n}")
    return "\n".join(lines) + "\n"


def test_the_size_estimate_is_linear_in_the_text() -> None:
    """16 nested blocks each calling the next 4 times: 4^15 leaves, refused before expanding."""
    import time

    from specdsl.blocks import engine

    calls = {"n": 0}
    real = engine.Expander.estimate

    def counting(self: Any, raw: Any, depth: int = 0) -> int:
        calls["n"] += 1
        return real(self, raw, depth)

    for levels in (8, 16, 30):
        calls["n"] = 0
        engine.Expander.estimate = counting  # type: ignore[method-assign]
        try:
            start = time.process_time()
            err = spec_error(_nested_blocks(levels))
        finally:
            engine.Expander.estimate = real  # type: ignore[method-assign]
        assert err.errors[0].code == "E330", err.render()
        assert "the max_nodes budget" in err.errors[0].message
        # Each body is estimated once per call depth: a few calls per block and depth, not 4^levels.
        assert calls["n"] <= 12 * levels * levels, (levels, calls["n"])
        assert time.process_time() - start < 5


def test_a_parameterised_repeat_is_counted_when_the_call_expands() -> None:
    text = ("model: m\ninput: [3, 8, 8]\nblocks:\n  b: {params: {n: int}, layers: [{relu: null, repeat: n}]}\n"
            "layers:\n  - b: {n: 100000}\n")
    err = spec_error(text)
    assert err.errors[0].code == "E330"


def test_default_budgets_and_command_budgets() -> None:
    assert DEFAULT == Budgets() == defaults_for("check") == defaults_for(None)
    assert DEFAULT.max_file_bytes == 128 * 1024 and DEFAULT.max_tokens == 50_000 and DEFAULT.max_nodes == 10_000
    for command in ("build", "run", "diff", "export", "diagram"):
        b = defaults_for(command)
        assert b.max_nodes < DEFAULT.max_nodes
        assert b.max_params <= DEFAULT.max_params and b.max_activations <= DEFAULT.max_activations


def test_repeat_999990_is_refused_by_every_command_before_any_work(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "rep.yaml"
    spec.write_text("model: m\ninput: [3, 8, 8]\nlayers:\n  - relu:\n    repeat: 999990\n")
    for argv in (["check"], ["build"], ["diagram", "-o", str(tmp_path / "x.dot")], ["run", "--steps", "1"],
                 ["diff"], ["convert", "--to", "dsl"]):
        code, _, err = cli([argv[0], str(spec), *argv[1:]], capsys)
        if argv[0] == "convert":  # convert needs a parseable file only
            assert code == EXIT_OK, err
            continue
        assert code == EXIT_SPEC, (argv, err)
        assert "E330" in err and "--max-nodes N" in err and "rep.yaml:5:" in err, err


def test_each_command_takes_the_budget_flags_with_its_own_defaults(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "rep.yaml"
    spec.write_text("model: m\ninput: [3, 8, 8]\nlayers:\n  - relu:\n    repeat: 4000\n")
    code, _, err = cli(["diagram", str(spec), "-o", str(tmp_path / "x.dot")], capsys)
    assert code == EXIT_SPEC and "the max_nodes budget is 3,000" in err, err
    code, _, err = cli(["diagram", str(spec), "-o", str(tmp_path / "x.dot"), "--max-nodes", "5000"], capsys)
    assert code == EXIT_OK, err
    code, out, _ = cli(["build", "--help"], capsys)
    assert "--max-nodes N" in out and "(default 5,000)" in out


def test_diagnostics_are_capped_and_long_names_shortened(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    many = tmp_path / "many.yaml"
    many.write_text("model: m\ninput: [3, 8, 8]\nlayers:\n" + "".join(f"  - bogus{i}\n" for i in range(5000)))
    code, _, err = cli(["check", str(many)], capsys)
    assert code == EXIT_SPEC
    assert err.count("error E204") == 100
    assert "... and 401 more diagnostic(s) not shown (E204 ×400, E333)" in err and "501 error(s)" in err
    assert len(err) < 40_000
    code, _, err = cli(["check", "--concise", str(many)], capsys)
    assert err.count("error E204") == 100 and len(err) < 20_000

    long = tmp_path / "long.cnn"
    long.write_text("model m\ninput [3, 8, 8]\nlayers {\n    relu -> " + "x" * 2_000_000 + "\n}\n")
    code, _, err = cli(["check", "--max-file-bytes", "3000000", "--max-tokens", "100", str(long)], capsys)
    assert code == EXIT_SPEC
    assert len(err) < 2_000, len(err)
    assert "long.cnn:4:13: error E204: unknown layer 'xxx" in err and "(2,000,000 characters)" in err
    lines = err.splitlines()
    # The quoted line is a window around the caret, which still points under the name.
    source, caret = lines[1], lines[2]
    assert source.endswith("…") and caret.index("^") == source.index("x")


# ================================================================ exit codes: 0 or 1 with a location

CONVERT_CASES = {
    "block list shorthand": ("model: m\ninput: [3, 8, 8]\nblocks:\n  b: [conv: {out: 4, k: 3, pad: 1}, relu]\n"
                             "layers:\n  - b\n", None),
    "stage list": ("model: m\ninput: [3, 8, 8]\nlayers:\n  - stage: [relu, {conv: {out: 4, k: 1}}]\n", None),
    "inception branches [[...]]": ("model: m\ninput: [3, 8, 8]\nlayers:\n  - inception:\n"
                                   "      branches: [[relu], [conv: {out: 4, k: 1}]]\n", "5:17"),
    "inputs: null": ("model: m\ninput: [3, 8, 8]\nlayers:\n  - relu\n  - conv: {out: 4, k: 1}\n    inputs: null\n",
                     "5:5"),
    "description with ESC and CR": ('model: m\ninput: [3, 8, 8]\ndescription: "a\\eb\\rc\\0"\nlayers: [relu]\n', "3:"),
    "unknown layer": ("model: m\ninput: [3, 8, 8]\nlayers:\n  - relu\n  - frobnicate: {k: 3}\n", None),
}


@pytest.mark.parametrize("name", list(CONVERT_CASES))
def test_convert_ends_0_with_dsl_that_parses_or_1_located(name: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from specdsl.frontend.dsl import parse_dsl

    text, refused_at = CONVERT_CASES[name]
    spec = tmp_path / "in.yaml"
    spec.write_text(text)
    code, out, err = cli(["convert", str(spec), "--to", "dsl"], capsys)
    if refused_at is None:
        assert code == EXIT_OK, err
        parse_dsl(out, "out.cnn")  # what convert writes parses
    else:
        assert code == EXIT_SPEC, err
        assert f"in.yaml:{refused_at}" in err and "E420" in err and "internal error" not in err, err


@pytest.mark.parametrize("branch", ["_modules", "_parameters", "_apply", "_buffers"])
def test_inception_branches_named_like_module_internals_are_refused(branch: str, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "b.yaml"
    spec.write_text(f"model: m\ninput: [3, 8, 8]\nlayers:\n  - inception:\n      branches:\n"
                    f"        {branch}: [relu]\n        b: [relu]\n")
    for argv in (["check"], ["build", "--verify"], ["run", "--steps", "1"]):
        code, _, err = cli([argv[0], str(spec), *argv[1:]], capsys)
        assert code == EXIT_SPEC, err
        assert "E315" in err and f"'{branch}' is reserved" in err and "b.yaml:6:" in err, err


def test_disk_full_while_writing_is_exit_1_and_the_old_file_survives(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from specdsl.cli import files

    spec = tmp_path / "m.cnn"
    original = "model m\ninput [3, 8, 8]\nlayers {\n    relu  ->   relu\n}\n"
    spec.write_text(original)
    out = tmp_path / "out.yaml"
    out.write_text("precious\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    for argv, target in ((["fmt", str(spec)], spec), (["convert", str(spec), "--to", "yaml", "-o", str(out)], out),
                         (["build", str(spec), "-o", str(out)], out)):
        code, _, err = cli(argv, capsys)
        assert code == EXIT_SPEC, err
        assert f"could not write {target}: No space left on device" in err, err
    assert spec.read_text() == original and out.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cnn", "out.yaml"]  # no temporary file left


def test_a_file_size_limit_while_writing_is_exit_1(tmp_path: Path) -> None:
    spec = tmp_path / "m.cnn"
    original = "# " + "x" * 5000 + "\nmodel m\ninput [3, 8, 8]\nlayers {\n    relu  ->   relu\n}\n"
    spec.write_text(original)
    script = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024)); "
              "from specdsl.cli.main import main; sys.exit(main(sys.argv[1:]))")
    run = subprocess.run([sys.executable, "-c", script, "fmt", str(spec)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert run.returncode == EXIT_SPEC, run.stderr
    assert f"could not write {spec}: File too large" in run.stderr
    assert spec.read_text() == original


def test_writing_over_the_input_spec_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "m.cnn"
    original = "model m\ninput [3, 8, 8]\nlayers {\n    relu\n}\n"
    spec.write_text(original)
    link = tmp_path / "link.cnn"
    link.symlink_to(spec)
    for argv in (["convert", str(spec), "--to", "dsl", "-o", str(spec)], ["build", str(spec), "-o", str(link)]):
        code, _, err = cli(argv, capsys)
        assert code == 2, err
        assert "refusing to write over" in err and "which this command reads" in err, err
    assert spec.read_text() == original


def test_atomic_writes_keep_the_permissions_and_follow_links(tmp_path: Path) -> None:
    from specdsl.cli.files import write_atomic

    target = tmp_path / "t.py"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "l.py"
    link.symlink_to(target)
    write_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640


# ================================================================ duplicates, BOM, %YAML


@pytest.mark.parametrize("text, where, words", [
    ("model m\ninput [3, 8, 8]\n\nlayers {\n    inception {\n        branch a {\n            relu\n        }\n"
     "        branch a {\n            conv(4, k=1)\n        }\n    }\n}\n", "9:9", "branch 'a' is declared twice"),
    ("model m\ninput [3, 8, 8]\n\nblock b(c: int, c: int) {\n    conv(c, k=1)\n}\n\nlayers {\n    b(4)\n}\n",
     "4:17", "parameter 'c' is declared twice"),
    ("model m\ninput [3, 8, 8]\n\nblock j() inputs(x, x) {\n    relu\n}\n\nlayers {\n    relu as a\n"
     "    relu as b\n    [@a, @b] -> j\n}\n", "4:21", "input 'x' of block 'j' is declared twice"),
    ("model: m\ninput: [3, 8, 8]\nblocks:\n  j: {inputs: [x, x], layers: [relu]}\nlayers:\n  - relu: null\n"
     "    name: a\n  - j: null\n    inputs: [a, a]\n", "4:19", "input 'x' of block 'j' is declared twice"),
    ("model: m\ninput: [3, 8, 8]\nlayers:\n  - inception:\n      branches:\n        a: [relu]\n        a: [relu]\n",
     "7:9", "duplicate key 'a'"),
])
def test_duplicates_are_errors(text: str, where: str, words: str) -> None:
    first = spec_error(text).errors[0]
    assert first.code == "E102" and words in first.message, first
    assert first.loc is not None and f"{first.loc.line}:{first.loc.col}" == where, first


def test_a_byte_order_mark_is_accepted_in_both_syntaxes(tmp_path: Path) -> None:
    for name, body in (("m.cnn", "model m\ninput [3, 8, 8]\nlayers {\n    relu\n}\n"),
                       ("m.yaml", "model: m\ninput: [3, 8, 8]\nlayers: [relu]\n")):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + body.encode())
        assert specdsl.load(path).name == "m"
    bad = tmp_path / "bad.cnn"
    bad.write_bytes(b"\xef\xbb\xbfmodel m\ninput [3, 8, 8]\nlayers {\n    relu(\n}\n")
    err = spec_error(bad)
    assert err.errors[0].loc is not None and err.errors[0].loc.line == 5


@pytest.mark.parametrize("version", ["1.1", "1.0", "1.3", "2.0"])
def test_yaml_directives_other_than_1_2_are_refused(version: str) -> None:
    err = spec_error(f"%YAML {version}\n---\nmodel: m\ninput: [3, 8, 8]\nlayers: [relu]\n")
    (d,) = err.errors
    assert d.loc is not None and d.loc.line == 1, d
    if version == "1.1":  # libyaml itself refuses the others (E101)
        assert d.code == "E113" and "%YAML 1.1" in d.message
    specdsl.load("%YAML 1.2\n---\nmodel: m\ninput: [3, 8, 8]\nlayers: [relu]\n")


# ================================================================ NumPy nearest upsample = PyTorch


def test_nearest_index_follows_pytorch_exactly() -> None:
    torch = pytest.importorskip("torch")
    import numpy as np

    from specdsl.backends.numpy.interpolate import _nearest_index

    bad = []
    for tdt, ndt in ((torch.float32, np.float32), (torch.float64, np.float64)):
        for mode in ("nearest", "nearest-exact"):
            for n in [*range(1, 24), 97, 224, 331]:
                x = torch.arange(n, dtype=tdt).reshape(1, 1, n)
                for out in sorted({1, 2, 3, n, 2 * n, 3 * n, n + 1, max(1, n - 1), max(1, n // 3), 7 * n // 5 + 1}):
                    want = torch.nn.functional.interpolate(x, size=out, mode=mode)[0, 0].long().numpy()
                    if not (want == _nearest_index(n, out, None, mode == "nearest-exact", ndt)).all():
                        bad.append((mode, n, out))
                for scale in (0.3, 0.5, 0.7, 1.0, 1.3, 1.5, 2.0, 2.5, 1 / 3, 2.7, 1.0001, 0.9999):
                    if int(n * scale) < 1:
                        continue
                    want = torch.nn.functional.interpolate(x, scale_factor=scale, mode=mode)[0, 0].long().numpy()
                    got = _nearest_index(n, len(want), scale, mode == "nearest-exact", ndt)
                    if not (want == got).all():
                        bad.append((mode, n, scale))
    assert not bad, bad[:10]
