"""NumPy reference backend vs PyTorch CPU eager: forward time and peak memory.

    .venv/bin/python benchmarks/bench_numpy.py                      # resnet50, batch 1, 3x224x224, 1 thread
    .venv/bin/python benchmarks/bench_numpy.py --threads 2 --rounds 9

Each measurement runs in a fresh worker process with OMP/MKL/OPENBLAS threads
and ``torch.set_num_threads`` all set to ``--threads``, so the two libraries'
thread pools never share a process (an idle pool that spins would slow the
other). Workers alternate (numpy, torch, numpy, torch, ...) so load from other
jobs on the machine hits both alike; each worker warms up, then times
``--repeats`` forwards and reports its median; the figure is the median over
``--rounds`` workers. Memory: tracemalloc's peak of one NumPy forward (NumPy
reports its buffers to tracemalloc), and the worker's max RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args: argparse.Namespace) -> None:
    import resource
    import tracemalloc

    import numpy as np

    import specdsl

    model = specdsl.load(args.model, input=args.input)
    x = np.random.default_rng(0).standard_normal((args.batch, *model.graph.input_shape), dtype=np.float32)
    result: dict[str, object] = {"backend": args.worker, "dtype": args.dtype}
    if args.worker == "numpy":
        from specdsl.backends.numpy import to_numpy

        net = to_numpy(model, dtype=args.dtype)
        xs = x.astype(args.dtype)
        for _ in range(args.warmup):
            net(xs)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            net(xs)
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        net(xs)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["peak_traced_bytes"] = peak
    else:
        import torch

        from specdsl.backends.torch.fx import to_torch

        torch.set_num_threads(args.threads)
        module = to_torch(model).to(getattr(torch, args.dtype)).eval()
        xt = torch.from_numpy(x).to(getattr(torch, args.dtype))
        times = []
        with torch.inference_mode():
            for _ in range(args.warmup):
                module(xt)
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                module(xt)
                times.append(time.perf_counter() - t0)
    result["median_s"] = statistics.median(times)
    result["min_s"] = min(times)
    result["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


def spawn(args: argparse.Namespace, backend: str, dtype: str) -> dict[str, object]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    cmd = [sys.executable, __file__, "--worker", backend, "--dtype", dtype, "--model", args.model,
           "--batch", str(args.batch), "--threads", str(args.threads), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup)]
    if args.input:
        cmd += ["--input", ",".join(map(str, args.input))]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--input", type=lambda s: tuple(int(v) for v in s.split(",")), default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7, help="worker processes per backend (median over them)")
    p.add_argument("--repeats", type=int, default=5, help="timed forwards per worker (its median)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-fp64", action="store_true", help="skip the float64 figures")
    p.add_argument("--worker", choices=("numpy", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    load = os.getloadavg()[0]
    runs: dict[tuple[str, str], list[dict[str, object]]] = {}
    plan = [("numpy", "float32"), ("torch", "float32")]
    if not args.no_fp64:
        plan += [("numpy", "float64"), ("torch", "float64")]
    for r in range(args.rounds):
        for backend, dtype in plan:
            res = spawn(args, backend, dtype)
            runs.setdefault((backend, dtype), []).append(res)
            print(f"round {r + 1}/{args.rounds} {backend:5s} {dtype}: {res['median_s'] * 1e3:8.1f} ms",
                  file=sys.stderr)

    def med(backend: str, dtype: str, key: str = "median_s") -> float:
        return statistics.median(float(x[key]) for x in runs[(backend, dtype)])  # type: ignore[arg-type]

    print(f"\n{args.model}, batch {args.batch}, input {args.input or 'default'}, {args.threads} thread(s), "
          f"median of {args.rounds} workers x {args.repeats} forwards; load average at start {load:.2f}\n")
    print("| measure | NumPy | PyTorch eager | NumPy / PyTorch |")
    print("|---|---:|---:|---:|")
    for dtype in ("float32", "float64") if not args.no_fp64 else ("float32",):
        n, t = med("numpy", dtype), med("torch", dtype)
        print(f"| forward, {dtype} | {n * 1e3:.1f} ms | {t * 1e3:.1f} ms | **{n / t:.2f}** |")
    for dtype in ("float32", "float64") if not args.no_fp64 else ("float32",):
        traced = med("numpy", dtype, "peak_traced_bytes") / 2**20
        rss_n = med("numpy", dtype, "max_rss_bytes") / 2**20
        rss_t = med("torch", dtype, "max_rss_bytes") / 2**20
        print(f"| peak traced NumPy memory in one forward, {dtype} | {traced:.0f} MiB | | |")
        print(f"| worker max RSS, {dtype} | {rss_n:.0f} MiB | {rss_t:.0f} MiB | |")


if __name__ == "__main__":
    main()
