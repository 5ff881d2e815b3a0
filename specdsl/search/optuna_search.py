"""Optuna over a model family: each trial samples a member, is judged on its static figures first
(Optuna's ``constraints_func``), and only a feasible member is built with ``to_torch`` and trained.

``optuna_objective`` gives the objective and the constraints function for a study of your own;
``run_optuna`` makes (or joins) the study and runs it. With an RDB storage
(``sqlite:///study.db``, ``postgresql://...``) many processes or machines share one study: run the
same command on each. Every trial records the member's parameter values and static figures as user
attributes beside its metric, so the study doubles as a table of the design space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from specdsl.search.candidate import METRIC, Candidate, Family, TrainFn
from specdsl.search.space import Axis, Range, typed_space

CONSTRAINTS = "constraints"  # the user attribute constraints_func reads


def suggest(trial: Any, space: Mapping[str, Axis]) -> dict[str, Any]:
    """A member's parameter values from Optuna's suggestions."""
    values: dict[str, Any] = {}
    for name, axis in space.items():
        if isinstance(axis, Range):
            values[name] = (trial.suggest_int(name, int(axis.low), int(axis.high)) if axis.integer
                            else trial.suggest_float(name, float(axis.low), float(axis.high)))
        else:
            values[name] = trial.suggest_categorical(name, list(axis))
    return values


def constraints(trial: Any) -> Sequence[float]:
    """Optuna's constraints_func: the violations the objective recorded (<= 0: met)."""
    return trial.user_attrs.get(CONSTRAINTS, ())


def optuna_objective(family: str | Family, train_fn: TrainFn, space: Mapping[str, Axis], *,
                     where: str | None = None, objectives: Sequence[str] = (f"{METRIC}:max",),
                     variant: str | None = None, built: list[Candidate] | None = None
                     ) -> tuple[Any, Any, list[Literal["maximize", "minimize"]]]:
    """(objective, constraints_func, directions) for ``optuna.create_study(directions=...,
    sampler=TPESampler(constraints_func=...))``; constraints_func is None with Optuna 5, whose trials
    carry their constraints (``Trial.set_constraint``) for every sampler that reads them.

    ``objectives``: ``metric`` (what ``train_fn`` returns) and figure expressions (``macs``,
    ``params / 1e6``), each ``:max`` or ``:min`` (the default). A member that fails ``where`` is
    never built: its trial records the violations and returns the worst value for each objective.
    ``built`` (optional) collects every candidate that was trained.
    """
    import optuna

    fam = family if isinstance(family, Family) else Family(family, variant, where, tuple(objectives))
    space = typed_space(space, fam.declared)
    # Optuna 5 reads constraints the trial sets; Optuna 4 asks a constraints_func.
    native = hasattr(optuna.trial.Trial, "set_constraint")

    def objective(trial: Any) -> float | list[float]:
        c, model = fam.assess(suggest(trial, space))
        trial.set_user_attr(CONSTRAINTS, c.violations)
        if native:
            for k, v in enumerate(c.violations):
                trial.set_constraint(f"where[{k}]", v)
        for key, value in c.figures.items():
            trial.set_user_attr(key, value)
        if c.feasible:
            from specdsl.backends.torch import fx

            c.metric = float(train_fn(fx.to_torch(model), c))
            if built is not None:
                built.append(c)
            values = [g.value(c) for g in fam.goals]
        else:
            values = [g.worst() for g in fam.goals]
        return values[0] if len(values) == 1 else values

    return objective, None if native else constraints, [g.direction for g in fam.goals]


def run_optuna(family: str, train_fn: TrainFn, space: Mapping[str, Axis], *, trials: int,
               storage: str | None = None, study_name: str | None = None, where: str | None = None,
               objectives: Sequence[str] = (f"{METRIC}:max",), variant: str | None = None,
               seed: int | None = None) -> Any:
    """Create (or join, with the same storage and name) a study and run ``trials`` trials; the study."""
    import optuna

    objective, constraints_func, directions = optuna_objective(family, train_fn, space, where=where,
                                                               objectives=objectives, variant=variant)
    sampler = optuna.samplers.TPESampler(seed=seed, constraints_func=constraints_func)
    study = optuna.create_study(storage=storage, study_name=study_name, load_if_exists=study_name is not None,
                                directions=directions, sampler=sampler)
    study.optimize(objective, n_trials=trials)
    return study
