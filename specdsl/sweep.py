"""Design-space sweeps: the static figures of a model family over a grid or a sample of parameter values.

The lectures' grid search over widths and depths, done without training and without torch:
each point is the spec loaded with those parameter values (parsed once, then validated,
expanded and analysed per point), reported with its figures (:data:`specdsl.search.where.FIGURES`:
parameters, MACs, peak inference memory, the local receptive field, ...). ``where`` keeps the
points that meet a condition over the figures (``params <= 5e6 and macs <= 600M``); a point is
on the Pareto front when no other kept point is at least as good in every objective (by default
fewer parameters, MACs and memory and a larger receptive field) and better in one; :func:`best`
ranks them.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from specdsl.blocks.engine import expand_with_shapes
from specdsl.blocks.memo import CallMemo
from specdsl.budgets import DEFAULT as DEFAULT_BUDGETS
from specdsl.budgets import Budgets
from specdsl.errors import Diagnostic, SpecError
from specdsl.passes.analysis import Analysis, FigureCache, analyze
from specdsl.passes.receptive import local_field, sees_global
from specdsl.schema.document import validate_document
from specdsl.schema.params import ParamChoice
from specdsl.search.space import MAX_POINTS, Axis, grid, typed
from specdsl.search.where import DEFAULT_OBJECTIVES, Expression, TrainPeak, check_condition, check_objective, parse

__all__ = ["MAX_POINTS", "Objective", "Point", "best", "grid", "objectives_of", "pareto", "sweep"]

# Unknown variant or parameter, a value of the wrong kind, a parameter without a value.
PARAMETER_ERRORS = frozenset({"E360", "E361", "E362", "E363"})
# The total work of a sweep: nodes expanded over all its points (a point of ~10,000 nodes costs ~0.8 s,
# so a point count alone allowed hours). About 80 s on one core; the zoo's sweeps need a few percent.
MAX_SWEEP_NODES = 1_000_000


@dataclass(frozen=True)
class Point:
    """One member of the family: its parameter values (typed), its figures, or the error that rejected it."""

    values: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    pareto: bool = False
    feasible: bool = True  # meets the sweep's `where` condition

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def params(self) -> int | None:
        return self.figures.get("params")

    @property
    def macs(self) -> int | None:
        return self.figures.get("macs")

    @property
    def peak_bytes(self) -> int | None:
        return self.figures.get("peak_bytes")

    @property
    def rf(self) -> int | None:
        """The local receptive field's largest side at the last spatial node (None: no local field)."""
        return self.figures.get("rf") or None

    @property
    def rf_global(self) -> bool:
        return bool(self.figures.get("rf_global"))

    def env(self) -> dict[str, Any]:
        """What a condition or objective sees: the parameter values, then the figures."""
        return {**self.values, **self.figures}


@dataclass(frozen=True)
class Objective:
    """A figure (or an expression of figures) to minimise, or to maximise."""

    expr: Expression
    maximise: bool = False

    def key(self, point: Point) -> float:
        value = self.expr(point.env())
        return -value if self.maximise else value

    def __str__(self) -> str:
        return f"{self.expr.text}:{'max' if self.maximise else 'min'}"


def objectives_of(texts: Sequence[str] | None, names: Sequence[str] = ()) -> list[Objective]:
    """``macs``, ``rf:max``, ``params / 1e6:min`` -> objectives (the defaults where none is given)."""
    out = []
    for text in texts or DEFAULT_OBJECTIVES:
        body, _, goal = text.rpartition(":")
        if goal not in ("min", "max"):
            body, goal = text, "min"
        out.append(Objective(parse(body.strip(), names, "--objective"), goal == "max"))
    return out


