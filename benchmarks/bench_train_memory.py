"""Predicted against measured memory of one training step on a CUDA GPU (issue 15).

For each model, fp32 and bf16 autocast: the generated module, cudnn.benchmark on, SGD without
momentum, cross-entropy on random labels; three steps, and the peak of the third
(``torch.cuda.max_memory_allocated``) minus the memory held before it (parameters and buffers;
the batch is made inside the step), against ``Model.train_memory`` (its peak minus the same).

    python benchmarks/bench_train_memory.py [--batch 64] [--zoo] [MODEL ...]

Without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import sys

MiB = 1 << 20
DEFAULT = ("resnet50", "mobilenet_v2", "densenet121")


def measure(name: str, batch: int, amp: str | None) -> tuple[float, float]:
    import torch

    import specdsl
    from specdsl.backends.torch.fx import to_torch

    model = specdsl.load(name, batch=batch)
    module = to_torch(model, seed=0).cuda().train()
    opt = torch.optim.SGD(module.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")
    out_features = model.analysis.figures[model.graph.output].shape[0]

    def step() -> None:
        x = torch.randn((batch, *model.graph.input_shape), device="cuda")
        y = torch.randint(0, out_features, (batch,), device="cuda")
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(module(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    measured = (torch.cuda.max_memory_allocated() - before) / MiB
    predicted = model.train_memory(amp=amp)
    return (predicted.peak - predicted.params - predicted.buffers) / MiB, measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(DEFAULT))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--zoo", action="store_true", help="every zoo model with a [3, 224, 224] input")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to measure")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 0
    torch.backends.cudnn.benchmark = True
    names = list(args.models)
    if args.zoo:
        import specdsl
        from specdsl import zoo

        names = [n for n in zoo.names() if specdsl.load(n).graph.input_shape == (3, 224, 224)]
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, batch {args.batch}, SGD, MiB over parameters")
    print(f"{'model':<22} {'amp':<5} {'predicted':>10} {'measured':>10} {'error':>7}")
    worst = 0.0
    for name in names:
        for amp in (None, "bf16"):
            predicted, measured = measure(name, args.batch, amp)
            torch.cuda.empty_cache()
            error = (predicted - measured) / measured
            worst = max(worst, abs(error))
            print(f"{name:<22} {amp or 'fp32':<5} {predicted:10.1f} {measured:10.1f} {100 * error:+6.2f}%")
    print(f"worst |error| {100 * worst:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
