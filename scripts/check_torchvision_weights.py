"""Load torchvision's own checkpoints into the zoo by name, and compare the outputs.

For each model: build torchvision's model (no pretrained weights: nothing is downloaded), give every
parameter and buffer random values (so a tensor loaded into the wrong place shows), save its
state_dict as a PyTorch file and as safetensors (whose keys come back sorted, not in module order),
load each into ``specdsl.to_torch(NAME, weights=...)`` (strict, by name) and compare the eval-mode
outputs on a random input. Prints one line per model and exits 1 if any model differs.

Needs torchvision next to torch; the test environment (.venv, from constraints.txt) has both:

    .venv/bin/python scripts/check_torchvision_weights.py             # every torchvision model of the zoo
    .venv/bin/python scripts/check_torchvision_weights.py resnet18 vgg16 --full-size
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "torchvision_cnns.json"
# The smallest inputs the models take, for a quick comparison (--full-size uses the reference's).
SMALL = {"inception_v3": [3, 96, 96], "mc3_18": [3, 4, 32, 32], "r3d_18": [3, 4, 32, 32],
         "r2plus1d_18": [3, 4, 32, 32], "s3d": [3, 13, 209, 209]}  # s3d: its last pool is 2x7x7


def randomized(model: Any, seed: int) -> None:
    """Every float tensor of the state_dict drawn at random (variances kept positive)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            values = torch.randn(tensor.shape, generator=g) * 0.1
            if key.endswith("running_var"):
                values = values.abs() + 0.5
            tensor.copy_(values)


def outputs(result: Any) -> list[Any]:
    if isinstance(result, dict):
        return list(result.values())
    if isinstance(result, tuple):
        return list(result)
    return [result]


def check(name: str, reference: dict[str, Any], full_size: bool, folder: Path) -> tuple[bool, str]:
    import torch
    import torchvision
    from safetensors.torch import save_file

    import specdsl

    torch.manual_seed(0)
    theirs = torchvision.models.get_model(name, weights=None, **reference["constructor_kwargs"]).eval()
    randomized(theirs, seed=1)
    state = theirs.state_dict()
    pth, st = folder / f"{name}.pth", folder / f"{name}.safetensors"
    torch.save(state, pth)
    save_file({k: v.contiguous().clone() for k, v in state.items()}, st)

    shape = reference["input"] if full_size else SMALL.get(name, [3, *[min(s, 128) for s in reference["input"][1:]]])
    spec = specdsl.load(name, input=shape, warn=False)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = outputs(theirs(x))
    notes = []
    for path in (pth, st):
        ours = specdsl.to_torch(spec, weights=path).eval()
        if list(ours.state_dict()) != list(state):
            return False, f"{path.suffix}: state_dict keys differ from torchvision's"
        with torch.no_grad():
            got = outputs(ours(x))
        if len(got) != len(want):
            return False, f"{path.suffix}: {len(got)} outputs, torchvision gives {len(want)}"
        for g, w in zip(got, want, strict=True):
            scale = max(1.0, float(w.abs().max()))
            err = float((g - w).abs().max()) / scale
            if g.shape != w.shape or err > 1e-4:
                return False, f"{path.suffix}: output {tuple(g.shape)} vs {tuple(w.shape)}, rel. error {err:.2e}"
            notes.append(err)
    return True, f"input {shape}, max rel. error {max(notes):.1e}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="torchvision model names (default: all 78)")
    parser.add_argument("--full-size", action="store_true", help="the reference input size, not a small one")
    args = parser.parse_args(argv)
    models = json.loads(REFERENCE.read_text(encoding="utf-8"))["models"]
    names = args.names or sorted(models)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            start = time.perf_counter()
            try:
                ok, detail = check(name, models[name], args.full_size, Path(tmp))
            except Exception as exc:  # report every model, then fail
                ok, detail = False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"{'ok  ' if ok else 'FAIL'} {name:32s} {detail} ({time.perf_counter() - start:.1f} s)", flush=True)
            if not ok:
                failed.append(name)
            for leftover in Path(tmp).iterdir():
                leftover.unlink()
    print(f"{len(names) - len(failed)} of {len(names)} models load torchvision's checkpoints by name "
          f"(.pth and .safetensors) and give its outputs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
