"""The ONNX backend: the graph IR written as an ONNX graph with the ``onnx`` package alone.

``export`` builds the ModelProto (``to_onnx``) and writes it (``save_onnx``), ``lowerings`` holds
the one table of how each op becomes ONNX nodes (written by ``layers`` and ``elementwise``
through ``builder``), ``verify`` runs the file in ONNX Runtime against the NumPy reference.
Neither torch nor onnxscript is imported.
"""

from specdsl.backends.onnx.export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, build_onnx, save_onnx, to_onnx
from specdsl.backends.onnx.lowerings import LOWERINGS

__all__ = ["DEFAULT_OPSET", "LOWERINGS", "MAX_OPSET", "MIN_OPSET", "build_onnx", "save_onnx", "to_onnx"]
