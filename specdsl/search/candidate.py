"""One candidate of a search: a family member's static figures, a verdict on the constraints, and
only then (when it is feasible) its PyTorch module and the user's training run.

Shared by the Optuna and Ray Tune drivers; imports neither (nor torch until a member is built).
The training function is the user's: ``train(module, candidate) -> float`` (the metric, e.g.
validation accuracy), given the built ``torch.nn.Module`` and this :class:`Candidate` (its
parameter values, figures and input shape).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from specdsl.search.where import Expression, parse

TrainFn = Callable[[Any, "Candidate"], float]
METRIC = "metric"  # the objective name of the training function's result


@dataclass
class Candidate:
    values: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()
    violations: list[float] = field(default_factory=list)
    metric: float | None = None

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations)


@dataclass(frozen=True)
class Goal:
    """An objective of a search: the training metric or a figure expression, and its direction."""

    name: str
    maximise: bool
    expr: Expression | None  # None: the training function's metric

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return "maximize" if self.maximise else "minimize"

    def value(self, c: Candidate) -> float:
        if self.expr is None:
            return float(c.metric) if c.metric is not None else math.nan
        return float(self.expr({**c.values, **c.figures}))

    def worst(self) -> float:
        return -math.inf if self.maximise else math.inf


@dataclass
class Family:
    """A spec (path, zoo name or text) searched over: parsed conditions and objectives."""

    source: str
    variant: str | None = None
    where: str | None = None
    objectives: Sequence[str] = (f"{METRIC}:max",)
    batch: int = 1

    def __post_init__(self) -> None:
        from specdsl.search.space import family

        declared = family(self.source)["params"]
        self.params = list(declared)
        # name -> default (or kind, for a parameter without one): what command-line text converts to
        self.declared = {k: v["kind"] if v["default"] is None else v["default"] for k, v in declared.items()}
        self.condition = parse(self.where, self.params) if self.where else None
        self.goals = [_goal(text, self.params) for text in self.objectives]
        self.calls = tuple(c for e in (self.condition, *(g.expr for g in self.goals)) if e is not None
                           for c in e.calls)

    def assess(self, values: Mapping[str, Any]) -> tuple[Candidate, Any]:
        """The member's static figures and constraint violations (<= 0: met), and the loaded model."""
        from specdsl.api import load
        from specdsl.sweep import point_figures, train_peak

        model = load(self.source, variant=self.variant, params=dict(values), batch=self.batch, warn=False)
        figures = point_figures(model.analysis, len(model.graph.nodes))
        for call in self.calls:
            figures[call.name] = train_peak(model.graph, model.analysis, call)
        c = Candidate(dict(values), figures, tuple(model.graph.input_shape))
        c.violations = self.condition.violations({**c.values, **figures}) if self.condition else []
        return c, model

    def run(self, values: Mapping[str, Any], train: TrainFn) -> Candidate:
        """Assess a member; build and train it only when it meets the constraints."""
        c, model = self.assess(values)
        if c.feasible:
            from specdsl.backends.torch import fx

            c.metric = float(train(fx.to_torch(model), c))
        return c


def _goal(text: str, names: Sequence[str]) -> Goal:
    body, _, goal = text.rpartition(":")
    if goal not in ("min", "max"):
        body, goal = text, "min"
    body = body.strip()
    return Goal(body, goal == "max", None if body == METRIC else parse(body, names, "--objective"))


def load_function(spec: str) -> TrainFn:
    """``package.module:function`` -> the function (the user's own training code, imported as such)."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"expected MODULE:FUNCTION (e.g. mytrain:train); received '{spec}'")
    function = getattr(importlib.import_module(module), name, None)
    if not callable(function):
        raise ValueError(f"module '{module}' has no function '{name}'")
    return function
