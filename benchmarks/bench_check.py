"""How fast is the check path?

Two measurements, each against a target:

(a) ``specdsl check vgg16`` as a whole process (interpreter start, imports,
    parse, analysis, table) — the median of N runs after a warm-up, next to
    the bare ``python -c pass`` start-up for context.          target ≤ 0.3 s
(b) ``specdsl.load(text)`` in process (parse + validate + build + analyse) on a
    generated 10,000-layer spec (conv/bn/relu repeated at [8, 32, 32], pad 1,
    so every shape stays valid)                                   target ≤ 1 s
    and on 20,000 layers; the ratio 20k/10k shows it scales linearly.
                                                                  target ≤ 2.2
    A breakdown by stage uses the internal functions the API chains together.

Run with the dev venv's interpreter (it finds the `specdsl` script next to it):

    .venv/bin/python benchmarks/bench_check.py [--runs 15] [--check] [--profile]

``--check`` exits 1 when a target is missed; ``--profile`` prints the hot spots
of one 10k-layer load (cProfile). The whole run takes well under two minutes.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import resource
except ImportError:  # pragma: no cover - not on Unix
    resource = None  # type: ignore[assignment]

TARGET_CLI_S = 0.3
TARGET_10K_S = 1.0
TARGET_RATIO = 2.2

PATTERN = ("  - conv: {out: 8, k: 3, pad: 1}", "  - bn", "  - relu")


def deep_spec(n_layers: int) -> str:
    """YAML text of an n-layer conv/bn/relu chain whose shapes all stay [8, 32, 32]."""
    lines = [f"model: deep{n_layers}", "input: [8, 32, 32]", "layers:"]
    lines += [PATTERN[i % len(PATTERN)] for i in range(n_layers)]
    return "\n".join(lines) + "\n"


def specdsl_command() -> list[str]:
    """The `specdsl` console script beside this interpreter, else `python -m specdsl`."""
    script = Path(sys.executable).parent / "specdsl"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("specdsl")
    if found and Path(found).parent == Path(sys.executable).parent:
        return [found]
    return [sys.executable, "-m", "specdsl"]


def _children_cpu() -> float:
    if resource is None:  # pragma: no cover - not on Unix
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_process(cmd: list[str], runs: int, warmup: int = 2) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds of `runs` executions of cmd, after `warmup` unmeasured ones."""
    walls, cpus = [], []
    for i in range(warmup + runs):
        c0, t0 = _children_cpu(), time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=False)
        elapsed, cpu = time.perf_counter() - t0, _children_cpu() - c0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.decode()}")
        if i >= warmup:
            walls.append(elapsed)
            cpus.append(cpu)
    return walls, cpus


