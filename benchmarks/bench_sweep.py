"""Sweep speed: points per second per core on the EfficientNet and ResNet families, this checkout
beside baseline commits, in one run.

    .venv/bin/python benchmarks/bench_sweep.py [--baseline REV ...] [--runs 3]

Each baseline (default: 09ec154, the sweep before issue 28's item 4; b448066, the sweep before
the design-space search work, no longer reads these specs' quoted names; ``--baseline`` again
for more columns) is checked out into a git worktree under the temporary folder (``git worktree
add --detach``; nothing in this checkout is touched) and measured in a child process importing
that tree; this checkout is measured in another child, family by family, in turn. All sweep the
same spec files (this checkout's ``specs/``) with ``jobs=1``, so the figure is CPU seconds of
one core per point (``time.process_time``), the best of ``--runs`` after a warm-up; the speed-up
is over the last baseline that reads the spec (one that cannot, such as 09ec154 for resnet's
``if bottleneck { } else { }``, shows n/a). Each child also prints a digest of every point's
parameters, MACs and peak memory; the digests must match (the figures of every point are identical; the receptive
field is left out, its definition changed: the local field now, not "whole input").
Target (issue 28): 500 points/s per core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "09ec154"
TARGET = 500.0
CASES = {
    # The example, widened: 5 x 5 x 4 = 100 points.
    "efficientnet": {"width": ["1.0", "1.1", "1.2", "1.3", "1.4"], "depth": ["1.0", "1.2", "1.4", "1.6", "1.8"],
                     "resolution": ["224", "240", "260", "280"]},
    # Stage depths of the bottleneck ResNet: 3 x 8 x 12 = 288 points.
    "resnet": {"n1": [str(n) for n in range(1, 4)], "n2": [str(n) for n in range(1, 9)],
               "n3": [str(n) for n in range(1, 13)]},
}

CHILD = r"""
import hashlib, json, sys, time
from specdsl.schema.params import TextValue
from specdsl.sweep import sweep
spec, axes, runs = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
axes = {k: [TextValue(v) for v in vs] for k, vs in axes.items()}
points = sweep(spec, axes, jobs=1)  # warm-up: imports, parse tables, caches of the first run
best = None
for _ in range(runs):
    start = time.process_time()
    points = sweep(spec, axes, jobs=1)
    spent = time.process_time() - start
    best = spent if best is None else min(best, spent)
rows = [(sorted((k, str(v)) for k, v in p.values.items()), p.params, p.macs, p.peak_bytes) for p in points]
print(json.dumps({"points": len(points), "seconds": best,
                  "digest": hashlib.sha256(repr(rows).encode()).hexdigest()[:16]}))
"""


def worktree(rev: str) -> Path:
    """A checkout of ``rev`` beside this one (made once, reused)."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"specdsl-bench-{sha}"
    if not (path / "specdsl").is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=ROOT, check=True,
                       capture_output=True)
    return path


def measure(tree: Path, spec: Path, axes: dict[str, list[str]], runs: int) -> dict[str, Any] | None:
    """The child's figures, or None where that tree cannot read the spec (a baseline older than the syntax
    the spec now uses: 09ec154 does not parse resnet's `if bottleneck { } else { }`)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(spec), json.dumps(axes), str(runs)], cwd=tree, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        if tree == ROOT:
            raise RuntimeError(f"this checkout fails on {spec.name}:\n{done.stderr}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="append", help=f"a commit to compare with (default {BASELINE}); "
                        "repeat it for more")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    revs = args.baseline or [BASELINE]
    trees = [worktree(rev) for rev in revs]
    print(f"baselines {', '.join(f'{r} in {t}' for r, t in zip(revs, trees))}; this checkout {ROOT}; "
          f"{os.cpu_count()} cores; jobs=1")
    print(f"{'family':<14}{'points':>7}" + "".join(f"  {r + ' pts/s':>15}" for r in revs)
          + f"  {'now pts/s':>10}  {'speed-up':>8}  figures")
    missed = False
    for family, axes in CASES.items():
        spec = ROOT / "specs" / f"{family}.cnn"
        olds = [measure(tree, spec, axes, args.runs) for tree in trees]
        new = measure(ROOT, spec, axes, args.runs)
        assert new is not None
        # None: that baseline cannot read the spec (shown as n/a; the speed-up is over the last that can).
        rates = [None if r is None else int(r["points"]) / float(r["seconds"]) for r in olds]
        rate_new = int(new["points"]) / float(new["seconds"])
        same = "identical" if all(r["digest"] == new["digest"] for r in olds if r is not None) else "DIFFER"
        missed |= rate_new < TARGET or same != "identical"
        last = next((r for r in reversed(rates) if r is not None), None)
        print(f"{family:<14}{new['points']:>7}" + "".join(f"  {'n/a' if r is None else f'{r:.0f}':>15}" for r in rates)
              + f"  {rate_new:>10.0f}  {'-' if last is None else f'{rate_new / last:.1f}x':>8}  {same}")
    print(f"target: {TARGET:.0f} points/s per core — {'missed' if missed else 'met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
