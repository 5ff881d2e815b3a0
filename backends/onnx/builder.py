"""Writing an ONNX graph node by node: names, shapes, constants, doc strings and opset checks.

A lowering (``lowerings.py``) sees only :class:`Builder`: ``b.op("Conv", [x, w], shape, pads=...)``
adds a node and returns its output's name. While a spec node is lowered (:meth:`Builder.lowering`)
every ONNX node it adds is named after it (``layer1.0.conv1``, helpers ``layer1.0.conv1/pad``),
carries its source location as doc string and records its output's shape (the batch axis first,
``N`` when symbolic) as value_info, so Netron shows shapes and ``infer_shapes(strict_mode=True)``
checks them against ONNX's own. An op or mode newer than the requested opset raises a located
:class:`SpecError` naming the op and the opset it needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from onnx import NodeProto, TensorProto, TensorShapeProto, ValueInfoProto, helper, numpy_helper

from specdsl.errors import Diagnostic, SpecError

# Element types of the dtypes a model may declare (the NumPy dtype used for constants).
ELEM_TYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "float64": TensorProto.DOUBLE}
NP_DTYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64}
INT64 = TensorProto.INT64

# Where an ONNX op (or one mode of it) first appears in the default domain, past opset 17.
MIN_OPSET = {"Mish": 18, "Gelu": 20, "Pad:wrap": 19}

Dim = int | str | None  # a size, a symbol (dim_param) or unknown
Shape = tuple[Dim, ...]


def refusal(message: str, node: Any, hint: str | None = None) -> SpecError:
    """The error for a spec node ONNX cannot express as asked: E505, at the node's line."""
    return SpecError([Diagnostic("error", "E505", message, getattr(node, "loc", None), hint=hint,
                                 path=getattr(node, "path", None))])


def shape_proto(dims: Sequence[Dim]) -> TensorShapeProto:
    shape = TensorShapeProto()
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        elif isinstance(d, str):
            dim.dim_param = d
    return shape


def value_info(name: str, elem: int, dims: Sequence[Dim]) -> ValueInfoProto:
    info = helper.make_tensor_value_info(name, elem, None)
    info.type.tensor_type.shape.CopyFrom(shape_proto(dims))
    return info


