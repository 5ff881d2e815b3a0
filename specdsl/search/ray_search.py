"""Ray Tune over a model family, for searches that outgrow one machine: the same candidates as the
Optuna driver (static figures first, a member that fails the constraints never built), run as
Ray Tune trials, each with its own resources. ``address`` joins a running cluster
(``ray.init(address=...)``); without one, a local Ray starts.

Every trial reports ``feasible``, the member's values and figures and, when it trained, the
metric; the results come back as :class:`specdsl.sweep.Point` rows with the Pareto front of the
objectives marked (Ray Tune itself optimises one metric; the front is taken over all of them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from specdsl.search.candidate import METRIC, Family, TrainFn
from specdsl.search.space import Axis, Range, typed_space


def param_space(space: Mapping[str, Axis]) -> dict[str, Any]:
    from ray import tune

    out: dict[str, Any] = {}
    for name, axis in space.items():
        if isinstance(axis, Range):
            out[name] = tune.randint(int(axis.low), int(axis.high) + 1) if axis.integer else \
                tune.uniform(float(axis.low), float(axis.high))
        else:
            out[name] = tune.choice(list(axis))
    return out


def trainable(family: Family, train_fn: TrainFn) -> Any:
    """The Ray Tune function trainable of one family and training function."""
    def run(config: dict[str, Any]) -> None:
        from ray import tune

        c = family.run(config, train_fn)
        report = {**{f"fig_{k}": v for k, v in c.figures.items()}, "feasible": c.feasible}
        if c.metric is not None:
            report[METRIC] = c.metric
        tune.report(report)
    return run


def run_ray(family: str, train_fn: TrainFn, space: Mapping[str, Axis], *, trials: int,
            where: str | None = None, objectives: Sequence[str] = (f"{METRIC}:max",), variant: str | None = None,
            address: str | None = None, resources: Mapping[str, float] | None = None,
            seed: int | None = None) -> list[Any]:
    """Run ``trials`` Ray Tune trials sampled from ``space``; the points, Pareto front marked."""
    import ray
    from ray import tune

    from specdsl.sweep import Point, objectives_of, pareto

    fam = Family(family, variant, where, tuple(objectives))
    space = typed_space(space, fam.declared)
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    runner = tune.with_resources(trainable(fam, train_fn), dict(resources or {"cpu": 1}))
    # No metric for Tune to optimise: an infeasible trial reports none, and the front is ours below.
    tuner = tune.Tuner(runner, param_space=param_space(space), tune_config=tune.TuneConfig(
        num_samples=trials, search_alg=tune.search.BasicVariantGenerator(random_state=seed), reuse_actors=True))
    results = tuner.fit()
    points = []
    for i in range(len(results)):  # a ResultGrid has __getitem__ and __len__, not __iter__
        result = results[i]
        m = result.metrics or {}
        figures = {k[4:]: v for k, v in m.items() if k.startswith("fig_")}
        if METRIC in m:
            figures[METRIC] = m[METRIC]
        config = result.config
        assert config is not None  # Tune keeps every trial's parameters
        values = {name: config[name] for name in space}
        points.append(Point(values, figures, error=None if result.error is None else str(result.error),
                            feasible=bool(m.get("feasible")) and METRIC in m))
    names = [*fam.params, METRIC]
    return pareto(points, objectives_of(list(objectives), names))
