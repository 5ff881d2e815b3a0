"""Handing a spec model to the rest of the ecosystem: ONNX (through torch.onnx's exporter) and
safetensors (the weights alone, in module order).

The ONNX graph is made by ``torch.onnx.export``'s torch.export-based exporter (onnxscript), so
the file runs in ONNX Runtime, TensorRT or Netron; exporting the same module twice gives the same
bytes. ``dynamic_batch`` leaves the batch axis symbolic, the way a serving runtime wants it.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import TYPE_CHECKING

import torch

from specdsl.atomic import replace_file
from specdsl.backends.torch.fx import example_input

if TYPE_CHECKING:
    from torch import nn

    from specdsl.api import Model

DEFAULT_OPSET = 18
_EXPORTER_LOGGERS = ("torch.onnx", "torch.onnx._internal.exporter._registration", "torch.export")


def output_names(model: Model) -> list[str]:
    """`output`, or one name per declared output (its key, or output_0, output_1, ... for a tuple)."""
    g = model.graph
    if g.returns_dict:
        return [str(key) for key, _ in g.outputs]
    if g.returns_tuple:
        return [f"output_{k}" for k in range(len(g.outputs))]
    return ["output"]


def export_onnx(module: nn.Module, model: Model, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET,
                dynamic_batch: bool = False, batch: int = 1) -> None:
    """Write ``module`` (built from ``model``) as an ONNX file at ``path``, atomically."""
    module = module.eval()
    x = example_input(model, batch)
    # The module's forward takes *args (see located.py): the batch axis is the first argument's axis 0.
    shapes = (({0: torch.export.Dim("batch", min=1)},),) if dynamic_batch else None
    quiet = [logging.getLogger(name) for name in _EXPORTER_LOGGERS]
    levels = [log.level for log in quiet]
    with warnings.catch_warnings():
        # The exporter's deprecation chatter and "torchvision is not installed" notes are not the user's concern.
        warnings.simplefilter("ignore")
        for log in quiet:
            log.setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(module, (x,), dynamo=True, opset_version=opset, input_names=["input"],
                                        output_names=output_names(model), dynamic_shapes=shapes, verbose=False,
                                        external_data=False)
        finally:
            for log, level in zip(quiet, levels):
                log.setLevel(level)
    assert program is not None
    # The bytes program.save(path) would write (it is typed for paths only), written atomically.
    replace_file(path, program.model_proto.SerializeToString())
