"""An exported ONNX file run in ONNX Runtime against the NumPy reference, output by output.

The reference runs in float64 with the very weights the file holds (float32 values, so the copy
is exact); the input is a seeded normal batch. A graph written without weights
(``--no-weights``) is given them as inputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from specdsl.backends.onnx.export import output_names

# Relative error above which the exported graph disagrees with the reference (a specdsl bug), by
# the model's float type (float16 keeps 11 significant bits).
TOLERANCES = {"float16": 1e-2, "float32": 1e-4, "float64": 1e-9}


@dataclass(frozen=True, slots=True)
class OutputError:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    relative: float  # max |onnx − reference| / max(1, max |reference|)
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(self.relative <= self.tolerance)

    def line(self) -> str:
        verdict = "ok" if self.ok else f"MISMATCH (over {self.tolerance:.0e})"
        return (f"  {self.name} {list(self.shape)}: max |error| {self.max_abs:.2e}, "
                f"relative {self.relative:.2e}  {verdict}")


def run_onnx(path_or_bytes: str | os.PathLike[str] | bytes, x: np.ndarray,
             extra: Mapping[str, np.ndarray] | None = None) -> list[np.ndarray]:
    """The graph's outputs for the batch ``x`` (its one input), in ONNX Runtime on the CPU."""
    import onnxruntime as ort

    model = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    feed = {"input": x, **{k: v for k, v in (extra or {}).items() if k in names}}
    return list(session.run(None, feed))


def reference(model: Any, weights: Mapping[str, np.ndarray], x: np.ndarray, dtype: str = "float64"
              ) -> list[np.ndarray]:
    """The NumPy reference's outputs, in the graph's output order. Nearest-neighbour indices are
    picked in float32 arithmetic, as the float32 graph (and PyTorch's kernel) picks them."""
    from specdsl.backends.numpy import NumpyModel

    out = NumpyModel(model, weights, dtype, index_dtype="float32")(x.astype(dtype))
    if isinstance(out, dict):
        return list(out.values())
    return list(out) if isinstance(out, tuple) else [out]


def verify(path_or_bytes: str | os.PathLike[str] | bytes, model: Any, weights: Mapping[str, np.ndarray], *,
           batch: int = 2, seed: int = 0, weights_as_inputs: bool = False) -> list[OutputError]:
    """Each output's largest error against the NumPy reference on a random batch."""
    dtype = model.graph.dtype
    x = np.random.default_rng(seed).standard_normal((batch, *model.graph.input_shape)).astype(dtype)
    got = run_onnx(path_or_bytes, x, weights if weights_as_inputs else None)
    want = reference(model, weights, x)
    tolerance = TOLERANCES[dtype]
    errors = []
    for name, g, w in zip(output_names(model.graph), got, want, strict=True):
        diff = float(np.abs(g.astype(np.float64) - w).max()) if w.size else 0.0
        scale = max(1.0, float(np.abs(w).max()) if w.size else 0.0)
        errors.append(OutputError(name, tuple(g.shape), diff, diff / scale, tolerance))
    return errors
