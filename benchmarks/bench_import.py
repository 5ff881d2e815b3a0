"""Import benchmarks (issue 25): how long `specdsl.from_torch` takes on resnet50, and how much of timm imports.

    python benchmarks/bench_import.py speed            # torchvision resnet50 at 3x224x224, warm, 5 runs
    python benchmarks/bench_import.py timm [--limit N] [--max-params M] [--only PATTERN]

`speed` times the import alone (trace, lift, structure recovery, printing, loading the spec) and with
the round trip (rebuilding the spec, loading the weights by name, comparing MACs and outputs); the
target is under 2 s for the import. `timm` imports every CNN that `timm.list_models()` offers in the
issue's families at a small input (64x64, or the model's own size where it needs more), each verified
exactly, and prints the figure and every failure with its reason. Models over --max-params parameters
(default 150 M: the machine's memory and time) are listed as not run, and counted apart. Needs
torchvision / timm (/work/tvenv). Torch runs on one thread: on a shared machine more only contend.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import Counter

FAMILIES = ("resnet*", "efficientnet*", "mobilenetv3*", "regnet*", "convnext*", "dla*", "dpn*", "hrnet*", "csp*",
            "ghostnet*", "rexnet*", "repvgg*", "vovnet*", "res2net*", "resnest*", "skresnet*", "xception*",
            "mixnet*", "inception*")


# What PyTorch says when the input is too small for the architecture: then the model's own size is tried.
_TOO_SMALL = ("smaller than", "Output size is too small", "can't be greater than actual input size")


def speed(runs: int) -> None:
    import torch
    import torchvision

    from specdsl.backends.torch.capture_import import from_torch

    module = torchvision.models.resnet50(weights=None)
    from_torch(torchvision.models.resnet18(weights=None), (3, 64, 64))  # warm: imports, first trace
    for verify in (False, True):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            from_torch(module, (3, 224, 224), name="resnet50", verify=verify)
            times.append(time.perf_counter() - start)
        what = "import + round trip" if verify else "import"
        print(f"resnet50 {what}: median {statistics.median(times):.2f} s, best {min(times):.2f} s "
              f"({runs} runs, torch {torch.__version__}, {torch.get_num_threads()} thread)")


def _reason(exc: BaseException) -> str:
    from specdsl.errors import SpecError

    if isinstance(exc, SpecError):
        d = exc.diagnostics[0]
        more = f" (+{len(exc.diagnostics) - 1} more)" if len(exc.diagnostics) > 1 else ""
        return f"{d.code} {d.message}{more}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _params_on_meta(timm: object, name: str) -> int | None:
    """The model's size without building its tensors (None where its initialisation needs real data)."""
    import torch

    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)  # type: ignore[attr-defined]
    except Exception:
        return None
    return sum(p.numel() for p in model.parameters())


def timm_figure(limit: int | None, max_params: float, only: str | None, shard: str = "1/1") -> None:
    import timm
    import torch

    from specdsl.backends.torch.capture_import import from_torch

    if only and only.startswith("@"):  # @FILE: the names in it, one a line (a rerun of some)
        names = sorted({line.split()[0] for line in open(only[1:], encoding="utf-8") if line.strip()})
    else:
        names = sorted({n for pattern in ((only,) if only else FAMILIES) for n in timm.list_models(pattern)})
    names = names[:limit] if limit else names
    k, n = (int(v) for v in shard.split("/"))
    names = names[k - 1::n]  # one of n interleaved shards, to run in parallel processes
    passed: list[str] = []
    failed: list[tuple[str, str]] = []
    skipped: list[tuple[str, int]] = []
    in_other_order: list[str] = []
    start = time.perf_counter()
    for i, name in enumerate(names):
        n_params = _params_on_meta(timm, name)
        if n_params is not None and n_params > max_params:
            skipped.append((name, n_params))
            continue
        t0 = time.perf_counter()
        try:
            model = timm.create_model(name, pretrained=False).eval()
            reason = None
            for shape in ((3, 64, 64), tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))):
                try:
                    rt = from_torch(model, shape, name=name, key_order=False).round_trip
                    if rt.order:
                        in_other_order.append(name)
                    reason = None
                    break
                except Exception as exc:
                    reason = _reason(exc)
                    if not any(w in reason for w in _TOO_SMALL):
                        break
        except Exception as exc:
            reason = _reason(exc)
        (failed.append((name, reason)) if reason else passed.append(name))
        print(f"[{i + 1}/{len(names)}] {name}: {'ok' if not reason else 'FAIL ' + reason[:300]} "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        gc.collect()
    run = len(passed) + len(failed)
    print(f"\ntimm CNNs in the issue's families: {len(names)}; run {run}, round-trip exactly {len(passed)} "
          f"({100 * len(passed) / max(run, 1):.1f}% of those run; {100 * len(passed) / max(len(names), 1):.1f}% "
          f"of all), not run (over {max_params / 1e6:.0f} M parameters) {len(skipped)}; "
          f"{time.perf_counter() - start:.0f} s, torch {torch.__version__}, timm {timm.__version__}")
    print(f"of those that round-trip, {len(in_other_order)} have their state_dict keys in another order "
          f"(same names; load by name does not mind): {', '.join(in_other_order)}")
    kinds = Counter(r.split(":")[0][:80] for _, r in failed)
    print("failure kinds:", dict(kinds.most_common(12)))
    for name, reason in failed:
        print(f"  FAIL {name}: {reason}")
    for name, n in skipped:
        print(f"  not run {name}: {n / 1e6:.0f} M parameters")


def main(argv: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("speed", "timm"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--max-params", type=float, default=150e6)
    parser.add_argument("--only", help="one timm name pattern instead of the families, or @FILE of names")
    parser.add_argument("--shard", default="1/1", help="K/N: the K-th of N interleaved parts of the list")
    args = parser.parse_args(argv)
    if args.what == "speed":
        speed(args.runs)
    else:
        timm_figure(args.limit, args.max_params, args.only, args.shard)


if __name__ == "__main__":
    main(sys.argv[1:])
