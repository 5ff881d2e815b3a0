"""`specdsl import FILE.onnx`: the ONNX capture (backends/onnx/imports.py) through the same recovery and printer.

With --verify (the default when torch and onnxruntime are installed) the spec is built with ``to_torch``,
the file's initializers loaded into it by name, and its outputs compared with ONNX Runtime's on a random
input (1e-5 relative).
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Sequence
from typing import Any

from specdsl.errors import Diagnostic, SpecError
from specdsl.lift.imported import Imported, not_the_model, spec_of

NOT_IMPORTABLE = "E512"


def import_onnx(args: argparse.Namespace) -> Imported:
    return from_onnx(args.source, input_shape=args.input, name=args.name, verify=args.verify, partial=args.partial)


def from_onnx(path: str, *, input_shape: Sequence[int] | None = None, name: str | None = None,
              verify: bool | None = None, partial: bool = False) -> Imported:
    """``specdsl.from_onnx``: an ONNX file as a spec. ``verify`` (default: when torch and onnxruntime are
    installed) compares the spec's outputs, with the file's initializers, with ONNX Runtime's."""
    from specdsl.backends.onnx.imports import lift_onnx

    try:
        graph = lift_onnx(path, input_shape=input_shape, name=name)
    except ValueError as exc:  # the file is untrusted input: what it lacks is the user's error, not a bug
        raise SpecError([Diagnostic(
            "error", NOT_IMPORTABLE, f"an ONNX file to import is a readable model with one data input of "
            f"fixed shape; received '{path}': {exc}",
            hint="export the model again (torch.onnx.export), or give symbolic axes with --input 3,224,224")]) from None
    result = spec_of(graph, partial=partial, what="an ONNX", where="ONNX")
    if result.model is None:
        return result
    can_run = all(importlib.util.find_spec(p) is not None for p in ("torch", "onnxruntime"))
    if verify or (verify is None and can_run):
        problem = _against_runtime(path, result.model, graph.weights)
        if problem:
            raise not_the_model(problem, "ONNX")
    return result


def _against_runtime(path: str, model: Any, weights: dict[str, Any]) -> str | None:
    """None when the spec, with the file's initializers, gives ONNX Runtime's outputs; else what differs."""
    import numpy as np
    import onnxruntime
    import torch

    from specdsl.backends.torch.capture_verify import RTOL, rel_error
    from specdsl.backends.torch.fx import to_torch

    built = to_torch(model, seed=0).eval()
    state = built.state_dict()
    missing = [k for k in state if k not in weights]
    if missing:
        return f"the spec's tensor '{missing[0]}' is not among the file's initializers"
    try:
        built.load_state_dict({k: torch.from_numpy(np.array(weights[k])) for k in state}, strict=True)
    except RuntimeError as exc:
        return f"the file's initializers do not fit the spec: {str(exc).splitlines()[0]}"
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, *model.graph.input_shape)).astype(np.float32)
    want = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        got = built(torch.from_numpy(x))
    got_list = list(got) if isinstance(got, (tuple, list)) else [got]
    for k, (a, b) in enumerate(zip(got_list, want, strict=False)):
        if tuple(a.shape) != tuple(b.shape):
            return f"output {k}: ONNX Runtime's shape is {list(b.shape)}, the spec's {list(a.shape)}"
        err = rel_error(a, torch.from_numpy(b))
        if err > RTOL:
            return f"output {k} differs from ONNX Runtime's (max. relative error {err:.2e} > {RTOL:g})"
    return None
