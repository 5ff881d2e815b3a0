"""Untrusted specs: resource budgets, hostile YAML and DSL, the error contract, fuzzing,
and the safety of emitted PyTorch source.

The contract: a mistake in a spec ends as located diagnostics (``file:line:col``) and
exit status 1, never a traceback; a bug ends as "internal error — this is a bug" and
exit status 3. Every stage that a spec could make work hard has a budget
(specdsl/budgets.py), checked before the work is done.

Long runs (documented in README.md, "Untrusted specs"):

    SPECDSL_FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest tests/test_untrusted.py -k fuzz
    SPECDSL_HOSTILE_NAMES=5000 .venv/bin/python -m pytest tests/test_untrusted.py -k hostile
    .venv/bin/python tests/fuzz/mutate.py 10000          # same mutators, plain random, statistics
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import os
import random
import re
import subprocess
import sys
import tracemalloc
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml_bombs import alias_bomb

import specdsl
from specdsl import api, zoo
from specdsl.blocks import engine as expand
from specdsl.budgets import DEFAULT, MAX_DEPTH_CEILING, Budgets, flag
from specdsl.cli.main import EXIT_BUG, EXIT_OK, EXIT_SPEC, EXIT_USAGE, main
from specdsl.errors import SpecError
from specdsl.frontend import dsl as dsl_front
from specdsl.frontend import yaml as yaml_front

ROOT = Path(__file__).resolve().parents[1]
FUZZ_EXAMPLES = int(os.environ.get("SPECDSL_FUZZ_EXAMPLES", "500"))
HOSTILE_NAMES = int(os.environ.get("SPECDSL_HOSTILE_NAMES", "600"))


def _load_mutate() -> Any:
    spec = importlib.util.spec_from_file_location("specdsl_fuzz_mutate", ROOT / "tests" / "fuzz" / "mutate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["specdsl_fuzz_mutate"] = module
    spec.loader.exec_module(module)
    return module


mutate = _load_mutate()


def spec_error(source: Any, **kw: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        specdsl.load(source, **kw)
    return info.value


def assert_located(err: SpecError) -> None:
    assert err.errors, err.diagnostics
    for d in err.errors:
        assert d.loc is not None or d.code in mutate.UNLOCATED, d
    err.render(full=True)


def outcome(fn: Any, *args: Any, **kw: Any) -> Any:
    """What fn returns, or the SpecError it raises.

    No test here asserts wall-clock time (a loaded machine would fail it): how long each hostile
    input takes is measured against its budget by benchmarks/bench_hostile_inputs.py."""
    try:
        return fn(*args, **kw)
    except SpecError as exc:
        return exc


TINY = "model: m\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3, pad: 1}\n  - relu\n"
# For the inputs of 100,000 brackets (200 KB and more): past max_file_bytes, which would refuse them first.
BIG_FILES = Budgets(max_file_bytes=10**7)


# ================================================================ budgets


def test_budget_defaults_are_the_module_constants() -> None:
    assert DEFAULT == Budgets()
    assert DEFAULT.max_file_bytes == api.MAX_FILE_BYTES == 128 * 1024
    assert DEFAULT.max_depth == yaml_front.MAX_DEPTH == dsl_front.MAX_DEPTH == 64
    assert DEFAULT.max_tokens == dsl_front.MAX_TOKENS == 50_000
    assert DEFAULT.max_nodes == expand.MAX_NODES == 10_000
    assert DEFAULT.max_params == 10**11
    assert DEFAULT.max_activations == 10**12


@pytest.mark.parametrize("kw", [{"max_nodes": 0}, {"max_depth": -1}, {"max_params": True}, {"max_tokens": 1.5},
                                {"max_depth": MAX_DEPTH_CEILING + 1}])
def test_budgets_are_validated(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="budget"):
        Budgets(**kw)


def test_every_zoo_model_fits_the_default_budgets_with_room() -> None:
    for name in zoo.names():
        t = specdsl.load(name, warn=False).totals
        assert t.params * 100 < DEFAULT.max_params, name
        assert t.activation_elements * 100 < DEFAULT.max_activations, name


def _budget_message(err: SpecError, name: str) -> None:
    (d,) = err.errors
    assert name in d.message, d.message
    assert flag(name) in (d.hint or ""), d.hint
    assert f"Budgets({name}=N)" in (d.hint or "")


def test_file_size_budget(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(TINY + "#" * 200 + "\n")
    specdsl.load(path)
    err = spec_error(path, budgets=Budgets(max_file_bytes=100))
    assert err.errors[0].code == "E110"
    _budget_message(err, "max_file_bytes")
    # Spec text (not a file) is bounded too, counted in UTF-8 bytes.
    err = spec_error(TINY + "# é" * 100, budgets=Budgets(max_file_bytes=len(TINY) + 250))
    assert err.errors[0].code == "E110"


def test_file_size_budget_reads_no_more_than_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (64 * 1024 * 1024))  # 64 MiB: refused after reading 1 KiB + 1 byte
    tracemalloc.start()
    try:
        err = outcome(specdsl.load, path, budgets=Budgets(max_file_bytes=1024))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(err, SpecError) and err.errors[0].code == "E110"
    assert "67,108,864 bytes" in err.errors[0].message
    assert peak < 1024 * 1024, peak


def test_depth_budget_in_both_front_ends_and_in_expansion() -> None:
    nested = "model: m\ninput: [3, 8, 8]\nlayers: " + "[" * 10 + "relu" + "]" * 10 + "\n"
    err = spec_error(nested, budgets=Budgets(max_depth=5))
    assert err.errors[0].code == "E109"
    _budget_message(err, "max_depth")
    dsl = "model m\ninput [3, 8, 8]\nlayers {\n    linear(" + "[" * 10 + "1" + "]" * 10 + ")\n}\n"
    err = spec_error(dsl, budgets=Budgets(max_depth=5))
    assert err.errors[0].code == "E409"
    _budget_message(err, "max_depth")
    expr = "model m\ninput [3, 8, 8]\nlayers {\n    linear(" + "1 + " * 10 + "1)\n}\n"
    err = spec_error(expr, budgets=Budgets(max_depth=5))
    assert err.errors[0].code == "E409" and "expression" in err.errors[0].message
    # Block calls nest layers beyond what the text shows: a chain of 30 blocks, each 3 deep.
    blocks = "".join(f"block b{i}() = residual {{\n    residual {{\n        b{i + 1}\n    }}\n}}\n" for i in range(30))
    chain = f"model m\ninput [3, 8, 8]\n{blocks}block b30() = relu\nlayers {{\n    b0\n}}\n"
    err = spec_error(chain)
    assert err.errors[0].code == "E324"
    _budget_message(err, "max_depth")
    assert_located(err)
    assert specdsl.load(chain.replace("b{i + 1}", "relu").replace("    b0", "    b29"))


def test_deep_block_chains_do_not_exhaust_the_python_stack() -> None:
    """31 blocks (the call limit) of 25 nested residuals each: a clean error, not RecursionError."""
    blocks = []
    for i in range(31):
        body = f"b{i + 1}" if i < 30 else "relu"
        for _ in range(25):
            body = f"residual {{ {body} }}"
        blocks.append(f"block b{i}() = {body}")
    text = "model m\ninput [3, 8, 8]\n" + "\n".join(blocks) + "\nlayers {\n    b0\n}\n"
    for depth in (DEFAULT.max_depth, MAX_DEPTH_CEILING):
        err = spec_error(text, budgets=Budgets(max_depth=depth))
        assert [d.code for d in err.errors] == ["E324"]


@pytest.mark.parametrize("depth", [MAX_DEPTH_CEILING - 2, MAX_DEPTH_CEILING])
def test_the_depth_ceiling_is_safe_for_every_construct(depth: int) -> None:
    """At the highest allowed max_depth, the deepest accepted specs still load or fail cleanly."""
    budgets = Budgets(max_depth=MAX_DEPTH_CEILING)
    texts = [
        "model: t\ninput: [3,8,8]\nlayers: " + "[" * depth + "relu" + "]" * depth + "\n",
        "model: t\ninput: [3,8,8]\nlayers: " + "[{residual: {body: " * (depth // 3) + "[relu]" + "}}]" * (depth // 3),
        "model: t\ninput: [3,8,8]\nlayers:\n  - conv: " + "{a: " * depth + "1" + "}" * depth + "\n",
        "model t\ninput [3,8,8]\nlayers {\n" + "residual {" * depth + "relu" + "}" * depth + "\n}\n",
        "model t\ninput [3,8,8]\nlayers {\nlinear(" + "[" * depth + "1" + "]" * depth + ")\n}\n",
        "model t\ninput [3,8,8]\nlayers {\nlinear(" + "1+" * depth + "1)\n}\n",
        "model t\ninput [3,8,8]\nlayers {\nlinear(" + "-" * depth + "1)\n}\n",
    ]
    for text in texts:
        try:
            specdsl.load(text, budgets=budgets, warn=False)
        except SpecError as exc:
            assert_located(exc)


def test_token_budget() -> None:
    text = "model m\ninput [3, 8, 8]\nlayers {\n" + "    relu\n" * 100 + "}\n"
    specdsl.load(text)
    err = spec_error(text, budgets=Budgets(max_tokens=50))
    assert err.errors[0].code == "E409"
    _budget_message(err, "max_tokens")
    assert err.errors[0].loc is not None and err.errors[0].loc.line > 3


@pytest.mark.parametrize("layer", [
    "  - relu:\n    repeat: 1000000000\n",
    "  - fractal: {columns: 40, base: [relu]}\n",
    "  - dense: {n: 1000000000, growth: 32}\n",
    "  - dense: {n: 1500, growth: 1, bottleneck: null}\n",  # 12k nodes, but 1.1M concat inputs
    "  - b:\n    repeat: 1000\n",  # nested repeats through a block: 10^6 copies
    "  - stage: [{b: null, repeat: 1000}]\n    repeat: 1000\n",
])
def test_node_budget_is_checked_before_expanding(layer: str) -> None:
    text = ("model: m\ninput: [3, 8, 8]\nblocks:\n  b: [{relu: null, repeat: 1000}]\nlayers:\n" + layer)
    specdsl.load("model: m\ninput: [3, 8, 8]\nlayers: [relu]\n")  # warm imports
    tracemalloc.start()
    try:
        err = outcome(specdsl.load, text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(err, SpecError), err
    assert err.errors[0].code in ("E330", "E205"), err  # E205: fractal columns are at most 12
    assert_located(err)
    assert peak < 4 * 1024 * 1024, peak  # nothing was allocated per node
    if err.errors[0].code == "E330":
        _budget_message(err, "max_nodes")


def test_node_budget_counts_merge_inputs_and_can_be_raised() -> None:
    text = "model: m\ninput: [3, 8, 8]\nlayers:\n  - dense: {n: 40, growth: 2, bottleneck: null}\n"
    m = specdsl.load(text)
    nodes = len(m.graph.nodes)
    edges = sum(max(1, len(n.inputs)) for n in m.graph.nodes)
    assert edges > nodes
    assert specdsl.load(text, budgets=Budgets(max_nodes=2 * edges))  # the estimate is an upper bound
    err = spec_error(text, budgets=Budgets(max_nodes=nodes + 10))
    assert err.errors[0].code == "E330"


def test_params_budget() -> None:
    wide = "model: m\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 16, k: 3}\n  - conv: {out: 1000000, k: 5}\n"
    err = spec_error(wide, budgets=Budgets(max_params=10**6))
    (d,) = err.errors
    assert d.code == "E331" and "400,000,000" not in d.message
    assert "401,000,448 parameters" in d.message  # 16*3*9+16 + 1e6*16*25+1e6
    assert (d.loc.line, d.loc.col) == (5, 5) and d.path == "[1]"  # the largest layer
    _budget_message(err, "max_params")
    # the defaults: 10^11 parameters
    err = spec_error("model: m\ninput: [4096]\nlayers:\n  - linear: 100000000\n")
    assert err.errors[0].code == "E331"
    # non-strict loads report it among the diagnostics
    model = specdsl.load(wide, budgets=Budgets(max_params=10**6), strict=False)
    assert [d.code for d in model.diagnostics if d.is_error] == ["E331"]


def test_activation_budget_counts_the_batch() -> None:
    text = "model: m\ninput: [3, 64, 64]\nlayers:\n  - conv: {out: 64, k: 3, pad: 1}\n  - relu\n"
    per_sample = specdsl.load(text).totals.activation_elements
    assert per_sample == 2 * 64 * 64 * 64
    budgets = Budgets(max_activations=per_sample * 10)
    assert specdsl.load(text, batch=10, budgets=budgets)
    err = spec_error(text, batch=11, budgets=budgets)
    (d,) = err.errors
    assert d.code == "E332" and "at batch 11" in d.message
    assert d.loc is not None and d.loc.line == 4
    _budget_message(err, "max_activations")
    # the defaults: 10^12 elements
    err = spec_error("model: m\ninput: [3, 1000000, 1000000]\nlayers:\n  - relu\n")
    assert err.errors[0].code == "E332"


def test_axes_beyond_int64_stop_the_analysis() -> None:
    text = ("model: m\ninput: [3, 8, 8]\nlayers:\n  - upsample: {scale: 1000000000}\n    repeat: 40\n"
            "  - conv: {out: 2, k: 1}\n")
    err = spec_error(text)
    assert err.errors[0].code == "E301"  # then the activation budget (E332) for the nodes before it
    assert "2^63-1" in err.errors[0].message
    assert_located(err)


@pytest.mark.parametrize(("name", "value", "text"), [
    ("max_file_bytes", "50", TINY),
    ("max_depth", "1", TINY),
    ("max_tokens", "5", "model m\ninput [3, 8, 8]\nlayers {\n    relu -> relu\n}\n"),
    ("max_nodes", "1", TINY),
    ("max_params", "10", TINY),
    ("max_activations", "10", TINY),
])
def test_check_flags_set_each_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, value: str,
                                     text: str) -> None:
    path = tmp_path / ("spec.cnn" if text.startswith("model m") else "spec.yaml")
    path.write_text(text)
    assert main(["check", str(path)]) == EXIT_OK
    capsys.readouterr()
    assert main(["check", str(path), flag(name), value]) == EXIT_SPEC
    err = capsys.readouterr().err
    assert name in err and flag(name) in err
    assert "Traceback" not in err
    assert main(["check", str(path), flag(name), value, "--json"]) == EXIT_SPEC
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and name in result["diagnostics"][0]["message"]


@pytest.mark.parametrize("argv", [["--max-depth", "1000"], ["--max-nodes", "0"], ["--max-params", "-5"],
                                  ["--max-tokens", "many"]])
def test_bad_budget_flags_are_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(["check", "lenet5", *argv]) == EXIT_USAGE
    assert "Traceback" not in capsys.readouterr().err


# ================================================================ hostile YAML

SENTINEL = "SPECDSL_PWNED"


def _payloads(sentinel: Path) -> list[str]:
    s = str(sentinel)
    return [
        f'!!python/object/apply:os.system ["touch {s}"]',
        f'!!python/object/apply:subprocess.check_output [["touch", "{s}"]]',
        f'!!python/object/apply:subprocess.Popen [["touch", "{s}"]]',
        f'!!python/object/new:os.system ["touch {s}"]',
        f'!!python/object/apply:builtins.exec ["open(\'{s}\', \'w\').write(\'x\')"]',
        f'!!python/object/apply:builtins.eval ["__import__(\'os\').system(\'touch {s}\')"]',
        "!!python/object:builtins.object {}",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/tuple [1, 2]",
        "!!python/bytes dG91Y2g=",
        "!!python/str x",
        "!!python/complex 1+2j",
        "!!binary dG91Y2ggU0VOVElORUw=",
        "!!set {a: null, b: null}",
        "!!omap [{a: 1}]",
        "!!pairs [{a: 1}]",
        "!!timestamp 2001-12-14",
        "!!int '3'",
        "!!str relu",
        "!custom relu",
        f'!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {s}"]',
        f'!!python/object/apply:os.system {{args: ["touch {s}"]}}',  # a tag on a mapping
        f'!!python/object/new:os.system [["touch {s}"]]',  # a tag on a nested sequence
        f'{{conv: !!python/object/apply:os.system ["touch {s}"]}}',  # a tag inside a flow mapping
    ]


def _tag_documents(sentinel: Path) -> list[str]:
    docs = [f"model: m\ninput: [3, 8, 8]\nlayers:\n  - {p}\n" for p in _payloads(sentinel)]
    s = str(sentinel)
    docs += [
        # %TAG shorthand for the python namespace
        f'%TAG !p! tag:yaml.org,2002:python/\n---\nmodel: m\ninput: [3]\nlayers:\n'
        f'  - !p!object/apply:os.system ["touch {s}"]\n',
        # a tag on a key, and on the whole document
        f'model: m\ninput: [3]\n? !!python/object/apply:os.system ["touch {s}"]\n: 1\nlayers: [relu]\n',
        f'--- !!python/object/apply:os.system ["touch {s}"]\n',
        f'model: !!python/object/apply:os.system ["touch {s}"]\ninput: [3]\nlayers: [relu]\n',
        f'model: m\ninput: !!python/object/apply:os.system ["touch {s}"]\nlayers: [relu]\n',
    ]
    return docs


def test_unsafe_tags_are_refused_and_nothing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sentinel = tmp_path / SENTINEL
    docs = _tag_documents(sentinel)
    assert len(docs) >= 25
    for i, doc in enumerate(docs):
        for source in (doc, tmp_path / f"payload{i}.yaml"):
            if isinstance(source, Path):
                source.write_text(doc)
            err = spec_error(source)
            assert {d.code for d in err.errors} <= {"E104", "E107"}, (doc, err.errors)
            assert "E104" in {d.code for d in err.errors} or "E107" in {d.code for d in err.errors}
            assert_located(err)
    assert main(["check", *(str(p) for p in sorted(tmp_path.glob("payload*.yaml")))]) == EXIT_SPEC
    assert not sentinel.exists()
    assert not (tmp_path / "SENTINEL").exists()


def test_the_python_tag_is_quoted_in_the_message() -> None:
    err = spec_error("model: m\ninput: [3]\nlayers:\n  - !!python/name:os.system\n")
    (d,) = err.errors
    assert d.code == "E104" and "!!python/name:os.system" in d.message
    assert (d.loc.line, d.loc.col) == (4, 5)


@pytest.mark.parametrize("variant", ["plain", "late", "inline"])
def test_alias_bomb_is_refused_fast(variant: str) -> None:
    bomb = alias_bomb(9)  # 9^9 = 387 million "lol"s if expanded
    if variant == "late":  # the first anchor after a valid spec header
        bomb = "model: m\ninput: [3]\nlayers: [relu]\nbombs:\n" + "".join(f"  {line}\n" for line in bomb.splitlines())
    elif variant == "inline":  # every alias in one flow collection
        bomb = "model: m\ninput: [3]\nlayers: [relu, " + ", ".join(["*a"] * 100_000) + "]\n"
    # Refused at the first alias, before anything expands; benchmarks/bench_hostile_inputs.py times it.
    err = spec_error(bomb, budgets=BIG_FILES)
    assert [d.code for d in err.errors] == ["E103"]
    assert_located(err)


def test_merge_keys_and_anchors_are_refused() -> None:
    text = "model: m\ninput: [3]\nbase: &b {out: 4, k: 3}\nlayers:\n  - conv:\n      <<: *b\n"
    err = spec_error(text)
    assert err.errors[0].code == "E103" and "&b" in err.errors[0].message
    assert (err.errors[0].loc.line, err.errors[0].loc.col) == (3, 7)


@pytest.mark.parametrize("text", [
    "model: m\ninput: [3]\nlayers: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "model: m\ninput: [3]\nlayers: " + "[" * 100_000 + "\n",
    "model: m\ninput: [3]\nlayers:\n  - conv: " + "{a: " * 100_000 + "\n",
    "model: m\ninput: [3]\nlayers:\n" + "- " * 100_000 + "relu\n",
])
def test_100k_nested_yaml_collections(text: str) -> None:
    err = outcome(specdsl.load, text, budgets=BIG_FILES)
    assert isinstance(err, SpecError)
    assert err.errors[0].code in ("E109", "E101")
    assert_located(err)


@pytest.mark.parametrize("text", [
    "model m\ninput [3]\nlayers {\n    conv(" + "(" * 100_000 + "\n}\n",
    "model m\ninput [3]\nlayers {\n    conv(" + "[" * 100_000 + "]" * 100_000 + ")\n}\n",
    "model m\ninput [3]\nlayers {\n" + "residual {" * 100_000 + "\n}\n",
    "model m\ninput " + "[" * 100_000 + "\n",
    "model m\ninput [3]\nlayers {\n    linear(" + "-" * 100_000 + "1)\n}\n",
    "model m\ninput [3]\nlayers {\n    linear(" + "(" * 50_000 + "1" + ")" * 50_000 + ")\n}\n",
    "model m\ninput [3]\nlayers {\n    linear(" + "1+" * 100_000 + "1)\n}\n",
])
def test_100k_nested_dsl_brackets_and_operators(text: str) -> None:
    err = outcome(specdsl.load, text, budgets=BIG_FILES)
    assert isinstance(err, SpecError)
    assert err.errors[0].code in ("E409", "E401"), err
    assert_located(err)


def test_100k_nested_brackets_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "deep.yaml").write_text("model: m\ninput: [3]\nlayers: " + "[" * 100_000 + "]" * 100_000 + "\n")
    (tmp_path / "deep.cnn").write_text("model m\ninput [3]\nlayers {\n    conv(" + "[" * 100_000 + "\n}\n")
    for name in ("deep.yaml", "deep.cnn"):
        assert main(["check", str(tmp_path / name), "--concise", "--max-file-bytes", "10000000"]) == EXIT_SPEC
        err = capsys.readouterr().err
        assert re.match(rf".*{name}:\d+:\d+: error E\d{{3}}: ", err), err[:300]


@pytest.mark.parametrize(("text", "line"), [
    ("model: m\nmodel: n\ninput: [3]\nlayers: [relu]\n", 2),
    ("model: m\ninput: [3]\nlayers:\n  - conv: {out: 4, out: 5, k: 3}\n", 4),
    ("model: m\ninput: [3]\nlayers:\n  - conv:\n      out: 4\n      k: 3\n      'out': 5\n", 7),
    ('model: m\ninput: [3]\nlayers: [relu]\n"model": x\n', 4),
    ("model: m\ninput: [3]\nblocks:\n  b: [relu]\n  b: [bn]\nlayers: [b]\n", 5),
])
def test_duplicate_keys_are_refused(text: str, line: int) -> None:
    err = spec_error(text)
    assert err.errors[0].code == "E102"
    assert err.errors[0].loc.line == line


def test_a_duplicate_key_stops_the_parse_at_once() -> None:
    rest = "".join(f"  b{i}: [relu]\n" for i in range(100_000))
    text = "model: m\ninput: [3]\nlayers: [relu]\nblocks:\n  b0: [relu]\n  b0: [bn]\n" + rest
    err = outcome(specdsl.load, text, budgets=Budgets(max_file_bytes=10**8))
    assert isinstance(err, SpecError) and err.errors[0].code == "E102"
    assert err.errors[0].loc.line == 6


@pytest.mark.parametrize("text", [
    "model: m\ninput: [3, " + "9" * 5000 + "]\nlayers: [relu]\n",
    "model: m\ninput: [3, 0x" + "f" * 10_000 + "]\nlayers: [relu]\n",
    "model: m\ninput: [3, 0o" + "7" * 10_000 + "]\nlayers: [relu]\n",
    "model: m\ninput: [3, -" + "9" * 30 + "]\nlayers: [relu]\n",
    "model: m\ninput: [3, 0" + "1" * 5000 + "]\nlayers: [relu]\n",
    "model: m\ninput: [3, 9223372036854775808]\nlayers: [relu]\n",
    "model m\ninput [3, " + "9" * 5000 + "]\nlayers {\n    relu\n}\n",
    "model m\ninput [3]\nlayers {\n    relu x" + "9" * 5000 + "\n}\n",
    "model m\ninput [3]\nlayers {\n    linear(-" + "9" * 25 + ")\n}\n",
])
def test_huge_integers_are_located_errors(text: str) -> None:
    err = outcome(specdsl.load, text)
    assert isinstance(err, SpecError)
    assert err.errors[0].code == "E112"
    assert "2^63-1" in err.errors[0].message and len(err.errors[0].message) < 200
    assert_located(err)


def test_int64_max_is_still_a_number() -> None:
    err = spec_error("model: m\ninput: [3, 9223372036854775807]\nlayers: [relu]\n")
    assert err.errors[0].code == "E332"  # a number, refused only by the activation budget


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85", "\ufffe"])
def test_control_characters_are_located(char: str) -> None:
    err = spec_error(f"model: m\ninput: [3]\nlayers:\n  - re{char}lu\n")
    assert err.errors[0].code in ("E101", "E204")
    assert_located(err)
    if char != "\x85":  # NEL is a line break in YAML (and for str.splitlines)
        assert (err.errors[0].loc.line, err.errors[0].loc.col) == (4, 7)


def test_empty_and_comment_only_specs_are_located() -> None:
    for text in ("# nothing here\n", "---\n", "~\n", "[]\n", "relu\n"):
        err = spec_error(text)
        assert_located(err)


def test_non_utf8_and_lone_surrogates_are_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"model: m\ninput: [3]\nlayers:\n  - caf\xe9\n")
    err = spec_error(path)
    assert err.errors[0].code == "E111"
    assert (err.errors[0].loc.line, err.errors[0].loc.col) == (4, 8)
    err = spec_error("model: m\ninput: [3]\nlayers:\n  - re\ud800lu\n")
    assert err.errors[0].code == "E111"
    assert (err.errors[0].loc.line, err.errors[0].loc.col) == (4, 7)


def test_an_expansion_that_needs_a_failed_shape_reports_why() -> None:
    """A block that needs its input's shape (transition) after a layer whose shape rule failed:
    the failure is reported (it used to be a SpecError with no diagnostics at all)."""
    err = spec_error("model m\ninput [3, 32, 32]\nlayers {\n    maxpool(3, stride=2, pad=2147483648) -> "
                     "transition(theta=0.5)\n}\n")
    assert [d.code for d in err.errors] == ["E307"]
    assert_located(err)


def test_a_branch_outside_an_inception_is_a_located_error(tmp_path: Path) -> None:
    text = "model m\ninput [3, 8, 8]\nlayers {\n    relu\n    branch a {\n        relu\n    }\n}\n"
    err = spec_error(text)
    assert [d.code for d in err.errors] == ["E403"]
    assert (err.errors[0].loc.line, err.errors[0].loc.col) == (5, 5)
    path = tmp_path / "branch.cnn"
    path.write_text(text)
    assert main(["fmt", "--check", str(path)]) == EXIT_SPEC  # no internal error


def test_zoo_names_cannot_traverse_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # resnet is a zoo family file, resnet18 one of its variants: neither is reachable through a path.
    for name in ("../specs/resnet", "../specs/resnet18", "specs/../resnet18", "../../specdsl/api",
                 "/etc/passwd\x00", "a" * 5000, "\x00"):
        err = spec_error(name)
        assert err.errors[0].code == "E100"


def test_no_unsafe_loaders_anywhere() -> None:
    pattern = re.compile(r"yaml\.(load|unsafe_load|full_load|load_all)\(|Loader=yaml\.(Loader|FullLoader|UnsafeLoader)"
                         r"|\bpickle\.loads?\(|(?<![.\w])eval\(|(?<![.\w])exec\(")
    hits = []
    for folder in ("specdsl", "backends"):
        for path in (ROOT / folder).rglob("*.py"):
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert hits == []


# ================================================================ the error contract, command by command

BROKEN_YAML = "model: bad\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3, groups: 2}\n"
BROKEN_DSL = "model bad\ninput [3, 8, 8]\nlayers {\n    conv(4, k=3, groups=2)\n}\n"
SYNTAX_DSL = "model bad\ninput [3, 8, 8]\nlayers {\n    conv(4, k=3\n}\n"


def _spec_commands() -> list[tuple[str, list[str]]]:
    """Every registered subcommand that reads a spec, with the extra arguments it needs."""
    from specdsl.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    out = []
    for name, sp in sub.choices.items():
        positionals = [a.dest for a in sp._actions if not a.option_strings]
        if not positionals or positionals == ["code"]:  # `explain CODE` reads no spec
            continue
        if name == "import":  # its input is a model, not a spec: test_import_reads_an_onnx_file_as_untrusted
            continue
        extra: list[str] = []
        for action in sp._actions:
            if action.option_strings and action.required:
                extra += [action.option_strings[0], str(action.choices[0]) if action.choices else
                          "x.onnx" if name == "export" else "mytrain:train" if action.dest == "train" else "x"]
        out.append((name, extra))
    return out


@pytest.mark.parametrize("text,suffix", [(BROKEN_YAML, ".yaml"), (BROKEN_DSL, ".cnn"), (SYNTAX_DSL, ".cnn")])
def test_every_command_reports_a_broken_spec_with_a_location(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             text: str, suffix: str) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    commands = _spec_commands()
    assert {"check", "convert", "fmt", "build", "run"} <= {c for c, _ in commands}
    for command, extra in commands:
        if command == "fmt" and suffix != ".cnn":
            continue
        if command in ("fmt", "convert") and text is not SYNTAX_DSL:
            continue  # they need a parseable file only: a shape error is not their business
        status = main([command, str(path), *extra])
        out, err = capsys.readouterr()
        assert status == EXIT_SPEC, (command, status, err[-500:])
        assert re.search(rf"bad{re.escape(suffix)}:\d+:\d+: error E\d{{3}}: ", err), (command, err[-500:])
        assert "Traceback" not in err + out and "internal error" not in err


def test_every_command_reports_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command, extra in _spec_commands():
        status = main([command, str(tmp_path / "missing.cnn"), *extra])
        err = capsys.readouterr().err
        assert status == EXIT_SPEC, (command, err)
        assert "E100" in err and "Traceback" not in err


def test_import_reads_an_onnx_file_as_untrusted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An .onnx file is untrusted input (unlike `import FILE.py:Class`, which runs the user's own code by
    design): a missing, empty or corrupt one is a user error that writes nothing, never a traceback."""
    pytest.importorskip("onnx")
    out = tmp_path / "out.cnn"
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07garbage that is no protobuf message" * 50)
    for name, expected in (("missing.onnx", "cannot open"), ("corrupt.onnx", "E512"), ("empty.onnx", "E")):
        status = main(["import", str(tmp_path / name), "-o", str(out), "--no-verify"])
        captured = capsys.readouterr()
        assert status == EXIT_SPEC, (name, captured.err[-500:])
        assert expected in captured.err and "Traceback" not in captured.err + captured.out, (name, captured.err)
        assert "internal error" not in captured.err and not out.exists()


