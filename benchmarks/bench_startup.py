"""Start-up: `specdsl check` as a whole process, beside torchinfo's summary of torchvision's resnet50.

Three whole processes, each run N times after a warm-up, interleaved so that a busy spell of the
machine slows all of them alike:

(a) ``specdsl check vgg16``                                                   target <= 0.15 s
(b) ``specdsl check resnet50``
(c) torchinfo's ``summary(torchvision.models.resnet50(), input_size=(1, 3, 224, 224))``, what a
    PyTorch user runs for the same table (shapes, parameters, MACs)     target: (c) / (b) >= 30

Beside them, ``python -c pass`` and a process that imports lark and loads the DSL's packaged parse
tables (what `check` of a .cnn spec cannot do without; a valid spec no longer imports pydantic:
specdsl/ops/model.py): the floor under (a).

(c) needs an interpreter with torch, torchvision and torchinfo (torchvision cannot be installed
beside the CPU torch of the dev venv): ``--torchinfo-python PATH`` (default: $TORCHINFO_PYTHON,
else /work/tvenv/bin/python); without one, (c) is skipped and said so. The best (min) and the
median of wall-clock seconds are printed, and each process's CPU seconds (user + system), which
a loaded machine inflates less than wall time. Also printed: what importing `specdsl.cli.main`
and the check path cost (``python -X importtime``).

    .venv/bin/python benchmarks/bench_startup.py [--runs 10] [--check]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

try:
    import resource
except ImportError:  # pragma: no cover - not on Unix
    resource = None  # type: ignore[assignment]

sys.path.insert(0, str(Path(__file__).parent))
from bench_check import specdsl_command

TARGET_VGG16_S = 0.15
TARGET_RATIO = 30.0
# Import lark (as the console script does: without interegular) and load the DSL's parse tables.
DEPENDENCIES = ("import sys\nsys.modules['interegular'] = None\n"
                "from specdsl.frontend.dsl_parser import parser\nparser()")
TORCHINFO = ("import torchinfo, torchvision; "
             "torchinfo.summary(torchvision.models.resnet50(), input_size=(1, 3, 224, 224), device='cpu')")


def _children_cpu() -> float:
    if resource is None:  # pragma: no cover
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of cmd, which must succeed."""
    c0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False, env=env)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return wall, cpu


def torchinfo_python(given: str | None) -> str | None:
    for path in (given, os.environ.get("TORCHINFO_PYTHON"), "/work/tvenv/bin/python"):
        if path and Path(path).is_file():
            probe = subprocess.run([path, "-c", "import torchinfo, torchvision"], capture_output=True, check=False)
            if probe.returncode == 0:
                return path
    return None


def import_ms(module: str) -> float:
    """Cumulative microseconds -> ms that `python -X importtime -c 'import module'` reports for it (min of 5)."""
    best = float("inf")
    for _ in range(5):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                              capture_output=True, text=True, check=True)
        last = [ln for ln in done.stderr.splitlines() if ln.rstrip().endswith(f"| {module}")]
        best = min(best, int(last[-1].split("|")[1]) / 1000)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="measured runs of each specdsl process")
    ap.add_argument("--torchinfo-runs", type=int, default=3, help="measured runs of the torchinfo process")
    ap.add_argument("--torchinfo-python", help="an interpreter with torch, torchvision and torchinfo")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()

    specdsl = specdsl_command()
    # .pyc files as an installed wheel has them: the warm-up run writes any that are missing or stale
    # (a source file edited since), so no measured run compiles Python source.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    tv = torchinfo_python(args.torchinfo_python)
    cases: dict[str, list[str]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        # What any check of a .cnn spec needs before its own work: lark and the parser.
        "lark + parse tables floor": [sys.executable, "-c", DEPENDENCIES],
        "specdsl check vgg16": [*specdsl, "check", "vgg16"],
        "specdsl check resnet50": [*specdsl, "check", "resnet50"],
    }
    if tv:
        cases["torchinfo summary(resnet50)"] = [tv, "-c", TORCHINFO]
    for cmd in cases.values():  # warm-up: the file cache, .pyc files
        once(cmd, env)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for i in range(args.runs):
        for name, cmd in cases.items():
            if name.startswith("torchinfo") and i >= args.torchinfo_runs:
                continue
            results[name].append(once(cmd, env))

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; Python {platform.python_version()}")
    print(f"specdsl: {' '.join(specdsl)}; torchinfo side: {tv or 'skipped (no interpreter with torchinfo)'}")
    print(f"{'whole process':32} {'min s':>8} {'median s':>9} {'CPU min s':>10} {'runs':>5}")
    best: dict[str, float] = {}
    for name, rows in results.items():
        walls, cpus = [w for w, _ in rows], [c for _, c in rows]
        best[name] = min(walls)
        print(f"{name:32} {min(walls):8.3f} {statistics.median(walls):9.3f} {min(cpus):10.3f} {len(rows):5d}")
    print(f"import specdsl.cli.main: {import_ms('specdsl.cli.main'):.0f} ms; "
          f"import specdsl.cli.check: {import_ms('specdsl.cli.check'):.0f} ms")

    ok = best["specdsl check vgg16"] <= TARGET_VGG16_S
    print(f"\n(a) check vgg16: {best['specdsl check vgg16']:.3f} s (target <= {TARGET_VGG16_S} s) "
          f"{'ok' if ok else 'MISSED'}")
    if tv:
        ratio = best["torchinfo summary(resnet50)"] / best["specdsl check resnet50"]
        print(f"(b) torchinfo summary(resnet50) {best['torchinfo summary(resnet50)']:.2f} s vs specdsl check "
              f"resnet50 {best['specdsl check resnet50']:.3f} s: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x) "
              f"{'ok' if ratio >= TARGET_RATIO else 'MISSED'}")
        ok = ok and ratio >= TARGET_RATIO
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
