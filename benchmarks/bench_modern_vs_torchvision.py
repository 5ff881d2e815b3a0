"""Generated modern CNNs vs torchvision's, on CPU, measured side by side.

The models whose lowerings are new in the "modern CNN vocabulary" round: EfficientNet-B0
(squeeze-and-excitation, SiLU, stochastic depth), ConvNeXt-T (permute, channels-last layer
norm and linear, layer scale, LayerNorm2d) and ShuffleNet V2 (chunk, channel shuffle). For
each, torchvision's model, ``to_torch`` (in memory) and the ``specdsl build`` source run in the
same process with the same weights, batch, input and thread count, forward (eval, no grad) and
forward+backward (train), interleaved round by round as in bench_torch_vs_torchvision.py; the
target is a ratio of at most 1.03. Three ratios are printed: of the medians, of the fastest runs,
and the median of the per-round ratios (each of our runs over torchvision's in the same round,
which cancels the drift of a shared machine's speed). A second copy of torchvision's model runs
as a control ("torchvision again"): its ratios are the noise floor of the measurement. On a
2-core machine `--threads 1` leaves a core to everything else and gives the steadier figures.

Needs the torchvision venv described in bench_torch_vs_torchvision.py, then:

    /work/tvenv/bin/python benchmarks/bench_modern_vs_torchvision.py [--models convnext_tiny ...] \\
        [--batch 8] [--threads 2] [--rounds 10]

A zoo model that does not exist yet is reported and skipped.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
from collections import defaultdict, deque
from collections.abc import Callable

import torch
import torchvision
from bench_torch_vs_torchvision import timed

import specdsl
from specdsl import zoo
from specdsl.backends.torch.emit import emit, load_emitted
from specdsl.backends.torch.fx import to_torch

MODELS = ("efficientnet_b0", "convnext_tiny", "shufflenet_v2_x1_0")
TARGET = 1.03
Step = Callable[[torch.Tensor], object]


def contenders(name: str) -> dict[str, torch.nn.Module]:
    """torchvision's model and both of ours, holding the same weights."""
    spec = specdsl.load(name)
    reference = getattr(torchvision.models, name)(weights=None)
    models = {"torchvision": reference, "torchvision again": copy.deepcopy(reference),
              "specdsl to_torch": to_torch(spec, seed=0)}
    try:
        models["specdsl build (emitted)"] = load_emitted(emit(spec))()
    except Exception as exc:  # a benchmark reports what it could not measure and goes on
        print(f"  specdsl build failed for {name}, measured without it: {type(exc).__name__}: {exc}")
    for label, dst in models.items():
        if label.startswith("specdsl"):
            copy_weights(reference, dst)
    return models


def copy_weights(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """src's tensors into dst, by position where their shapes agree in order.

    tests/test_zoo_reference.py holds the zoo to that, but a model may still be on its way
    there: then each of dst's tensors takes the first unused tensor of src of the same shape,
    which pairs them correctly when only the place of some tensors differs (the outputs,
    compared in `bench`, show whether it did).
    """
    theirs = list(src.state_dict().values())
    keys = list(dst.state_dict())
    if [tuple(t.shape) for t in dst.state_dict().values()] == [tuple(t.shape) for t in theirs]:
        dst.load_state_dict(dict(zip(keys, theirs, strict=True)))
        return
    print(f"  note: {type(dst).__name__}'s state_dict differs in order from torchvision's; paired by shape")
    queues: dict[tuple[int, ...], deque[torch.Tensor]] = defaultdict(deque)
    for t in theirs:
        queues[tuple(t.shape)].append(t)
    dst.load_state_dict({k: queues[tuple(t.shape)].popleft() for k, t in dst.state_dict().items()})


def forward(m: torch.nn.Module) -> Step:
    def run(x: torch.Tensor) -> object:
        with torch.no_grad():
            return m(x)
    return run


def train_step(m: torch.nn.Module) -> Step:
    def run(x: torch.Tensor) -> None:
        m(x).square().mean().backward()
        m.zero_grad(set_to_none=True)
    return run


def interleaved(steps: dict[str, Step], x: torch.Tensor, rounds: int) -> dict[str, list[float]]:
    """Seconds per step, every round; who goes first rotates each round."""
    for fn in steps.values():
        fn(x)
        fn(x)
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for r in range(rounds):
        shift = r % len(order)
        for name in order[shift:] + order[:shift]:
            times[name].append(timed(steps[name], x))
    return times


def bench(name: str, args: argparse.Namespace) -> list[tuple[str, str, float, float, float]]:
    models = contenders(name)
    reference = models["torchvision"]
    x = torch.randn(args.batch, 3, args.size, args.size)
    print(f"{name}:")
    with torch.no_grad():
        ref_out = reference.eval()(x)
        for label, m in models.items():
            if m is not reference:
                diff = (m.eval()(x) - ref_out).abs().max().item()
                print(f"  max |{label} - torchvision| on the same weights: {diff:.2e}")
    ratios = []
    for mode, make, train in (("forward", forward, False), ("forward+backward", train_step, True)):
        times = interleaved({label: make(m.train(train)) for label, m in models.items()}, x, args.rounds)
        base, best = statistics.median(times["torchvision"]), min(times["torchvision"])
        print(f"  {mode}:")
        for label, ts in times.items():
            med = statistics.median(ts)
            paired = statistics.median(t / b for t, b in zip(ts, times["torchvision"]))
            print(f"    {label:<26} median {med * 1e3:8.1f} ms   ratio {med / base:.3f}   "
                  f"fastest {min(ts) * 1e3:8.1f} ms   ratio {min(ts) / best:.3f}   per-round ratio {paired:.3f}")
            if label != "torchvision":
                ratios.append((mode, label, med / base, min(ts) / best, paired))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}, threads {args.threads}, batch {args.batch}, "
          f"input 3x{args.size}x{args.size}, {args.rounds} rounds")
    summary: list[tuple[str, str, str, float, float, float]] = []
    for name in args.models:
        if name not in zoo.all_names():
            print(f"{name}: not in the zoo yet, skipped")
            continue
        summary += [(name, *row) for row in bench(name, args)]
    print(f"\nsummary: time / torchvision's: of medians, of the fastest runs, median per-round ratio "
          f"(target <= {TARGET}; 'torchvision again' is the noise floor):")
    for name, mode, label, ratio, fastest, paired in summary:
        status = "" if label == "torchvision again" else "ok" if paired <= TARGET else "OVER"
        print(f"  {name:<20} {mode:<17} {label:<26} {ratio:.3f}  {fastest:.3f}  {paired:.3f}  {status}")


if __name__ == "__main__":
    main()