def test_commands_without_a_spec_succeed(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["schema"], ["zoo"], ["ops"], ["zoo", "-v"]):
        assert main(argv) == EXIT_OK
    capsys.readouterr()


@pytest.mark.parametrize("argv", [["convert", "lenet5", "--to", "dsl", "-o"], ["build", "lenet5", "-o"]])
def test_unwritable_output_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           argv: list[str]) -> None:
    if argv[0] == "build":
        pytest.importorskip("torch")
    status = main([*argv, str(tmp_path / "no" / "such" / "folder" / "out.txt")])
    err = capsys.readouterr().err
    assert status == EXIT_SPEC
    assert "could not write" in err and "No such file or directory" in err and "Traceback" not in err


@pytest.mark.parametrize(("argv", "target"), [
    (["convert", "lenet5", "--to", "yaml"], "specdsl.render.reformat.to_yaml"),
    (["fmt", "{dsl}"], "specdsl.render.reformat.to_dsl"),
    (["zoo", "-v"], "specdsl.api.load"),
    (["check", "lenet5"], "specdsl.render.table.table"),
])
def test_internal_errors_in_every_command_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                                 target: str) -> None:
    dsl = tmp_path / "m.cnn"
    dsl.write_text("model m\ninput [3, 8, 8]\nlayers {\n    relu\n}\n")

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(target, boom)
    monkeypatch.delenv("SPECDSL_DEBUG", raising=False)
    status = main([a.replace("{dsl}", str(dsl)) for a in argv])
    err = capsys.readouterr().err
    assert status == EXIT_BUG
    assert err.startswith("specdsl: internal error — this is a bug: ZeroDivisionError: boom\n")
    assert f"while running `specdsl {argv[0]}`" in err
    if argv[0] != "zoo":
        assert " on " in err  # the spec it was working on
    assert "Traceback" not in err