def time_call(fn: Callable[[], Any], runs: int, verify: Callable[[Any], None]) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds of `runs` calls of fn, each from a collected heap with no earlier result alive."""
    walls, cpus = [], []
    for _ in range(runs):
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        verify(result)
        del result
    return walls, cpus


def full_collections(fn: Callable[[], Any]) -> tuple[int, float]:
    """(count, seconds) of generation-2 garbage collections during one call of fn."""
    count, spent, started = 0, 0.0, [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        nonlocal count, spent
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            count += 1
            spent += time.perf_counter() - started[0]

    gc.collect()
    gc.callbacks.append(callback)
    try:
        fn()
    finally:
        gc.callbacks.remove(callback)
    return count, spent


def without_gc(fn: Callable[[], Any]) -> Callable[[], Any]:
    def call() -> Any:
        gc.disable()
        try:
            return fn()
        finally:
            gc.enable()

    return call


def stage_times(text: str, runs: int) -> dict[str, float]:
    """Median seconds of each stage of specdsl.load on `text`."""
    # The stages specdsl.load chains together.
    from specdsl.blocks.engine import expand as build_graph
    from specdsl.frontend import yaml as yaml_front
    from specdsl.passes import analysis
    from specdsl.schema import document as schema

    acc: dict[str, list[float]] = {"load_yaml": [], "validate_doc": [], build_graph.__name__: [], "analyze": []}
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        data, smap = yaml_front.load_yaml(text, "<bench>")
        t1 = time.perf_counter()
        spec = schema.validate_document(data, smap)
        t2 = time.perf_counter()
        graph = build_graph(spec)
        t3 = time.perf_counter()
        result = analysis.analyze(graph)
        t4 = time.perf_counter()
        assert not result.diagnostics, result.diagnostics[:3]
        del data, smap, spec, graph, result
        for key, dt in zip(acc, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            acc[key].append(dt)
    return {key: statistics.median(v) for key, v in acc.items()}


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpus} cores (nproc), Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.system()} {platform.machine()}")


def revision(module_file: Path) -> str:
    """' at <commit>[-dirty]' when specdsl comes from a git checkout, else ''."""
    try:
        proc = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=module_file.parent,
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" at {proc.stdout.strip()}" if proc.returncode == 0 and proc.stdout.strip() else ""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="measured process runs for (a) (default 15)")
    parser.add_argument("--load-runs", type=int, default=5, help="measured in-process runs for (b) (default 5)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--profile", action="store_true", help="cProfile one 10k-layer load and print hot spots")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    print(f"machine: {machine()}")
    print(f"python:  {sys.executable}")
    import specdsl

    print(f"specdsl: {specdsl.__version__} from {Path(specdsl.__file__).parent}{revision(Path(specdsl.__file__))}")
    cmd = specdsl_command()
    print(f"command: {' '.join(cmd)} check vgg16\n")

    # (a) whole process
    bare, bare_cpu = time_process([sys.executable, "-c", "pass"], args.runs)
    cli, cli_cpu = time_process([*cmd, "check", "vgg16"], args.runs)
    cli_med = statistics.median(cli)
    print(f"(a) process wall time, median of {args.runs} after 2 warm-up runs (CPU time: user + sys of the child)")
    print(f"    python -c pass          {ms(statistics.median(bare))}   (min {ms(min(bare)).strip()}; "
          f"CPU {ms(statistics.median(bare_cpu)).strip()})")
    print(f"    specdsl check vgg16     {ms(cli_med)}   (min {ms(min(cli)).strip()}, max {ms(max(cli)).strip()}; "
          f"CPU {ms(statistics.median(cli_cpu)).strip()})")
    print(f"    specdsl's own share     {ms(cli_med - statistics.median(bare))}\n")
    busy = [cli_med / statistics.median(cli_cpu)]

    # (b) in process; a small load first so imports and first-use caches are not timed
    specdsl.load(deep_spec(30))
    texts = {n: deep_spec(n) for n in (10_000, 20_000)}
    loads: dict[int, float] = {}
    loads_cpu: dict[int, float] = {}
    loads_no_gc: dict[int, float] = {}
    collections: dict[int, tuple[int, float]] = {}
    stages: dict[int, dict[str, float]] = {}
    for n, text in texts.items():
        def verify(model: Any, n: int = n) -> None:
            assert len(model.graph.nodes) == n + 1 and not model.diagnostics, model

        def run(text: str = text) -> Any:
            return specdsl.load(text)

        walls, cpus = time_call(run, args.load_runs, verify)
        loads[n], loads_cpu[n] = statistics.median(walls), statistics.median(cpus)
        loads_no_gc[n] = statistics.median(time_call(without_gc(run), args.load_runs, verify)[0])
        busy.append(loads[n] / loads_cpu[n])
        collections[n] = full_collections(run)
        stages[n] = stage_times(text, max(3, args.load_runs // 2))
    ratio = loads[20_000] / loads[10_000]
    print(f"(b) specdsl.load(text) in process, median of {args.load_runs} (GC on, collected before each run)")
    print("    stages: frontend.yaml.load_yaml, schema.document.validate_document, blocks.engine.expand,"
          " passes.analysis.analyze")
    header = f"    {'stage':<14}" + "".join(f"{f'{n:,} layers':>14}" for n in texts)
    print(header)
    for key in stages[10_000]:
        print(f"    {key:<14}" + "".join(f"{ms(stages[n][key]):>14}" for n in texts))
    print(f"    {'sum of stages':<14}" + "".join(f"{ms(sum(stages[n].values())):>14}" for n in texts))
    print(f"    {'load() total':<14}" + "".join(f"{ms(loads[n]):>14}" for n in texts))
    print(f"    {'  CPU time':<14}" + "".join(f"{ms(loads_cpu[n]):>14}" for n in texts)
          + f"   ratio {loads_cpu[20_000] / loads_cpu[10_000]:.2f}")
    print(f"    {'full GCs':<14}" + "".join(
        f"{f'{collections[n][0]} = {collections[n][1] * 1000:.0f} ms':>14}" for n in texts))
    print(f"    {'load(), GC off':<14}" + "".join(f"{ms(loads_no_gc[n]):>14}" for n in texts)
          + f"   ratio {loads_no_gc[20_000] / loads_no_gc[10_000]:.2f} (the code's own scaling)")
    print(f"    spec text: {len(texts[10_000]):,} / {len(texts[20_000]):,} bytes\n")

    rows = [
        ("specdsl check vgg16 (process)", f"{cli_med:.3f} s", f"≤ {TARGET_CLI_S} s", cli_med <= TARGET_CLI_S),
        ("load() 10,000 layers", f"{loads[10_000]:.3f} s", f"≤ {TARGET_10K_S} s", loads[10_000] <= TARGET_10K_S),
        ("load() 20,000 layers", f"{loads[20_000]:.3f} s", "—", True),
        ("ratio 20k / 10k", f"{ratio:.2f}", f"≤ {TARGET_RATIO}", ratio <= TARGET_RATIO),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"results ({machine()}):")
    print(f"    {'measure':<{widths[0]}}  {'measured':>{widths[1]}}  {'target':<{widths[2]}}  status")
    for name, value, target, ok in rows:
        print(f"    {name:<{widths[0]}}  {value:>{widths[1]}}  {target:<{widths[2]}}  {'ok' if ok else 'MISSED'}")
    missed = [r[0] for r in rows if not r[3]]
    if max(busy) > 1.1:
        print(f"    warning: wall time exceeds CPU time by up to {max(busy) - 1:.0%}: the machine is busy, "
              "so these figures are inflated; rerun on a quiet machine")

    if args.profile:
        # GC off: collector pauses would be billed to whichever function happened to allocate.
        profiler = cProfile.Profile()
        gc.collect()
        gc.disable()
        profiler.enable()
        specdsl.load(texts[10_000])
        profiler.disable()
        gc.enable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print("\nhot spots of one 10k-layer load (cProfile, GC off, by own time):")
        print(out.getvalue().strip("\n"))

    print(f"\nbenchmark took {time.perf_counter() - started:.1f} s")
    if missed:
        print("targets missed: " + ", ".join(missed))
    return 1 if (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
