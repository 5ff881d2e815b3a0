"""specdsl: a declarative model-spec compiler for convolutional neural networks.

Heavy pieces (torch, graphviz, the backends) are imported lazily so that
``specdsl check`` stays fast and torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specdsl.errors import Diagnostic, SourceLoc, SpecError

__version__ = "0.1.0"
__all__ = ["Diagnostic", "Model", "SourceLoc", "SpecError", "__version__", "load", "to_torch"]

if TYPE_CHECKING:
    from specdsl.api import Model, load


def __getattr__(name: str) -> Any:
    if name in ("load", "Model"):
        from specdsl import api

        return getattr(api, name)
    if name == "to_torch":
        from specdsl.backends.torch.fx import to_torch

        return to_torch
    if name == "to_numpy":
        from specdsl.backends.numpy import to_numpy

        return to_numpy
    raise AttributeError(f"module 'specdsl' has no attribute {name!r}")
