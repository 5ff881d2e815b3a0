"""How fast is `specdsl diagram`?

(a) ``specdsl diagram resnet152 -o OUT.svg`` (the default collapsed view) as a whole
    process: interpreter start, imports, parse, analysis, DOT text, and Graphviz's `dot`
    rendering the SVG — the median of N runs after a warm-up.           target ≤ 2 s
(b) For context, in process: ``specdsl.load``, ``diagram.to_dot`` and ``dot`` alone, for
    resnet152 collapsed and expanded and densenet201 expanded (the largest zoo graphs).

Run with the dev venv's interpreter (it finds the `specdsl` script next to it):

    .venv/bin/python benchmarks/bench_diagram.py [--runs 10] [--check]

``--check`` exits 1 when the target is missed. Needs Graphviz (`apt-get install graphviz`).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 2.0


def specdsl_command() -> list[str]:
    """The `specdsl` console script beside this interpreter, else `python -m specdsl`."""
    script = Path(sys.executable).parent / "specdsl"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "specdsl"]


def time_process(cmd: list[str], runs: int, warmup: int = 1) -> list[float]:
    walls = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.decode()}")
        if i >= warmup:
            walls.append(elapsed)
    return walls


def best_of(fn, runs: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="measured process runs for (a) (default 10)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args(argv)
    if shutil.which("dot") is None:
        print("Graphviz's `dot` is not installed: apt-get install graphviz (or brew / conda)", file=sys.stderr)
        return 2
    import specdsl
    from specdsl.render.dot import to_dot
    from specdsl.render.graphviz import render

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    version = subprocess.run(["dot", "-V"], capture_output=True, text=True, check=False).stderr.strip()
    print(f"machine: {cpus} cores, Python {platform.python_version()}, {platform.system()} {platform.machine()}")
    print(f"specdsl: {specdsl.__version__} from {Path(specdsl.__file__).parent}; {version}")

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "resnet152.svg")
        cmd = [*specdsl_command(), "diagram", "resnet152", "-o", out]
        walls = time_process(cmd, args.runs)
        bare = statistics.median(time_process([sys.executable, "-c", "pass"], args.runs))
        size = Path(out).stat().st_size
    median = statistics.median(walls)
    ok = median <= TARGET_S
    print(f"\n(a) {' '.join(cmd[-4:])}, whole process, median of {args.runs}:")
    print(f"    {median:.3f} s (min {min(walls):.3f}, max {max(walls):.3f}; SVG {size:,} bytes; "
          f"bare `python -c pass` {bare * 1000:.0f} ms)   target ≤ {TARGET_S:g} s: {'ok' if ok else 'MISSED'}")

    print("\n(b) in process, best of 3:")
    print(f"    {'view':<28} {'nodes':>6} {'load':>9} {'to_dot':>9} {'dot -Tsvg':>10}")
    for name, expand in (("resnet152", 0), ("resnet152", None), ("densenet201", None)):
        t_load, model = best_of(lambda name=name: specdsl.load(name))
        t_dot, text = best_of(lambda model=model, expand=expand: to_dot(model, expand=expand))
        t_render, _ = best_of(lambda text=text: render(text, "svg"), runs=1)
        view = f"{name} --expand {'all' if expand is None else 'none'}"
        print(f"    {view:<28} {len(model.graph.nodes):>6} {t_load * 1000:>6.0f} ms {t_dot * 1000:>6.0f} ms "
              f"{t_render * 1000:>7.0f} ms")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
