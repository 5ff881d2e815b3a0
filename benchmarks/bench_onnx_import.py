"""ONNX import of torch.onnx's exports: torchvision models exported by PyTorch's TorchScript exporter
(batch norms kept, as ``do_constant_folding=False`` leaves them) are lifted with ``lift_onnx``; for
each, whether every node mapped, whether the initializers came back under the module's state_dict
keys in order, the largest relative difference between the lifted graph run by the NumPy backend
(float64, the lifted weights) and ONNX Runtime, whether structure recovery writes it, and the time
the lift took. Not a test: prints one line a model and the count.

    .venv/bin/python benchmarks/bench_onnx_import.py [NAME ...] [--size 64] [--dynamo]
    .venv/bin/python benchmarks/bench_onnx_import.py --all [--max-params 200e6] [--shard 1/2]

Each model is built as the reference file (tests/reference/torchvision_cnns.json) records it (its
constructor arguments), with test_import_torchvision's weights, at the smallest input it accepts
(INPUTS) unless --size is given; ``--all`` takes the reference file's 78 CNNs. The largest,
regnet_y_128gf (645 M parameters), needs about 12 GB at once (the module, its export, the lifted
weights in float64) and its export writes external data (over protobuf's 2 GB): ``--max-params``
leaves such models out with a "not run" line.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# One model of each torchvision family (the smaller member), classification and segmentation.
DEFAULT = ["alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "efficientnet_v2_s", "googlenet",
           "inception_v3", "mnasnet0_5", "mobilenet_v2", "mobilenet_v3_large", "regnet_x_400mf",
           "regnet_y_400mf", "resnet50", "resnext50_32x4d", "shufflenet_v2_x1_0", "squeezenet1_1", "vgg11_bn",
           "wide_resnet50_2", "lraspp_mobilenet_v3_large", "fcn_resnet50"]
REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "reference" / "torchvision_cnns.json"
# The smallest input each architecture takes, batch excluded (as tests/test_import_torchvision.py), except
# where torch.onnx needs more: adaptive pooling exports only where the bins divide (alexnet's 6x6 and vgg's
# 7x7 need their own size); s3d's fixed (2, 7, 7) average pool needs 224 pixels and 16 frames.
SMALL = {"classification": (3, 64, 64), "video": (3, 4, 32, 32), "segmentation": (3, 64, 64)}
INPUTS = {"alexnet": (3, 224, 224), "googlenet": (3, 96, 96), "inception_v3": (3, 96, 96),
          "s3d": (3, 16, 224, 224), **{f"vgg{d}{bn}": (3, 224, 224) for d in (11, 13, 16, 19) for bn in ("", "_bn")}}


def reference_models() -> dict[str, dict]:
    return dict(json.loads(REFERENCE.read_text(encoding="utf-8"))["models"])


def build(name: str, entry: dict) -> Any:
    """The torchvision model ``name`` (weights=None): a reference model as tests/test_import_torchvision.py
    builds it (the reference file's constructor arguments; running statistics and scales away from 0 and 1,
    so a dropped or misplaced norm shows, where torchvision's own init leaves some outputs near 1e-20 and
    any error passes a relative test); another with torchvision's init."""
    import torchvision

    if "params" not in entry:
        return torchvision.models.get_model(name, weights=None, **entry["constructor_kwargs"]).eval()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_import_torchvision import _build

    return _build(name).eval()


