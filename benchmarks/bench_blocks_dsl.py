"""Blocks and DSL speed: `check resnet152` in process and as a process; parsing a 1,000-layer DSL file.

    .venv/bin/python benchmarks/bench_blocks_dsl.py [--runs 21]

Targets: check resnet152 in process <= 20 ms and as a whole process <= 0.3 s; parsing a
1,000-layer DSL file <= 100 ms in process.
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

import specdsl
from specdsl.frontend.dsl import load_dsl, parser


def median_ms(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def dsl_text(layers: int) -> str:
    lines = ["model big", "input [8, 32, 32]", "", "layers {"]
    pattern = ["conv(8, k=3, pad=1, bias=false)", "bn", "relu"]
    chain: list[str] = []
    for i in range(layers):
        chain.append(pattern[i % 3])
        if len(chain) == 3:
            lines.append("    " + " -> ".join(chain))
            chain = []
    if chain:
        lines.append("    " + " -> ".join(chain))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}")
    parser()  # the LALR tables are built once per process (in memory; no disk cache)
    rows = []
    in_process = median_ms(lambda: specdsl.load("resnet152"), args.runs)
    rows.append(("check resnet152, in process (load: parse, expand, analyse)", in_process, "<= 20 ms"))
    exe = Path(sys.executable).with_name("specdsl")
    cmd = [str(exe), "check", "resnet152"] if exe.exists() else [sys.executable, "-m", "specdsl", "check",
                                                                  "resnet152"]
    whole = median_ms(lambda: subprocess.run(cmd, capture_output=True, check=True), max(5, args.runs // 2))
    rows.append(("specdsl check resnet152, whole process", whole, "<= 300 ms"))
    text = dsl_text(1000)
    parse = median_ms(lambda: load_dsl(text, "big.cnn"), args.runs)
    rows.append(("parse a 1,000-layer DSL file (load_dsl)", parse, "<= 100 ms"))
    full = median_ms(lambda: specdsl.load(text), args.runs)
    rows.append(("load the same file end to end (parse + check)", full, "—"))
    width = max(len(r[0]) for r in rows)
    for name, ms, target in rows:
        print(f"  {name:<{width}}  {ms:8.1f} ms   target {target}")


if __name__ == "__main__":
    main()
