"""How fast are model families?

Three measurements, each against a target (issue: model families and the whole zoo):

(a) ``specdsl check regnet_y_128gf`` as a whole process (a variant of a family file: interpreter
    start, imports, finding the variant, parse, expansion, analysis, table)      target ≤ 0.3 s
(b) every torchvision model of the zoo (the reference file's names that load) checked in one
    process, in sequence                                                           target ≤ 5 s
(c) a 100-point sweep of the EfficientNet family (width × depth), in process,
    with its worker processes (one per core), and (c') with none                  target ≤ 2 s

    .venv/bin/python benchmarks/bench_families.py [--runs 7] [--check]

``--check`` exits 1 when a target is missed. Medians of interleaved runs; the machine is noisy.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "torchvision_cnns.json"


def specdsl_command() -> list[str]:
    script = Path(sys.executable).with_name("specdsl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "specdsl"]


def process_seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    import specdsl
    from specdsl import zoo
    from specdsl.sweep import sweep

    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
          f"specdsl from {Path(specdsl.__file__).parent}")
    results = []

    # pip compiles a package's bytecode when it installs it; an editable checkout is compiled on first
    # import unless PYTHONDONTWRITEBYTECODE is set (as on some CI and dev machines), and then every start
    # compiles the whole package again. Compile it here as pip would, so (a) measures a user's start.
    for package in {Path(specdsl.__file__).parent, ROOT / "backends", ROOT / "grammars"}:
        if package.is_dir():
            compileall.compile_dir(package, quiet=1)

    name = "regnet_y_128gf" if zoo.find_variant("regnet_y_128gf") or zoo.find("regnet_y_128gf") else "resnet152"
    argv = [*specdsl_command(), "check", name]
    process_seconds(argv)  # warm-up: file system caches, .pyc files
    times = [process_seconds(argv) for _ in range(args.runs)]
    bare = statistics.median(process_seconds([sys.executable, "-c", "pass"]) for _ in range(args.runs))
    results.append((f"(a) specdsl check {name}, whole process", statistics.median(times), 0.3,
                    f"python -c pass alone: {bare:.3f} s"))
    # A user's install has no interegular (a dev-only package: with it importable, lark checks every
    # pair of terminals for collisions each time it builds the parser).
    user = [sys.executable, "-c", "import sys; sys.modules['interegular'] = None; "
            f"from specdsl.cli.main import entry; sys.argv = ['specdsl', 'check', {name!r}]; entry()"]
    process_seconds(user)
    user_times = [process_seconds(user) for _ in range(args.runs)]
    results.append(("(a') the same as a user's install runs it (no interegular)", statistics.median(user_times),
                    0.3, ""))

    names = sorted(json.loads(REFERENCE.read_text())["models"])
    loadable = [n for n in names if n in zoo.all_names()]
    start = time.perf_counter()
    for n in loadable:
        specdsl.load(n, warn=False)
    results.append((f"(b) check {len(loadable)} of the {len(names)} torchvision models in one process",
                    time.perf_counter() - start, 5.0, f"{len(names) - len(loadable)} not in the zoo yet"))

    family = "efficientnet_b0" if "efficientnet_b0" in zoo.all_names() else None
    if family is not None:
        widths = [0.5 + 0.1 * i for i in range(10)]
        depths = [0.8 + 0.2 * i for i in range(10)]
        sweep(family, {"width": widths[:2], "depth": depths[:1]})  # warm-up
        for jobs, label in ((None, "(c) sweep of {}'s family, {} points (a worker per core)"),
                            (1, "(c') the same in one process (--jobs 1)")):
            times = []
            for _ in range(3):
                start = time.perf_counter()
                points = sweep(family, {"width": widths, "depth": depths}, jobs=jobs)
                times.append(time.perf_counter() - start)
            elapsed = statistics.median(times)
            ok = sum(p.ok for p in points)
            results.append((label.format(family, len(points)), elapsed, 2.0,
                            f"{ok} loaded, {sum(p.pareto for p in points)} on the Pareto front"))

    missed = 0
    for label, seconds, target, note in results:
        status = "ok" if seconds <= target else "MISSED"
        missed += status != "ok"
        print(f"{label}: {seconds:.3f} s (target ≤ {target} s) [{status}]  {note}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
