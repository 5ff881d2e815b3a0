"""ONNX import of torch.onnx's exports: torchvision models exported by PyTorch's TorchScript exporter
(batch norms kept, as ``do_constant_folding=False`` leaves them) are lifted with ``lift_onnx``; for
each, whether every node mapped, whether the initializers came back under the module's state_dict
keys in order, the largest relative difference between the lifted graph run by the NumPy backend
(float64, the lifted weights) and ONNX Runtime, whether structure recovery writes it, and the time
the lift took. Not a test: prints one line a model and the count.

    /work/tvenv/bin/python benchmarks/bench_onnx_import.py [NAME ...] [--size 64] [--dynamo]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

# One model of each torchvision family (the smaller member), classification and segmentation.
DEFAULT = ["alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "efficientnet_v2_s", "googlenet",
           "inception_v3", "mnasnet0_5", "mobilenet_v2", "mobilenet_v3_large", "regnet_x_400mf",
           "regnet_y_400mf", "resnet50", "resnext50_32x4d", "shufflenet_v2_x1_0", "squeezenet1_1", "vgg11_bn",
           "wide_resnet50_2", "lraspp_mobilenet_v3_large", "fcn_resnet50"]
# torch.onnx exports adaptive pooling only where the bins divide: alexnet and vgg at their own size.
SIZES = {"alexnet": 224, "vgg11_bn": 224, "inception_v3": 96}
SEGMENTATION = {"lraspp_mobilenet_v3_large", "fcn_resnet50", "deeplabv3_mobilenet_v3_large"}


def one(name: str, size: int, folder: Path, dynamo: bool = False) -> tuple[bool, str]:
    import onnxruntime as ort
    import torch
    import torchvision

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_import_onnx import flat_model

    import specdsl
    from specdsl.backends.numpy import NumpyModel
    from specdsl.backends.onnx.imports import lift_onnx
    from specdsl.lift.structure import RecoveryError, recover
    from specdsl.render.printer import to_dsl

    models = torchvision.models.segmentation if name in SEGMENTATION else torchvision.models
    kwargs = {"weights_backbone": None} if name in SEGMENTATION else {}
    module = getattr(models, name)(**kwargs).eval()
    x = torch.randn(1, 3, size, size)
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
    keys = list(lifted.weights) == list(module.state_dict())
    try:
        model, how = specdsl.load(to_dsl(recover(lifted)), warn=False), "recovered"
    except RecoveryError as exc:
        model, how = flat_model(lifted), f"flat ({str(exc)[:60]})"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    got = NumpyModel(model, lifted.weights, "float64")(x.numpy().astype(np.float64))
    got = list(got.values()) if isinstance(got, dict) else list(got) if isinstance(got, (list, tuple)) else [got]
    err = max(float(np.abs(g - w).max() / max(1.0, float(np.abs(w).max()))) for g, w in zip(got, outputs, strict=True))
    ok = err < 1e-5
    return ok, f"lift {seconds:.2f} s, keys {'=' if keys else '!='} state_dict, max rel err {err:.1e}, {how}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=DEFAULT)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--dynamo", action="store_true", help="export with torch.onnx's dynamo exporter")
    args = parser.parse_args()
    matched = 0
    with tempfile.TemporaryDirectory() as folder:
        for name in args.names:
            try:
                ok, line = one(name, SIZES.get(name, args.size), Path(folder), args.dynamo)
            except Exception as exc:  # a benchmark reports every model, whatever fails
                ok, line = False, f"{type(exc).__name__}: {str(exc)[:200]}"
            matched += ok
            print(f"{name:28s} {'ok  ' if ok else 'FAIL'} {line}", flush=True)
    print(f"{matched} of {len(args.names)} torch.onnx exports import and match ONNX Runtime to 1e-5")


if __name__ == "__main__":
    main()
