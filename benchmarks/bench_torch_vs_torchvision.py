"""Generated resnet50 vs torchvision's resnet50 on CPU, measured side by side.

Needs a venv with torchvision (it cannot import beside the pinned test torch):

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1 \\
        pyyaml pydantic 'lark[interegular]' numpy && /tmp/tv/bin/pip install --no-deps -e .
    /tmp/tv/bin/python benchmarks/bench_torch_vs_torchvision.py [--batch 8] [--threads 2] [--rounds 15]

All models run in the same process, interleaved round by round (the first to run rotates),
with the same weights, batch, input and thread count; the ratio is of medians.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torchvision

import specdsl
from specdsl.backends.torch.emit import emit, load_emitted
from specdsl.backends.torch.fx import to_torch


def timed(fn, x) -> float:
    start = time.perf_counter()
    fn(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = specdsl.load(args.model)
    ours = to_torch(spec, seed=0)
    emitted = load_emitted(emit(spec))()
    reference = getattr(torchvision.models, args.model)(weights=None)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    # Same weights everywhere (shapes agree key by key in order).
    for dst in (ours, emitted):
        dst.load_state_dict(dict(zip(dst.state_dict(), reference.state_dict().values(), strict=True)))
    x = torch.randn(args.batch, 3, args.size, args.size)
    models = {"torchvision": reference, "specdsl to_torch": ours, "specdsl build (emitted)": emitted}

    def forward(m):
        def run(inp):
            with torch.no_grad():
                return m(inp)
        return run

    def train_step(m):
        def run(inp):
            out = m(inp)
            out.square().mean().backward()
            m.zero_grad(set_to_none=True)
        return run

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}, threads {args.threads}, batch {args.batch}, "
          f"input 3x{args.size}x{args.size}")
    with torch.no_grad():
        ref_out = reference.eval()(x)
        for name, m in models.items():
            if m is not reference:
                diff = (m.eval()(x) - ref_out).abs().max().item()
                print(f"  max |{name} - torchvision| on the same weights: {diff:.2e}")
    for mode, make, train in (("forward (eval)", forward, False), ("forward+backward (train)", train_step, True)):
        fns = {name: make(m.train(train)) for name, m in models.items()}
        for fn in fns.values():
            fn(x)
            fn(x)
        times: dict[str, list[float]] = {name: [] for name in fns}
        order = list(fns)
        for r in range(args.rounds):
            # Rotate who goes first each round, so no model always runs in the same position.
            shift = r % len(order)
            for name in order[shift:] + order[:shift]:
                times[name].append(timed(fns[name], x))
        base = statistics.median(times["torchvision"])
        print(f"{mode}:")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"  {name:<26} median {med * 1e3:8.1f} ms   ratio {med / base:.3f}")


if __name__ == "__main__":
    main()
