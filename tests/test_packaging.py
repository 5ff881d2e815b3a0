"""The wheel works on its own: build it, install it in a fresh venv, run the CLI.

The editable install used by the rest of the suite maps ``specdsl.backends``,
``specdsl.grammars`` and ``specdsl.specs`` onto top-level folders; this test
checks that a real wheel ships them under the ``specdsl`` namespace (with the
zoo's YAML files) and that nothing named just ``backends``/``specs``/``grammars``
lands in site-packages.

It builds a wheel from a copy of the source tree (so no ``build/`` folder is
written into, or stale files read from, the checkout), makes a venv without
system site-packages, and lets pip install the wheel with its dependencies from
the configured index. About 10-30 s; set ``SPECDSL_SKIP_PACKAGING=1`` to skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = {"lenet5", "alexnet", "vgg16", "vgg16_bn"}
MAPPED = ("backends", "grammars", "specs")
VGG16_PARAMS = "138,357,544"  # torchvision.models.vgg16(): sum(p.numel() for p in model.parameters())

pytestmark = pytest.mark.skipif(
    os.environ.get("SPECDSL_SKIP_PACKAGING", "") not in ("", "0"),
    reason="SPECDSL_SKIP_PACKAGING is set",
)

# What the build needs from the checkout; everything else (venvs, caches, tests) stays behind.
_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".pytest_cache", ".ruff_cache", ".hypothesis", "tests", "benchmarks",
)


def _env() -> dict[str, str]:
    """The caller's environment minus anything that would leak the dev install in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(cmd: list[str | Path], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(str(c) for c in cmd)}` exited {proc.returncode}\n"
                    f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


def _shipped(folder: Path) -> set[str]:
    """Files of a mapped folder that the wheel must carry (relative paths)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, src], cwd=tmp)
    wheels = list(dist.glob("specdsl-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    pytest.importorskip("ensurepip", reason="this Python cannot create venvs with pip")
    wheel = _build_wheel(tmp_path)

    # The wheel itself: one top-level package and its dist-info, the zoo and the mapped packages inside.
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"specdsl", wheel.name.split("-py")[0] + ".dist-info"}, sorted(tops)
    for folder in MAPPED:  # every file of backends/, grammars/, specs/ (zoo .yaml/.cnn, .lark grammar)
        missing = {f"specdsl/{folder}/{f}" for f in _shipped(ROOT / folder)} - set(names)
        assert not missing, f"{sorted(missing)} missing from {wheel.name}"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    _run([python, "-m", "pip", "install", "--quiet", wheel], cwd=tmp_path, timeout=600)

    # Imported from the venv's site-packages, not from the checkout.
    probe = _run([python, "-c", "import sysconfig, specdsl; "
                  "print(sysconfig.get_paths()['purelib']); print(specdsl.__file__)"], cwd=tmp_path)
    purelib, module_file = (Path(line) for line in probe.stdout.splitlines()[:2])
    assert module_file == purelib / "specdsl" / "__init__.py", probe.stdout

    installed = purelib / "specdsl"
    for needed in ("grammars/__init__.py", "backends/__init__.py", "specs/__init__.py"):
        assert (installed / needed).is_file(), f"specdsl/{needed} not installed"
    assert list((installed / "specs").glob("*.yaml")), "no zoo YAML installed"
    for folder in MAPPED:
        missing = _shipped(ROOT / folder) - _shipped(installed / folder)
        assert not missing, f"not installed under specdsl/{folder}: {sorted(missing)}"
    for name in MAPPED:
        assert not (purelib / name).exists(), f"a top-level '{name}' was installed into site-packages"
    # The checkout's pointer (specdsl/backends/__init__.py) stays out of the wheel: backends/ is the package.
    assert (installed / "backends" / "__init__.py").read_text(encoding="utf-8") == \
        (ROOT / "backends" / "__init__.py").read_text(encoding="utf-8")

    specdsl = bindir / "specdsl"
    check = _run([specdsl, "check", "vgg16"], cwd=tmp_path)
    assert "vgg16" in check.stdout and VGG16_PARAMS in check.stdout, check.stdout
    zoo = _run([specdsl, "zoo"], cwd=tmp_path)
    listed = set(zoo.stdout.split())
    assert listed >= ZOO, zoo.stdout
    # The README's quick start installs no extra: a command that needs one says which, with exit 1.
    for command, extra in ((["run", "lenet5"], "torch"), (["diff", "lenet5"], "torch"),
                           (["export", "lenet5", "-o", "m.onnx"], "onnx")):
        needs = subprocess.run([str(specdsl), *command], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                               timeout=120, check=False)
        assert needs.returncode == 1 and f"  pip install 'specdsl[{extra}]'\n" in needs.stderr, needs.stderr
    assert listed >= {Path(f).stem for f in _shipped(ROOT / "specs") if f.endswith((".yaml", ".cnn"))}, zoo.stdout
