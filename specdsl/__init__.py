"""specdsl: a declarative model-spec compiler for convolutional neural networks.

Heavy pieces (torch, graphviz, the backends) are imported lazily so that
``specdsl check`` stays fast and torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specdsl.errors import Diagnostic, SourceLoc, SpecError, SpecWarning
from specdsl.version import __version__

__all__ = ["Diagnostic", "Model", "SourceLoc", "SpecError", "SpecWarning", "__version__", "from_onnx", "from_torch",
           "load", "to_numpy", "to_torch"]

if TYPE_CHECKING:
    from specdsl.api import Model, load
    from specdsl.backends.numpy import to_numpy
    from specdsl.backends.torch.capture_import import from_torch
    from specdsl.backends.torch.fx import to_torch
    from specdsl.cli.import_onnx import from_onnx


def __getattr__(name: str) -> Any:
    if name in ("load", "Model"):
        from specdsl import api

        return getattr(api, name)
    if name == "to_torch":
        from specdsl.backends.torch.fx import to_torch

        return to_torch
    if name == "from_torch":
        from specdsl.backends.torch.capture_import import from_torch

        return from_torch
    if name == "from_onnx":
        from specdsl.cli.import_onnx import from_onnx

        return from_onnx
    if name == "to_numpy":
        from specdsl.backends.numpy import to_numpy

        return to_numpy
    raise AttributeError(f"module 'specdsl' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names exist only through __getattr__; list them so dir() and tab completion show them.
    return sorted({*__all__, *(n for n in globals() if n.startswith("__"))})