def sweep(source: Any, axes: Mapping[str, Axis] | None = None, *, points: Sequence[Mapping[str, Any]] | None = None,
          variant: str | None = None, batch: int = 1, input: tuple[int, ...] | None = None,
          budgets: Budgets | None = None, jobs: int | None = None, where: str | None = None,
          objectives: Sequence[str] | None = None) -> list[Point]:
    """The figures of every point of the grid of ``axes`` (or of the given ``points``, e.g. from
    :func:`specdsl.search.space.sample`); a point the spec rejects carries its first error.

    ``where`` marks the points that fail it infeasible (``Point.feasible``); the Pareto front is taken
    over the feasible ones, along ``objectives`` (figure names or expressions, ``:max`` to maximise).
    ``jobs`` worker processes share the points (None: one per available core, 1: none). Workers are
    forked, so they exist only where the caller can safely fork (POSIX, one thread running); elsewhere
    the points are computed in this process.
    """
    from specdsl.api import _zoo_variant, read_data, read_source

    budgets = budgets or DEFAULT_BUDGETS
    hit = _zoo_variant(source) if variant is None else None
    if hit is not None:
        file, text, variant = hit
    else:
        file, text = read_source(source, budgets)
    data, smap = read_data(text, file, budgets)  # parsed once for all points
    declared = p if isinstance(data, dict) and isinstance(p := data.get("params"), dict) else {}
    values = [typed(p, declared) for p in (points if points is not None else grid(axes or {}))]
    condition = parse(where, list(declared)) if where else None
    goals = objectives_of(objectives, list(declared))
    calls = tuple(c for e in (condition, *(g.expr for g in goals)) if e is not None for c in e.calls)
    job = _Job(data, smap, variant, batch, input, budgets, calls)
    # Many small acyclic objects per point: the cyclic collector would only add pauses (as in load()).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        workers = _workers(jobs, len(values))
        outcomes = _in_workers(job, values, workers) if workers > 1 else job.run(values)
    finally:
        if gc_was_enabled:
            gc.enable()

    out: list[Point] = []
    first_error: SpecError | None = None
    for point_values, outcome in zip(values, outcomes):
        if isinstance(outcome, Point):
            out.append(outcome)
            continue
        error = SpecError(outcome, {file: text})
        first = error.errors[0] if error.errors else None
        if first is not None and (first.code in PARAMETER_ERRORS or first.code == "E367"):
            raise error  # a misspelt parameter or a value of the wrong kind: the grid itself is wrong
        first_error = first_error or error
        out.append(Point(point_values, error=f"{first.code}: {first.message}" if first else "rejected"))
    if first_error is not None and not any(p.ok for p in out):
        raise first_error  # no point loads: the spec itself is broken, say where
    sample = next((p for p in out if p.ok), None)
    if sample is not None:
        for g in goals:
            check_objective(g.expr, sample.env())
        if condition is not None:
            check_condition(condition, sample.env())
            out = [p if not p.ok or condition(p.env()) else replace(p, feasible=False) for p in out]
    return pareto(out, goals)


def point_figures(analysis: Analysis, node_count: int, rfs: Sequence[Any] | None = None) -> dict[str, Any]:
    """The figures a condition or objective may name (specdsl.search.where.FIGURES); ``rfs``: the nodes'
    receptive fields, where ``analysis`` holds no per-node figures."""
    t = analysis.totals
    fields = [f.rf for f in analysis.figures] if rfs is None else rfs
    # The local field at the last node that has one: after the gates, before the classifier's pool.
    rf = next((rf for rf in reversed(fields) if local_field(rf) is not None), None)
    side = max(int(a.size) for a in rf) if rf else 0
    return {"params": t.params, "trainable": t.trainable, "macs": t.macs, "flops": t.flops,
            "peak_bytes": t.peak_bytes, "activation_bytes": t.activation_bytes, "param_bytes": t.param_bytes,
            "rf": side, "rf_global": bool(rf is not None and sees_global(rf)), "nodes": node_count}


def train_peak(graph: Any, analysis: Analysis, call: TrainPeak) -> int:
    from types import SimpleNamespace

    from specdsl.passes.train_memory import predict

    return predict(SimpleNamespace(graph=graph, analysis=analysis), call.batch, call.optimizer, call.amp).peak


