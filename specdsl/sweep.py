"""Design-space sweeps: the static figures of a model family over a grid of parameter values.

The lectures' grid search over widths and depths, done without training and without torch:
each point is the spec loaded with those parameter values (parsed once, then validated,
expanded and analysed per point), reported with its parameters, MACs, peak inference memory
and receptive field. A point is on the Pareto front when no other point is at least as good
in every figure (fewer parameters, fewer MACs, less memory, a larger receptive field) and
better in one.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specdsl.blocks.engine import expand_with_shapes
from specdsl.budgets import DEFAULT as DEFAULT_BUDGETS
from specdsl.budgets import Budgets
from specdsl.errors import Diagnostic, SpecError
from specdsl.passes.analysis import analyze
from specdsl.schema.document import validate_document
from specdsl.schema.params import ParamChoice

# Unknown variant or parameter, a value of the wrong kind, a parameter without a value.
PARAMETER_ERRORS = frozenset({"E360", "E361", "E362", "E363"})
# At most this many points: a grid is a product, and a typo (`--param d=1,...,1000`) should not run for hours.
MAX_POINTS = 10_000


@dataclass(frozen=True)
class Point:
    values: dict[str, Any]
    params: int | None = None
    macs: int | None = None
    peak_bytes: int | None = None
    rf: int | None = None  # the largest receptive-field side at the last spatial node
    error: str | None = None
    pareto: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def grid(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, in order (the last axis varies fastest)."""
    count = math.prod(len(v) for v in axes.values()) if axes else 1
    if count > MAX_POINTS:
        raise SpecError([Diagnostic("error", "E367", f"the sweep has {count:,} points, more than {MAX_POINTS:,}",
                                    None, hint="sweep fewer values per parameter")])
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))]


def sweep(source: Any, axes: Mapping[str, Sequence[Any]], *, variant: str | None = None, batch: int = 1,
          input: tuple[int, ...] | None = None, budgets: Budgets | None = None, jobs: int | None = None) -> list[Point]:
    """The figures of every point of the grid; a point the spec rejects carries its first error.

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
    data, smap = read_data(text, file, budgets)  # parsed once for the whole grid
    grid_values = grid(axes)
    job = _Job(data, smap, variant, batch, input, budgets)
    # Many small acyclic objects per point: the cyclic collector would only add pauses (as in load()).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        workers = _workers(jobs, len(grid_values))
        outcomes = _in_workers(job, grid_values, workers) if workers > 1 else job.run(grid_values)
    finally:
        if gc_was_enabled:
            gc.enable()

    points: list[Point] = []
    first_error: SpecError | None = None
    for values, outcome in zip(grid_values, outcomes):
        if isinstance(outcome, Point):
            points.append(outcome)
            continue
        error = SpecError(outcome, {file: text})
        first = error.errors[0] if error.errors else None
        if first is not None and first.code in PARAMETER_ERRORS:
            raise error  # a misspelt parameter or a value of the wrong kind: the grid itself is wrong
        first_error = first_error or error
        points.append(Point(values, error=f"{first.code}: {first.message}" if first else "rejected"))
    if first_error is not None and not any(p.ok for p in points):
        raise first_error  # no point loads: the spec itself is broken, say where
    return pareto(points)


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

    def run(self, grid_values: Sequence[dict[str, Any]]) -> list[Outcome]:
        return [self.point(values) for values in grid_values]

    def point(self, values: dict[str, Any]) -> Outcome:
        try:
            spec = validate_document(self.data, self.smap, ParamChoice(self.variant, values))
            if self.input is not None:
                spec.input = tuple(self.input)
            graph, shapes, rfs = expand_with_shapes(spec, max_nodes=self.budgets.max_nodes,
                                                    max_depth=self.budgets.max_depth)
            analysis = analyze(graph, batch=self.batch, shapes=shapes, rfs=rfs)
        except SpecError as exc:
            return list(exc.diagnostics)
        errors = [d for d in analysis.diagnostics if d.is_error]
        if errors:
            return errors
        t = analysis.totals
        rf = analysis.figures[t.rf_node].rf if t.rf_node is not None else None
        side = max((int(a.size) for a in rf), default=None) if rf else None
        return Point(values, t.params, t.macs, t.peak_bytes, side)


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


def _run_share(share: Sequence[dict[str, Any]]) -> list[Outcome]:
    assert _current is not None, "a sweep worker runs only inside sweep()"
    return _current.run(share)


def _in_workers(job: _Job, grid_values: list[dict[str, Any]], workers: int) -> list[Outcome]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    global _current
    # Interleaved shares: a grid grows along its last axis, so contiguous shares would be unequal.
    shares = [grid_values[k::workers] for k in range(workers)]
    _current = job
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_run_share, shares))
    except (OSError, ImportError, BrokenProcessPool):
        # No worker could start (no semaphores in a sandbox, no memory to fork) or one died: this
        # process computes the points itself, as with jobs=1.
        return job.run(grid_values)
    finally:
        _current = None
    outcomes: list[Outcome] = [None] * len(grid_values)  # type: ignore[list-item]
    for k, result in enumerate(results):
        outcomes[k::workers] = result
    return outcomes


def _dominates(a: Point, b: Point) -> bool:
    ka = (a.params, a.macs, a.peak_bytes, -(a.rf or 0))
    kb = (b.params, b.macs, b.peak_bytes, -(b.rf or 0))
    return all(x <= y for x, y in zip(ka, kb)) and ka != kb  # type: ignore[operator]


def pareto(points: list[Point]) -> list[Point]:
    """The points, each marked whether it is on the Pareto front (among the points that load)."""
    good = [p for p in points if p.ok]
    out = []
    for p in points:
        front = p.ok and not any(_dominates(q, p) for q in good if q is not p)
        out.append(Point(p.values, p.params, p.macs, p.peak_bytes, p.rf, p.error, front))
    return out