class Builder:
    """One ONNX graph in the making. ``batch`` is the batch axis' size, or a symbol (``"N"``)."""

    def __init__(self, opset: int, dtype: str, batch: int | str, shapes_of_helpers: bool = True) -> None:
        self.opset = opset
        self.dtype = dtype
        self.elem = ELEM_TYPES[dtype]
        self.np_dtype = NP_DTYPES[dtype]
        self.batch: Dim = batch
        # False when the spatial axes are symbolic: the helpers' shapes then come from ONNX's inference.
        self.shapes_of_helpers = shapes_of_helpers
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.value_infos: dict[str, ValueInfoProto] = {}
        self._taken: set[str] = set()
        self._consts: dict[tuple[Any, ...], str] = {}
        self._node: Any = None
        self._name = ""
        self._doc = ""

    # -- names ---------------------------------------------------------------------------

    def reserve(self, name: str) -> str:
        """``name``, or ``name_1``, ``name_2``, ... if it is taken; then it is taken."""
        unique, k = name, 0
        while unique in self._taken:
            k += 1
            unique = f"{name}_{k}"
        self._taken.add(unique)
        return unique

    @contextmanager
    def lowering(self, node: Any, name: str) -> Iterator[None]:
        """Nodes added inside are the spec node ``node``'s, named after ``name``."""
        loc = node.loc
        self._node, self._name = node, name
        self._doc = (f"{loc.file}:{loc.line}: " if loc else "") + f"{node.path} ({node.op})"
        try:
            yield
        finally:
            self._node, self._name, self._doc = None, "", ""

    # -- nodes ---------------------------------------------------------------------------

    def op(self, op_type: str, inputs: Sequence[str], shape: Shape | None, *, name: str | None = None,
           elem: int | None = None, batched: bool = True, needs: str | None = None, out: str | None = None,
           **attrs: Any) -> str:
        """Add one node; its output's name. Without ``name`` the node is the spec node's own (its
        output is what later nodes read, named after the spec); with one it is a helper, named
        ``<spec name>/<name>`` (``conv1/pad``). ``shape`` excludes the batch axis when ``batched``;
        ``needs`` names an opset-dependent mode; ``out`` is a name reserved beforehand (a graph output's)."""
        self.need(needs or op_type)
        if out is None:
            out = self.reserve(self._name if name is None else f"{self._name}/{name}" if self._name else name)
        node = helper.make_node(op_type, list(inputs), [out], name=out, doc_string=self._doc or None,
                                **{k: v for k, v in attrs.items() if v is not None})
        self.nodes.append(node)
        if shape is not None and (name is None or self.shapes_of_helpers):
            dims = (self.batch, *shape) if batched else tuple(shape)
            self.value_infos[out] = value_info(out, self.elem if elem is None else elem, dims)
        return out

    def need(self, what: str) -> None:
        """Refuse an op (``Gelu``) or mode (``Pad:wrap``) the requested opset does not have."""
        needed = MIN_OPSET.get(what, 0)
        if self.opset < needed:
            op, _, mode = what.partition(":")
            node = self._node
            described = f"ONNX {op}" + (f" with mode '{mode}'" if mode else "")
            raise refusal(f"{node.op if node else op} needs {described}, which opset {needed} introduced; "
                          f"received --opset {self.opset}", node,
                          hint=f"export with --opset {needed} or newer")

    # -- constants -----------------------------------------------------------------------

    def initializer(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array, self.reserve(name)))
        return self.initializers[-1].name

    def const(self, values: Any, *, int64: bool = False, dtype: Any = None, label: str = "const") -> str:
        """A constant tensor (the model's float type, int64 or ``dtype``), shared by every node
        that needs the same values."""
        array = np.asarray(values, dtype=np.int64 if int64 else dtype or self.np_dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            base = f"{self._name}/{label}" if self._name else label
            self._consts[key] = self.initializer(base, array)
        return self._consts[key]

    def ints(self, values: Sequence[int], label: str = "shape") -> str:
        return self.const(list(values), int64=True, label=label)

    def scalar(self, value: float, label: str = "const") -> str:
        return self.const(value, label=label)

    # -- opset-dependent forms -----------------------------------------------------------

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool, shape: Shape | None,
               name: str | None = None, batched: bool = True) -> str:
        """ReduceMean / ReduceMax / ...: axes an attribute before opset 18, an input from 18 on."""
        keep = int(keepdims)
        if self.opset < 18:
            return self.op(op_type, [x], shape, name=name, batched=batched, axes=list(axes), keepdims=keep)
        return self.op(op_type, [x, self.ints(axes, "axes")], shape, name=name, batched=batched, keepdims=keep)

    def unsqueeze(self, x: str, axes: Sequence[int], shape: Shape | None, name: str | None = None,
                  batched: bool = True) -> str:
        return self.op("Unsqueeze", [x, self.ints(axes, "axes")], shape, name=name, batched=batched)

    def reshape(self, x: str, target: Sequence[int], shape: Shape | None, name: str | None = None) -> str:
        """Reshape to ``(batch, *target)``: 0 keeps the batch axis whatever its size."""
        return self.op("Reshape", [x, self.ints([0, *target])], shape, name=name)

    def slice(self, x: str, starts: Sequence[int], ends: Sequence[int], axes: Sequence[int], shape: Shape | None,
              name: str | None = None, steps: Sequence[int] | None = None) -> str:
        ins = [x, self.ints(starts, "starts"), self.ints(ends, "ends"), self.ints(axes, "axes")]
        if steps is not None:
            ins.append(self.ints(steps, "steps"))
        return self.op("Slice", ins, shape, name=name)
