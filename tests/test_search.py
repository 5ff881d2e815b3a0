"""specdsl.search with Optuna and Ray Tune: a tiny CNN family trained a few steps on synthetic data;
members that fail the constraints are rejected on their static figures and never built."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from specdsl.search.space import Range

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))
from search_tiny import TINY, train

SPACE = {"c": [2, 4, 16, 32], "k": [1, 3, 5], "depth": Range(1, 2, True)}
WHERE = "params <= 1000 and macs <= 60k"


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    path = tmp_path / "tiny.cnn"
    path.write_text(TINY)
    return str(path)


def test_optuna_study_multi_objective_never_builds_infeasible_members(tiny: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    optuna = pytest.importorskip("optuna")
    from specdsl.backends.torch import fx
    from specdsl.search import optuna_objective

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    built_values = []
    to_torch = fx.to_torch

    def spy(model, *args, **kwargs):  # every member that reaches to_torch
        built_values.append(model.totals.params)
        return to_torch(model, *args, **kwargs)

    monkeypatch.setattr(fx, "to_torch", spy)
    built: list = []
    objective, constraints, directions = optuna_objective(tiny, train, SPACE, where=WHERE,
                                                          objectives=["metric:max", "macs"], built=built)
    assert directions == ["maximize", "minimize"]
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="tiny",
                                directions=directions,
                                sampler=optuna.samplers.TPESampler(seed=0, constraints_func=constraints))
    study.optimize(objective, n_trials=10)
    trials = study.trials
    infeasible = [t for t in trials if any(v > 0 for v in t.user_attrs["constraints"])]
    assert infeasible and len(infeasible) < len(trials)
    assert len(built) == len(built_values) == len(trials) - len(infeasible)  # only feasible members built
    assert all(p <= 1000 for p in built_values)
    assert all(t.user_attrs["params"] > 1000 or t.user_attrs["macs"] > 60_000 for t in infeasible)
    assert all(0.0 <= c.metric <= 1.0 for c in built)
    best = study.best_trials
    assert best and all(t not in infeasible for t in best)
    # The storage is shared: another process (or machine) loads the same study.
    again = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert len(again.trials) == 10


def test_search_command_with_optuna_storage(tiny: str, tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "specdsl", "search", tiny, "--train", "search_tiny:train",
                          "--param", "c=2,4,16,32", "--param", "depth=1..2", "--trials", "5", "--seed", "1",
                          "--where", WHERE, "--objective", "metric:max", "--objective", "macs",
                          "--study", f"sqlite:///{tmp_path / 's.db'}"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "5 trials (" in out.stdout and "never built" in out.stdout


def test_ray_tune_run_never_builds_infeasible_members(tiny: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray.tune")
    import ray

    from specdsl.search import run_ray

    # Ray's workers import the training function by module name.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # Half the members (64 channels, two layers) break the budget.
        points = run_ray(tiny, train, {"c": [2, 64], "k": [3], "depth": [2]}, trials=4, where=WHERE,
                         objectives=["metric:max", "macs"], seed=0)
    finally:
        ray.shutdown()
    assert len(points) == 4 and all(p.ok for p in points)
    feasible = [p for p in points if p.feasible]
    rejected = [p for p in points if not p.feasible]
    assert feasible and rejected
    assert all("metric" not in p.figures for p in rejected)  # never built, never trained
    assert all(p.figures["params"] > 1000 or p.figures["macs"] > 60_000 for p in rejected)
    assert all(0.0 <= p.figures["metric"] <= 1.0 for p in feasible)
    assert any(p.pareto for p in feasible) and not any(p.pareto for p in rejected)