def test_diagnostics_never_write_control_characters_to_the_terminal(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "esc.yaml"
    path.write_text('model: m\ninput: [3]\nlayers:\n  - "\\e[2J\\e]0;pwned\\a\\u202erelu"\n')
    assert main(["check", str(path)]) == EXIT_SPEC
    err = capsys.readouterr().err
    assert "E204" in err
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e]", err), repr(err)
    lines = err.splitlines()
    source = next(i for i, line in enumerate(lines) if line.startswith("   4 | "))
    assert lines[source + 1].index("^") == lines[source].index('"')  # carets still line up


# ================================================================ fuzzing

FUZZ_BUDGETS = Budgets(max_nodes=50_000)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=FUZZ_EXAMPLES <= 500, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(rnd=st.randoms(use_true_random=False))
def test_fuzz_mutated_specs_keep_the_error_contract(tmp_path_factory: pytest.TempPathFactory,
                                                    rnd: random.Random) -> None:
    """Structural, token- and byte-level mutations of the zoo (YAML and DSL): every outcome is a
    loaded model (which then goes through the report and JSON) or a SpecError whose errors are
    all located; any other exception fails."""
    suffix, raw, _ = mutate.make_case(rnd)
    path = tmp_path_factory.getbasetemp() / f"fuzz{suffix}"
    path.write_bytes(raw)
    mutate.check(path, FUZZ_BUDGETS, printers=False)


