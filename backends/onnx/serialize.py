"""Writing an ONNX model whose weights stay NumPy arrays until they reach the file.

A ModelProto holding 100 MB of weights copies them at every step (into each TensorProto, into
the graph, into the model, into the serialized bytes). Here the model is serialized without its
weights, and each weight is appended as the initializer field protobuf would have written
(``GraphProto.initializer``, field 5: a TensorProto with ``raw_data``, field 9), the array's own
memory the last piece; repeated fields may come in any order, so the file parses to exactly the
message ``to_onnx`` returns.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

Weight = tuple[str, np.ndarray]

_GRAPH, _INITIALIZER, _RAW_DATA = 7, 5, 9  # ModelProto.graph, GraphProto.initializer, TensorProto.raw_data


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, length: int) -> bytes:
    """The key and length of a length-delimited field."""
    return _varint(number << 3 | 2) + _varint(length)


def _raw(array: np.ndarray) -> memoryview:
    """The array's bytes, little-endian, in C order (a view where it can be)."""
    a = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).reshape(-1)
    return a.view(np.uint8).data


def _header(name: str, array: np.ndarray) -> onnx.TensorProto:
    tensor = onnx.TensorProto()
    tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    tensor.dims.extend(array.shape)
    return tensor


def add_initializer(graph: onnx.GraphProto, name: str, array: np.ndarray) -> None:
    """The weight as an initializer of ``graph``, as ``numpy_helper.from_array`` writes it."""
    tensor = graph.initializer.add()
    tensor.CopyFrom(_header(name, array))
    tensor.raw_data = _raw(array).tobytes()


def serialized(proto: onnx.ModelProto, weights: list[Weight]) -> list[bytes | memoryview]:
    """The bytes of ``proto`` with ``weights`` as further initializers, in pieces."""
    graph_pieces: list[bytes | memoryview] = [proto.graph.SerializeToString()]
    for name, array in weights:
        header, data = _header(name, array).SerializeToString(), _raw(array)
        body = len(header) + len(_field(_RAW_DATA, data.nbytes)) + data.nbytes
        graph_pieces += [_field(_INITIALIZER, body) + header + _field(_RAW_DATA, data.nbytes), data]
    head = onnx.ModelProto()
    head.CopyFrom(proto)
    head.ClearField("graph")
    size = sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in graph_pieces)
    return [head.SerializeToString() + _field(_GRAPH, size), *graph_pieces]