def evaluate(data: Any, smap: Any, variant: str | None, values: dict[str, Any], batch: int,
             input: tuple[int, ...] | None, budgets: Budgets, calls: Sequence[TrainPeak],
             memo: CallMemo | None = None, cache: FigureCache | None = None) -> Point | list[Diagnostic]:
    """One point from the parsed spec: its figures, or the diagnostics that rejected it (``memo``: the
    sweep's block calls, replayed where a point repeats one; ``cache``: their nodes' figures)."""
    try:
        spec = validate_document(data, smap, ParamChoice(variant, values))
        if input is not None:
            spec.input = tuple(input)
        graph, shapes, rfs = expand_with_shapes(spec, max_nodes=budgets.max_nodes, max_depth=budgets.max_depth,
                                                memo=memo)
        # Errors reject a point; warnings are not read.
        # The figures per node only where a training peak reads them; the point's figures are totals.
        analysis = analyze(graph, batch=batch, shapes=shapes, rfs=rfs, warnings=False, cache=cache,
                           per_node=bool(calls))
    except SpecError as exc:
        return list(exc.diagnostics)
    errors = [d for d in analysis.diagnostics if d.is_error]
    if errors:
        return errors
    figures = point_figures(analysis, len(graph.nodes), rfs)
    for call in calls:
        figures[call.name] = train_peak(graph, analysis, call)
    return Point(values, figures)


def _dominates(ka: Sequence[float], kb: Sequence[float]) -> bool:
    # A loop, not all() over a generator: the front compares each point with the front so far.
    for x, y in zip(ka, kb):
        if not x <= y:  # `not <=`, so a NaN dominates nothing
            return False
    return tuple(ka) != tuple(kb)


def pareto(points: list[Point], objectives: Sequence[Objective] | None = None) -> list[Point]:
    """The points, each marked whether it is on the Pareto front (among the feasible points that load)."""
    goals = list(objectives) if objectives is not None else objectives_of(None)
    keys = {id(p): tuple(g.key(p) for g in goals) for p in points if p.ok and p.feasible}
    front = _front(keys)
    return [replace(p, pareto=id(p) in front) for p in points]


def _front(keys: dict[int, tuple[float, ...]]) -> set[int]:
    """The ids whose key no other key dominates. A key dominates only keys after it in lexicographic
    order, and one dominated by any key is dominated by one on the front: so each key, in that order, is
    compared with the front found so far. (A NaN orders nothing: then every pair is compared.)"""
    items = list(keys.items())
    if any(x != x for _, key in items for x in key):
        return {i for i, key in items if not any(_dominates(k, key) for j, k in items if j != i)}
    front: list[tuple[int, tuple[float, ...]]] = []
    for i, key in sorted(items, key=lambda item: item[1]):
        if not any(_dominates(k, key) for _, k in front):
            front.append((i, key))
    return {i for i, _ in front}


def best(points: Sequence[Point], k: int, objectives: Sequence[Objective] | None = None) -> list[Point]:
    """The k best feasible points: by Pareto rank (the front first, then the front of the rest, ...),
    then by the first objective."""
    goals = list(objectives) if objectives is not None else objectives_of(None)
    left = [(p, tuple(g.key(p) for g in goals)) for p in points if p.ok and p.feasible]
    ranked: list[Point] = []
    while left and len(ranked) < k:
        front = [(p, key) for p, key in left if not any(_dominates(other, key) for _, other in left)]
        ranked += [p for p, _ in sorted(front, key=lambda item: item[1][0])]
        left = [(p, key) for p, key in left if all(p is not q for q, _ in front)]
    return ranked[:k]


# A point's outcome: its figures, or the diagnostics that rejected it.
Outcome = Point | list[Diagnostic]


