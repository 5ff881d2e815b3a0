"""Shared helpers for the specdsl test suite.

Small specs are written as Python data and turned into YAML text (one JSON
flow mapping per layer, which is valid YAML), so a test reads like the spec
it checks and still goes through the real front end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import pytest

import specdsl
from specdsl.errors import Diagnostic, SpecError

# scripts/test.sh runs the suite in pytest-xdist workers, one per core: a worker's torch (and any CLI it
# starts) on one thread, or the workers' threads contend for the same cores. Set before any test module
# imports torch, which reads it then; tests that set their own count still do.
XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if XDIST_WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = "1"


def spec_text(*layers: Any, input: Sequence[int] = (3, 32, 32), model: str = "t",
              blocks: dict[str, Any] | None = None) -> str:
    """YAML text of a spec whose layers (and user-defined blocks) are given as Python data."""
    lines = [f"model: {model}", f"input: {json.dumps(list(input))}"]
    if blocks:
        lines.append(f"blocks: {json.dumps(blocks)}")
    lines += ["layers:", *(f"  - {json.dumps(layer)}" for layer in layers)]
    return "\n".join(lines) + "\n"


def load_layers(*layers: Any, input: Sequence[int] = (3, 32, 32), **kw: Any) -> specdsl.Model:
    # warn=False: the tests read model.warnings; issued SpecWarnings would only pile up in the run's output.
    kw.setdefault("warn", False)
    return specdsl.load(spec_text(*layers, input=input), **kw)


def errors_of(*layers: Any, input: Sequence[int] = (3, 32, 32)) -> list[Diagnostic]:
    """The error diagnostics a spec raises (fails the test when it loads cleanly)."""
    with pytest.raises(SpecError) as info:
        load_layers(*layers, input=input)
    return info.value.errors


class Helpers:
    """Bundled so one session-scoped fixture serves plain and hypothesis tests alike."""

    spec_text = staticmethod(spec_text)
    load = staticmethod(load_layers)
    errors = staticmethod(errors_of)

    @staticmethod
    def last(*layers: Any, input: Sequence[int] = (3, 32, 32)) -> Any:
        """Figures of the final node of a spec."""
        model = load_layers(*layers, input=input)
        return model.rows()[-1][1]

    @staticmethod
    def codes(*layers: Any, input: Sequence[int] = (3, 32, 32)) -> list[str]:
        return [d.code for d in errors_of(*layers, input=input)]

    @staticmethod
    def warning_codes(*layers: Any, input: Sequence[int] = (3, 32, 32)) -> list[str]:
        return [d.code for d in load_layers(*layers, input=input).warnings]


@pytest.fixture(scope="session")
def h() -> type[Helpers]:
    return Helpers


@pytest.fixture(scope="session")
def spec() -> Callable[..., str]:
    return spec_text


@pytest.fixture(scope="module")
def torch_threads() -> Any:
    """Large convolutions (whole zoo models) gain from a second thread in a serial run; in xdist's workers,
    which already use every core, each keeps one. The setting is restored for other modules."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1 if XDIST_WORKERS > 1 else 2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def torch_one_thread() -> Any:
    """Tiny tensors run fastest on one thread; the setting is restored for other modules.
    Modules that run torch on small examples use it with ``pytest.mark.usefixtures``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
