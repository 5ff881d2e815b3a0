"""Start-up: each command imports what it runs and nothing else (issue 29, item 11).

A whole process of `specdsl check` pays for every module it imports; the timing itself is in
benchmarks/bench_startup.py (no wall-clock asserts here). Each case runs the command's `main` in a
fresh interpreter and reads back the names in sys.modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The other commands' modules, the backends and the optional dependencies: none of them is `check`'s.
NOT_FOR_CHECK = (
    "torch", "numpy", "graphviz", "onnx", "onnxruntime", "pygls", "lsprotocol", "optuna", "safetensors",
    "specdsl.render.dot", "specdsl.render.graphviz", "specdsl.render.reformat",
    "specdsl.cli.diagram", "specdsl.cli.diff", "specdsl.cli.export", "specdsl.cli.explain", "specdsl.cli.sweep",
    "specdsl.cli.search", "specdsl.cli.torch_commands", "specdsl.cli.import_cmd", "specdsl.cli.import_onnx",
    "specdsl.lsp", "specdsl.search", "specdsl.sweep", "specdsl.lift", "specdsl.backends",
    # A valid spec validates without pydantic (specdsl/ops/model.py: its twin models come in for errors).
    "pydantic", "pydantic_core",
)


def modules_after(*argv: str) -> set[str]:
    """sys.modules after `specdsl ARGV` ran to its end in a fresh interpreter (its output discarded)."""
    code = ("import contextlib, io, json, sys\n"
            "from specdsl.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            f"    rc = main({list(argv)!r})\n"
            "print(json.dumps({'rc': rc, 'modules': sorted(sys.modules)}))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["rc"] == 0, f"specdsl {' '.join(argv)} exited {result['rc']}"
    return set(result["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("argv", [("check", "vgg16"), ("check", "--json", "resnet50"), ("check", "alexnet")])
def test_check_imports_only_the_check_path(argv: tuple[str, ...]) -> None:
    modules = modules_after(*argv)
    assert "specdsl.cli.check" in modules and "specdsl.api" in modules  # the probe ran the real command
    assert _loaded(modules, NOT_FOR_CHECK) == []


def test_explain_needs_neither_the_schema_nor_the_parser() -> None:
    # Every command's parser gets --param; converting its value is what needs the schema, not building it.
    modules = modules_after("explain", "E201")
    assert _loaded(modules, ("pydantic", "lark", "specdsl.ops", "specdsl.schema", "specdsl.api", "specdsl.blocks",
                             "specdsl.cli.check", "tempfile")) == []


def test_version_needs_no_command() -> None:
    # argparse answers a leading --version before reading a command: no command's module is imported.
    modules = modules_after("--version")
    assert _loaded(modules, ("pydantic", "lark", "specdsl.ops", "specdsl.api", "specdsl.cli.check",
                             "specdsl.cli.diagram", "specdsl.lsp")) == []


def test_a_spec_error_brings_pydantic_in_for_its_message(tmp_path: Path) -> None:
    spec = tmp_path / "bad.cnn"
    spec.write_text("model m\ninput [3, 8, 8]\nlayers {\n  conv(out=0, k=3)\n}\n", encoding="utf-8")
    code = ("import contextlib, io, sys\n"
            "from specdsl.cli.main import main\n"
            "err = io.StringIO()\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):\n"
            f"    rc = main(['check', {str(spec)!r}])\n"
            "print(rc, 'pydantic' in sys.modules, 'E205' in err.getvalue())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.split() == ["1", "True", "True"], done.stderr


def test_the_console_script_starts_without_interegular_and_collects_cycles_again() -> None:
    # entry() (the console script) leaves lark's optional interegular out, as a plain install has it, and
    # turns the cycle collector back on for the command.
    code = ("import atexit, gc, json, sys\n"
            "atexit.register(lambda: print(json.dumps({'interegular': sys.modules.get('interegular', 0) is not None,"
            " 'gc': gc.isenabled()})))\n"
            "sys.argv = ['specdsl', 'check', 'lenet5']\n"
            "from specdsl.cli.main import entry\n"
            "entry()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"interegular": False, "gc": True}