@dataclass(frozen=True)
class _Job:
    """What every point shares: the parsed spec and the options."""

    data: Any
    smap: Any
    variant: str | None
    batch: int
    input: tuple[int, ...] | None
    budgets: Budgets
    calls: tuple[TrainPeak, ...] = ()
    # A block call's expansion is a function of its block, arguments and inputs: shared by the points.
    memo: CallMemo = field(default_factory=CallMemo, compare=False)
    figures: FigureCache = field(init=False, compare=False)  # a replayed node's, analysed once

    def __post_init__(self) -> None:
        object.__setattr__(self, "figures", FigureCache(self.memo.shapes))

    def run(self, points: Sequence[dict[str, Any]], max_nodes: int = MAX_SWEEP_NODES) -> list[Outcome]:
        # A sampler over value lists draws the same point again: its figures are computed once.
        seen: dict[tuple[Any, ...], Outcome] = {}
        out: list[Outcome] = []
        work = 0  # nodes expanded so far: the sweep's cost, whatever its count of points
        for done, values in enumerate(points):
            key = tuple((k, type(v), v) for k, v in values.items())
            if key not in seen:
                # Refused as soon as the points computed so far, at their mean size, project past the budget.
                if seen and work * len(points) > max_nodes * len(seen):
                    out += [_over_work(work, done)] * (len(points) - done)
                    break
                seen[key] = self.point(values)
                found = seen[key]
                work += found.figures.get("nodes", 0) if isinstance(found, Point) else 0
            found = seen[key]
            out.append(replace(found, values=values) if isinstance(found, Point) else found)
        return out

    def point(self, values: dict[str, Any]) -> Outcome:
        return evaluate(self.data, self.smap, self.variant, values, self.batch, self.input, self.budgets, self.calls,
                        self.memo, self.figures)


def _over_work(work: int, done: int) -> list[Diagnostic]:
    # A worker checks its share against its part of the budget: the message names the sweep's whole budget.
    return [Diagnostic("error", "E367", f"the sweep would expand to more than {MAX_SWEEP_NODES:,} nodes in all "
                       f"(its first {done:,} point(s): {work:,} nodes)", None,
                       hint="sweep fewer points (--sample N) or smaller members; a sweep is budgeted by its total "
                            "work, about 80 us a node")]


# Below this many points a sweep takes tens of milliseconds: starting processes would cost more.
MIN_POINTS_PER_WORKER = 8

# The job of the sweep being run by workers: set before they fork, which is how they receive it (the spec is
# not sent through a pipe), and cleared after.
_current: _Job | None = None


def _workers(jobs: int | None, points: int) -> int:
    import os
    import threading

    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1; received {jobs}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    wanted = min(jobs or cores, points // MIN_POINTS_PER_WORKER)
    # fork copies only the calling thread: with others running (a server, a notebook kernel) a lock one
    # of them holds would stay locked in the child forever.
    can_fork = hasattr(os, "fork") and threading.active_count() == 1
    return wanted if wanted > 1 and can_fork else 1


def _run_share(share: Sequence[dict[str, Any]], max_nodes: int = MAX_SWEEP_NODES) -> list[Outcome]:
    assert _current is not None, "a sweep worker runs only inside sweep()"
    return _current.run(share, max_nodes)


def _in_workers(job: _Job, points: list[dict[str, Any]], workers: int) -> list[Outcome]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    global _current
    # Interleaved shares: a grid grows along its last axis, so contiguous shares would be unequal.
    shares = [points[k::workers] for k in range(workers)]
    _current = job
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_run_share, shares, [MAX_SWEEP_NODES // workers] * workers))
    except (OSError, ImportError, BrokenProcessPool):
        # No worker could start (no semaphores in a sandbox, no memory to fork) or one died: this
        # process computes the points itself, as with jobs=1.
        return job.run(points)
    finally:
        _current = None
    # Share k holds points k, k + workers, k + 2 * workers, ...: point i is item i // workers of share i % workers.
    return [results[i % workers][i // workers] for i in range(len(points))]
