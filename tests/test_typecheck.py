"""The type checker's gate: scripts/test.sh (which CI runs) runs mypy through scripts/typecheck.py,
which checks the top-level backends/ under the name it installs as. mypy itself is not run here
(a cold run takes a minute); scripts/test.sh runs it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parent.parent


def _typecheck():  # scripts/ is not a package: load the file as a module
    spec = importlib.util.spec_from_file_location("typecheck", ROOT / "scripts" / "typecheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_backends_are_checked_as_specdsl_backends() -> None:
    sources = [BuildSource("specdsl/api.py", "specdsl.api"),
               BuildSource("specdsl/backends/__init__.py", "specdsl.backends"),
               BuildSource("backends/__init__.py", "backends"),
               BuildSource("backends/torch/fx.py", "backends.torch.fx"),
               BuildSource("backends/naming.py", "backends.naming")]
    named = {s.path: s.module for s in _typecheck().installed_names(sources)}
    # The checkout's redirect is the package; the folder's own __init__ is not a second copy of it.
    assert named == {"specdsl/api.py": "specdsl.api", "specdsl/backends/__init__.py": "specdsl.backends",
                     "backends/torch/fx.py": "specdsl.backends.torch.fx",
                     "backends/naming.py": "specdsl.backends.naming"}


def test_ci_runs_the_type_checker_on_both_folders() -> None:
    import tomllib  # Python 3.11+, as the lock

    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert any(line.strip().startswith('if ! "$PY" scripts/typecheck.py') for line in script.splitlines())
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["files"] == ["specdsl", "backends"]
    assert config["check_untyped_defs"] and config["warn_unused_ignores"]
    assert "ignore-without-code" in config["enable_error_code"]
