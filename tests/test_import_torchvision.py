"""torchvision's 78 CNNs import from their constructors (weights=None) and round-trip exactly.

For each: `specdsl.from_torch` traces the model, recovers a spec, rebuilds it with `to_torch`, loads the
original's state_dict by name (strictly: the same keys in the same order) and compares parameters,
buffers, MACs (specdsl's figure against torch.utils.flop_counter on the original) and outputs on a random
input (1e-5 relative). The parameter count is also held to tests/reference/torchvision_cnns.json, measured
apart. Inputs are small where the architecture allows, to keep the suite fast; runs where torchvision is
installed (/work/tvenv, or the lock once torchvision is pinned there).

The weights are not torchvision's initialisation: see `_build`.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torch.overrides import TorchFunctionMode  # noqa: E402

from specdsl.backends.torch.capture_import import from_torch  # noqa: E402

REFERENCE = json.loads((Path(__file__).parent / "reference" / "torchvision_cnns.json").read_text(encoding="utf-8"))
MODELS = REFERENCE["models"]

# The smallest inputs each architecture takes (its strides and fixed kernels), batch excluded.
SMALL = {"classification": (3, 64, 64), "video": (3, 4, 32, 32), "segmentation": (3, 64, 64)}
INPUTS = {"googlenet": (3, 96, 96), "inception_v3": (3, 75, 75), "s3d": (3, 16, 224, 224)}

@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # small convolutions on a shared machine: threads only contend


def _input(name: str) -> tuple[int, ...]:
    return INPUTS.get(name, SMALL[MODELS[name]["kind"]])


class _SkipTensorDraws(TorchFunctionMode):
    """Skips a constructor's direct draws (``weight.normal_(0, 0.01)``); `_fill` overwrites them."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in (torch.Tensor.normal_, torch.Tensor.uniform_):
            return args[0]
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _skip_random_init() -> Iterator[None]:
    """torch.nn.init's in-place functions (a layer's default init, a model's own) leave their tensor as it
    is while a model is constructed, and so do direct draws: `_fill` overwrites every parameter and
    floating buffer afterwards. (Not a TorchFunctionMode alone: trunc_normal_ and others dispatch no torch
    function of their own, and their erfinv_ on uninitialised memory is slow.)"""
    init = torch.nn.init
    saved = {n: f for n in dir(init) if n.endswith("_") and not n.startswith("_") and callable(f := getattr(init, n))}
    for n in saved:
        setattr(init, n, lambda tensor, *args, **kwargs: tensor)
    try:
        with _SkipTensorDraws():
            yield
    finally:
        for n, f in saved.items():
            setattr(init, n, f)


# Values cycle through a pool of this prime length: no two rows of a weight (of fewer elements per row and
# fewer rows than this) are equal, so a transposed or misplaced slice still shows in the outputs.
POOL = 1_000_003


def _fill(module: Any) -> None:
    """Every parameter and floating buffer from one fixed pool of uniform draws, scaled by its role: conv and
    linear weights by fan-in (so activations stay in range through 100+ layers); biases and running means
    in [-0.2, 0.2]; norm scales, layer scales and running variances in [0.5, 1.5]. Statistics and scales
    away from 0 and 1 make a batch norm that specdsl drops or misplaces change the outputs (torchvision's
    own init, mean 0 and variance 1, would hide it within 1e-5)."""
    pool = torch.rand(POOL, generator=torch.Generator().manual_seed(0))
    start = 0
    tensors = [*module.named_parameters(), *module.named_buffers()]
    with torch.no_grad():
        for key, t in tensors:
            if not t.is_floating_point():
                continue
            leaf = key.rsplit(".", 1)[-1]
            if leaf == "weight" and t.dim() >= 2:
                bound = math.sqrt(3.0 / (t[0].numel()))  # fan-in: one output row's elements
                low, high = -bound, bound
            elif leaf in ("bias", "running_mean"):
                low, high = -0.2, 0.2
            else:
                low, high = 0.5, 1.5
            flat, n, done = t.view(-1), t.numel(), 0
            while done < n:
                take = min(n - done, POOL - start)
                flat[done:done + take].copy_(pool[start:start + take])
                done, start = done + take, (start + take) % POOL
            t.mul_(high - low).add_(low)
            start = (start + 7919) % POOL  # the next tensor starts elsewhere in the pool


def _build(name: str) -> Any:
    """torchvision's model with weights from `_fill`: the round trip compares structure, counts and the
    computation, which any weights away from the degenerate show, and drawing 4 billion parameters at
    random (most twice: a layer's default init, then the model's) took most of this file's time."""
    with _skip_random_init():
        module = torchvision.models.get_model(name, weights=None, **MODELS[name]["constructor_kwargs"])
    _fill(module)
    return module


@pytest.mark.parametrize("name", sorted(MODELS))
def test_torchvision_model_round_trips(name: str) -> None:
    ref = MODELS[name]
    module = _build(name)
    imported = from_torch(module, _input(name), name=name)
    rt = imported.round_trip
    assert rt.ok and rt.order is None, rt.problems
    assert rt.params == ref["params"] == imported.model.totals.params
    assert rt.max_rel_error <= 1e-5
    assert [k for k, _ in ref["state_dict"]] == list(module.state_dict())  # the reference's order is the module's