def one(name: str, entry: dict, shape: tuple[int, ...], folder: Path, dynamo: bool = False) -> tuple[bool, str]:
    import onnxruntime as ort
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_import_onnx import flat_model

    import specdsl
    from specdsl.backends.numpy import NumpyModel
    from specdsl.backends.onnx.imports import lift_onnx
    from specdsl.lift.structure import RecoveryError, recover
    from specdsl.render.printer import to_dsl

    module = build(name, entry)
    x = torch.randn(1, *shape)
    path = folder / f"{name}.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:  # PyTorch's default exporter: batch norms folded into the convolutions
            torch.onnx.export(module, (x,), str(path), dynamo=True)
        else:
            torch.onnx.export(module, (x,), str(path), dynamo=False, do_constant_folding=False)
    start = time.perf_counter()
    lifted = lift_onnx(path)
    seconds = time.perf_counter() - start
    if lifted.unmapped:
        first = lifted.unmapped[0]
        return False, f"{len(lifted.unmapped)} unmapped, first {first.path} {first.origin}: {first.reason}"
    state = module.state_dict()
    keys, keys_ok = _keys(list(lifted.weights), list(state), dynamo)
    if keys_ok and not dynamo:  # the values too: every initializer is the module's tensor of that name
        differs = [k for k, v in state.items() if not np.array_equal(lifted.weights[k], v.numpy())]
        keys, keys_ok = (f"{keys}, values differ ({differs[0]})", False) if differs else (keys, True)
    del module, state  # the largest models: one copy of the weights at a time
    gc.collect()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    del session
    try:
        model, how = specdsl.load(to_dsl(recover(lifted)), warn=False), "recovered"
    except RecoveryError as exc:
        model, how = flat_model(lifted), f"flat ({str(exc)[:60]})"
    got = NumpyModel(model, lifted.weights, "float64")(x.numpy().astype(np.float64))
    got = list(got.values()) if isinstance(got, dict) else list(got) if isinstance(got, (list, tuple)) else [got]
    err = max(float(np.abs(g - w).max() / max(1.0, float(np.abs(w).max()))) for g, w in zip(got, outputs, strict=True))
    ok = err < 1e-5 and keys_ok
    return ok, f"lift {seconds:.2f} s, keys {keys}, max rel err {err:.1e}, {how}"


def _keys(got: list[str], want: list[str], dynamo: bool) -> tuple[str, bool]:
    """How the lifted weights' keys compare with the module's state_dict: equal, in order (TorchScript,
    batch norms kept); for dynamo, whose export folds each batch norm into its convolution, the
    state_dict's keys less the folded norms' (running statistics gone, the conv taking a bias)."""
    if got == want:
        return "= state_dict", True
    if dynamo:
        kept = set(got)
        order = [k for k in want if k in kept]
        extra = [k for k in got if k not in set(want)]
        if order == [k for k in got if k in set(want)] and all(k.endswith(".bias") for k in extra):
            return f"= state_dict less {len(want) - len(order)} folded", True
    first = next((f"{a} vs {b}" for a, b in zip(got, want, strict=False) if a != b), f"{len(got)} vs {len(want)} keys")
    return f"!= state_dict ({first})", False


def _shard(text: str) -> tuple[int, int]:
    k, n = (int(v) for v in text.split("/"))
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"a shard is K/N with 1 <= K <= N; received {text}")
    return k, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--all", action="store_true", help="the 78 torchvision CNNs of the reference file")
    parser.add_argument("--size", type=int, default=None, help="the side of every model's input (default: INPUTS)")
    parser.add_argument("--dynamo", action="store_true", help="export with torch.onnx's dynamo exporter")
    parser.add_argument("--max-params", type=float, default=None, help="leave out larger models (not run)")
    parser.add_argument("--smallest-first", action="store_true", help="in the order of their parameter counts")
    parser.add_argument("--shard", type=_shard, default=(1, 1), help="K/N: every N-th model from the K-th")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # a shared machine: threads only contend
    reference = reference_models()
    names = list(reference) if args.all else args.names or DEFAULT
    if args.smallest_first:
        names.sort(key=lambda n: reference.get(n, {}).get("params", 0))
    k, n = args.shard
    names = names[k - 1::n]
    matched = 0
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            entry = reference.get(name) or {"kind": "classification", "constructor_kwargs": {}}
            if args.max_params and entry.get("params", 0) > args.max_params:
                print(f"{name:28s} not run ({entry['params'] / 1e6:.0f} M parameters)", flush=True)
                continue
            shape = (3, args.size, args.size) if args.size else INPUTS.get(name, SMALL[entry["kind"]])
            start = time.perf_counter()
            try:
                ok, line = one(name, entry, shape, Path(folder), args.dynamo)
            except Exception as exc:  # a benchmark reports every model, whatever fails
                ok, line = False, f"{type(exc).__name__}: {str(exc)[:200]}"
            for f in Path(folder).iterdir():  # external data of a large export too
                f.unlink()
            gc.collect()
            matched += ok
            print(f"{name:28s} {'ok  ' if ok else 'FAIL'} {line} [{time.perf_counter() - start:.0f} s]", flush=True)
    print(f"{matched} of {len(names)} torch.onnx exports import and match ONNX Runtime to 1e-5")


if __name__ == "__main__":
    main()
