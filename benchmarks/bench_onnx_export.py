"""`specdsl export -o model.onnx` as a whole process: the ONNX backend beside `--via torch`.

Targets (issue 27): resnet50 with weights under 1 s and convnext_tiny under 2 s, each a whole
`specdsl export` process (Python's start, imports, parsing, weights, writing the file). Each model's
checkpoint is written first (NumPy's seeded random weights as .safetensors) and both routes load
it with --weights, with the same flags (--batch 1: torch.onnx's dynamic batch fails on ConvNeXt's
LayerNorm permutes, seen with torch 2.13, so the comparison fixes the batch). Wall-clock is the best of --runs runs
(the median beside it), CPU the children's user + system time of that run; torch.onnx runs
--torch-runs times (it takes tens of seconds). The ratio is torch's best over ours. A yardstick
row, `specdsl check lenet5` (0.25-0.3 s on a quiet machine), shows how busy the machine is.

    .venv/bin/python benchmarks/bench_onnx_export.py                  # both routes, both models
    .venv/bin/python benchmarks/bench_onnx_export.py --torch-runs 0   # the ONNX backend alone
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"resnet50": 1.0, "convnext_tiny": 2.0}


def write_checkpoint(model_name: str, path: Path) -> int:
    """NumPy's random weights for the model as .safetensors; the number of tensors."""
    import numpy as np
    from safetensors.numpy import save_file

    import specdsl
    from specdsl.backends.numpy.weights import random_weights

    weights = random_weights(specdsl.load(model_name, warn=False), 0, "float32")
    save_file({k: np.array(v, order="C") for k, v in weights.items()}, str(path))
    return len(weights)


def run_once(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(argv: list[str], runs: int) -> tuple[float, float, float]:
    """(best wall, median wall, CPU of the best run)."""
    results = [run_once(argv) for _ in range(runs)]
    best = min(results)
    return best[0], statistics.median(r[0] for r in results), best[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(TARGETS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--torch-runs", type=int, default=1)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'model':<14} {'route':<16} {'best s':>8} {'median s':>9} {'CPU s':>7} {'target':>7}  verdict")
    failed = False
    yardstick = measure([sys.executable, "-m", "specdsl", "check", "lenet5"], args.runs)
    print(f"{'lenet5':<14} {'check':<16} {yardstick[0]:8.3f} {yardstick[1]:9.3f} {yardstick[2]:7.3f}"
          f" {'':>7}  yardstick")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            ckpt = Path(folder) / f"{name}.safetensors"
            tensors = write_checkpoint(name, ckpt)
            base = [sys.executable, "-m", "specdsl", "export", name, "--weights", str(ckpt), "--batch", "1"]
            ours = measure([*base, "-o", str(Path(folder) / f"{name}.onnx")], args.runs)
            target = TARGETS.get(name)
            ok = target is None or ours[0] < target
            failed |= not ok
            verdict = "" if target is None else "ok" if ok else "OVER"
            print(f"{name:<14} {'onnx backend':<16} {ours[0]:8.3f} {ours[1]:9.3f} {ours[2]:7.3f} "
                  f"{target or '':>7}  {verdict}  ({tensors} tensors)")
            if args.torch_runs:
                theirs = measure([*base, "--via", "torch", "-o", str(Path(folder) / f"{name}_torch.onnx")],
                                 args.torch_runs)
                print(f"{name:<14} {'--via torch':<16} {theirs[0]:8.3f} {theirs[1]:9.3f} {theirs[2]:7.3f} "
                      f"{'':>7}  torch/ours: wall {theirs[0] / ours[0]:.1f}x, CPU {theirs[2] / ours[2]:.1f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