@settings(max_examples=max(50, FUZZ_EXAMPLES // 3), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rnd=st.randoms(use_true_random=False))
def test_fuzz_convert_and_fmt_on_mutated_specs(tmp_path_factory: pytest.TempPathFactory,
                                               rnd: random.Random) -> None:
    suffix, raw, _ = mutate.make_case(rnd)
    path = tmp_path_factory.getbasetemp() / f"printer_fuzz{suffix}"
    path.write_bytes(raw)
    mutate.check(path, FUZZ_BUDGETS, printers=True)


def test_printer_known_bugs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "fmt_inputs.cnn": "model m\ninput [3, 8, 8]\nlayers {\n    relu(inputs=128)\n}\n",
        "fmt_section.cnn": "model m\ninput [3, 8, 8]\nblock b() = residual {\n    relu\n} extra {\n"
                           "    conv(8, k=1)\n}\nlayers {\n    b\n}\n",
        "fmt_body.cnn": "model m\ninput [3, 8, 8]\nblock b() = nosuch {\n    relu\n}\nlayers {\n    b\n}\n",
        "convert_unused.yaml": "model: m\ninput: [3, 8, 8]\nblocks:\n  unused:\n    layers:\n"
                               "      - conv: {out: {a: 1}}\nlayers: [relu]\n",
    }
    statuses = {}
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        argv = ["fmt", "--check", str(path)] if name.startswith("fmt") else ["convert", str(path), "--to", "dsl"]
        statuses[name] = main(argv)
    capsys.readouterr()
    assert EXIT_BUG not in statuses.values(), statuses


def test_fuzz_corpus_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rnd = random.Random(7)
    for i in range(40):
        suffix, raw, _ = mutate.make_case(rnd)
        path = tmp_path / f"case{i}{suffix}"
        path.write_bytes(raw)
        status = main(["check", str(path), "--max-nodes", "50000"])
        err = capsys.readouterr().err
        assert status in (EXIT_OK, EXIT_SPEC), err
        assert "Traceback" not in err and "internal error" not in err


# ================================================================ emitted PyTorch source

HOSTILE_SEEDS = [
    *keyword.kwlist, *keyword.softkwlist, "true", "false", "none", "null", "self", "torch", "nn", "F", "x", "x0",
    "x1", "x12", "super", "input",
    "print", "eval", "exec", "open", "compile", "globals", "getattr", "__import__", "__builtins__", "__init__",
    "__class__", "__dict__", "__del__", "__getattr__", "_", "__", "_x", "___", "os", "sys", "subprocess",
    "GlobalPool", "Join", "FractalPath", "Model", "Module", "forward", "reset_parameters", "training", "layers",
    "a" * 64, "A" * 65, "x" + "9" * 63, "type", "object", "property", "staticmethod", "int", "float", "bool",
    # strings that would break out of a string, a comment or a docstring
    "a'b", 'a"b', 'a"""b', "a'''b", "a\nb", "a\rb", "a\\b", "a#b", "a;b", "a b", "a.b", "a[0]", "a(b)",
    "');__import__('os').system('touch SPECDSL_PWNED');('", "\"\"\"\n__import__('os').system('touch SPECDSL_PWNED')\n",
    "x\n__import__('os').system('touch SPECDSL_PWNED')\n#", "\\\nimport os", "{x}", "%s", "$(touch SPECDSL_PWNED)",
    # unicode look-alikes that NFKC folds onto ASCII, or that only look alike
    "ｓｅｌｆ", "ｘ", "ｘ1", "ℌ", "ﬁlter", "𝐫𝐞𝐥𝐮", "\u212aernel", "ſelf", "іnput", "х", "ⅰ", "ｅｖａｌ", "µ",
    "e\u0301", "\u00e9", "a\u200bb", "\u202eabc", "a\u00a0b", "٣", "_\u0300",
    # descriptions end up in a docstring
    'ends with a quote"', '"', '""', "'", "\\", "\x00", "\x1b[2J", "\u2028", "a\u2029b",
]


def _hostile_names(n: int) -> list[str]:
    names = list(dict.fromkeys(HOSTILE_SEEDS))
    names += [n.upper() for n in keyword.kwlist] + [n.capitalize() for n in HOSTILE_SEEDS if n.isidentifier()]
    names += [f"__{n}__" for n in dir(__builtins__) if isinstance(n, str)][:40] + list(dir(__builtins__))
    rnd = random.Random(20240501)
    alphabet = "abcxyzXZ_019" + "'\"\\\n #.;()[]{}" + "ｓｘ𝐫ſ\u212a\u0301\u200b"
    while len(names) < n:
        size = rnd.randint(1, 24)
        names.append("".join(rnd.choice(alphabet) for _ in range(size)))
    return names[:n]


def _slot_specs(name: str) -> list[tuple[str, str]]:
    """(slot, YAML text) putting ``name`` where a spec lets a user write a name."""
    q = json.dumps(name)
    return [
        ("node", f"model: m\ninput: [3, 4, 4]\nlayers:\n  - conv: {{out: 2, k: 1}}\n    name: {q}\n  - relu\n"),
        ("ref", f"model: m\ninput: [3, 4, 4]\nlayers:\n  - {{relu: null, name: {q}}}\n"
                f"  - {{add: null, inputs: [{q}, input]}}\n"),
        ("model", f"model: {q}\ninput: [3, 4, 4]\nlayers:\n  - relu\n"),
        ("block", f"model: m\ninput: [3, 4, 4]\nblocks:\n  {q}: [{{conv: {{out: 2, k: 1}}}}, relu]\n"
                  f"layers:\n  - {q}\n"),
        ("param", f"model: m\ninput: [3, 4, 4]\nblocks:\n  b:\n    params: {{{q}: 2}}\n    layers:\n"
                  f"      - conv: {{out: {q}, k: 1}}\nlayers:\n  - b\n  - b: {{{q}: 3}}\n"),
        ("branch", f"model: m\ninput: [3, 4, 4]\nlayers:\n  - inception:\n      branches:\n        {q}: [relu]\n"
                   f"        other: [{{conv: {{out: 2, k: 1}}}}]\n"),
        ("description", f"model: m\ninput: [3, 4, 4]\ndescription: {q}\nlayers:\n  - relu\n"),
    ]


def _import_emitted(source: str, sentinel_dir: Path) -> Any:
    """Import emitted source as a fresh module and build the model; nothing else may happen."""
    import types

    before = set(os.listdir(sentinel_dir))
    module = types.ModuleType("specdsl_emitted_untrusted")
    code = compile(source, "<emitted>", "exec")
    exec(code, module.__dict__)  # the allowlist has passed: imports, classes and constants only
    classes = [v for v in module.__dict__.values() if isinstance(v, type) and v.__module__ == module.__name__]
    model_cls = classes[-1]
    assert set(os.listdir(sentinel_dir)) == before
    return model_cls


def test_hostile_names_are_rejected_or_emitted_safely(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every name slot x HOSTILE_NAMES names (CI: 600; the acceptance run: 5,000): either the spec
    is refused at validation with a located error, or the emitted source passes the ast allowlist,
    imports without side effects and builds; NFKC-folding names never reach code."""
    pytest.importorskip("torch")
    from specdsl.backends.torch.emit import emit
    from specdsl.backends.torch.safety import check as safety_check

    monkeypatch.chdir(tmp_path)
    names = _hostile_names(HOSTILE_NAMES)
    rejected = emitted = known = 0
    for i, name in enumerate(names):
        for slot, text in _slot_specs(name):
            try:
                model = specdsl.load(text)
            except SpecError as exc:
                assert_located(exc)
                rejected += 1
                continue
            if _known_codegen_bug(slot, name):
                known += 1  # see test_codegen_known_bugs
                continue
            if slot != "description":
                assert name.isascii() and unicodedata.normalize("NFKC", name) == name, (slot, name)
            source = emit(model)
            safety_check(source)
            model_cls = _import_emitted(source, tmp_path)
            if i % 10 == 0 or slot in ("branch", "param"):  # building the modules is the slow part: a sample
                model_cls()
            emitted += 1
    assert not (tmp_path / SENTINEL).exists()
    assert rejected and emitted


def _known_codegen_bug(slot: str, name: str) -> str | None:
    """Cases backends/ (not this issue's files) still gets wrong; reproducers in test_codegen_known_bugs."""
    import torch

    if slot in ("model", "block") and name.lower() in ("true", "false", "none"):
        return "`class True(nn.Module)`: a SyntaxError from emit()"
    if slot == "branch" and hasattr(torch.nn.ModuleDict(), name):
        return "a branch named like an nn.Module attribute: KeyError 'attribute ... already exists'"
    return None


def test_codegen_known_bugs(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from specdsl.backends.torch.emit import emit
    from specdsl.backends.torch.fx import to_torch
    from specdsl.backends.torch.safety import check as safety_check

    failures = []
    for slot, name in [("model", "true"), ("model", "None"), ("block", "false"), ("branch", "training"),
                       ("branch", "forward"), ("branch", "type"), ("branch", "cuda")]:
        text = dict(_slot_specs(name))[slot]
        if slot == "branch":
            # Names of nn.Module attributes cannot name submodules: refused with a location.
            with pytest.raises(SpecError) as info:
                specdsl.load(text)
            assert info.value.errors[0].code == "E315" and info.value.errors[0].loc is not None
            continue
        try:
            model = specdsl.load(text)
            to_torch(model)
            _import_emitted(safety_check(emit(model)), tmp_path)()
        except Exception as exc:
            failures.append(f"{slot} {name!r}: {type(exc).__name__}: {exc}")
    assert not failures, failures


def test_codegen_safety_catches_injection() -> None:
    from specdsl.backends.torch.safety import problems

    good = ('"""doc"""\nimport torch\nfrom torch import nn\n\n\nclass M(nn.Module):\n'
            '    def __init__(self) -> None:\n        super().__init__()\n        self.a = nn.ReLU()\n\n'
            '    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        eval = self.a(x)\n        return eval\n')
    assert problems(good) == []
    bad = [
        "import os\n",
        "from os import system\n",
        "__import__('os').system('x')\n",
        "print('hi')\n",
        "X = open('f')\n",
        "class M(nn.Module):\n    x = __import__('os')\n",
        "class M(nn.Module, metaclass=type):\n    pass\n",
        "@decorator\nclass M(nn.Module):\n    pass\n",
        "class M(nn.Module):\n    def f(self):\n        return eval('1')\n",
        "class M(nn.Module):\n    def f(self):\n        return self.__class__.__bases__\n",
        "class M(nn.Module):\n    def f(self):\n        return torch.load('x')\n",
        "class M(nn.Module):\n    def f(self):\n        return (lambda: 1)()\n",
        "class M(nn.Module):\n    def f(self):\n        global g\n",
        "class M(nn.Module):\n    def f(self):\n        import os\n",
        "class M(nn.Module):\n    def f(self):\n        return f'{self}'\n",
        "class M(nn.Module):\n    def f(self):\n        with open('x'):\n            pass\n",
        "class M(object):\n    pass\n",
        "def f():\n    pass\n",
        "x = (\n",
    ]
    for source in bad:
        assert problems(source), source


_HASH_SCRIPT = """
import hashlib, sys
import specdsl
from specdsl.backends.torch.emit import emit
for source in sys.argv[1:]:
    print(source, hashlib.sha256(emit(specdsl.load(source)).encode()).hexdigest())
"""


def test_emitted_source_is_identical_across_hash_seeds(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    many = tmp_path / "many.yaml"  # many names, blocks, branches and dict keys: order must not depend on hashing
    blocks = "".join(f"  blk{i}: [{{conv: {{out: {i + 2}, k: 1}}}}, relu]\n" for i in range(12))
    branches = "".join(f"        br{i}: [{{conv: {{out: 2, k: 1}}}}]\n" for i in range(12))
    names = "".join(f"  - {{blk{i}: null, name: n{i}}}\n" for i in range(12))
    many.write_text(f"model: many\ninput: [3, 8, 8]\nblocks:\n{blocks}layers:\n{names}"
                    f"  - inception:\n      branches:\n{branches}")
    sources = [str(many), "googlenet", "fractalnet_cifar10", "unet", "densenet121", "inception_v3"]
    outputs = set()
    for seed in ("0", "1", "42", "4242", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run([sys.executable, "-c", _HASH_SCRIPT, *sources], env=env, capture_output=True,
                                text=True, timeout=300, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.add(result.stdout)
    assert len(outputs) == 1, outputs


# ================================================================ the lint gate


def test_lint_gate_selects_the_bandit_rules_and_ci_runs_it() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    selected = set(config["tool"]["ruff"]["lint"]["select"])
    assert {"S102", "S301", "S307", "S506"} <= selected
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert "set -euo pipefail" in script  # a lint failure fails the build
    ruff_line = next(line for line in script.splitlines() if "ruff check" in line)
    for folder in ("specdsl", "backends", "tests"):
        assert folder in ruff_line.split()


def test_the_bandit_rules_fire(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nimport yaml\n\n\ndef f(s):\n    exec(s)\n    eval(s)\n"
                   "    pickle.loads(s)\n    yaml.load(s, Loader=yaml.Loader)\n")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                             str(ROOT / "pyproject.toml"), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    for code in ("S102", "S301", "S307", "S506"):
        assert code in result.stdout, result.stdout
