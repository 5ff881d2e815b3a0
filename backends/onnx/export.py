"""A spec model as an ONNX graph, written from the graph IR with the ``onnx`` package alone.

    >>> import specdsl
    >>> from specdsl.backends.onnx import to_onnx
    >>> proto = to_onnx(specdsl.load("lenet5"))          # NumPy's random weights (seed 0)
    >>> proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    'N'

Every spec node becomes the ONNX nodes its op's entry in ``lowerings.LOWERINGS`` writes, named
after the spec's module path; the weights are initializers under the NumPy backend's keys (the
PyTorch state_dict's): its seeded random weights, a checkpoint's, a given mapping, or none
(``weights=False``: the graph takes them as inputs, for looking at). The batch axis is the
symbol ``N`` unless ``batch`` fixes it; ``size_probe`` (the same spec loaded at another input
size) makes the spatial axes symbolic where the two disagree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import onnx
from onnx import helper

from specdsl.backends.naming import module_path, param_key
from specdsl.backends.onnx.builder import ELEM_TYPES, INT64, NP_DTYPES, Builder, Dim, refusal, value_info
from specdsl.backends.onnx.lowerings import LOWERINGS
from specdsl.backends.onnx.serialize import Weight, add_initializer, serialized
from specdsl.backends.onnx.site import NodeWeights, Site
from specdsl.version import __version__

DEFAULT_OPSET = 18
MIN_OPSET = 17
# The newest opset the installed onnx package defines (ONNX Runtime runs each of them up to it).
MAX_OPSET = onnx.defs.onnx_opset_version()
SPATIAL_SYMBOLS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

WeightSource = Mapping[str, Any] | str | os.PathLike[str] | bool | None
MatchMode = Literal["name", "position"]


def output_names(graph: Any) -> list[str]:
    """`output`, or one name per declared output (its key, or output_0, output_1, ... for a tuple)."""
    if graph.returns_dict:
        return [str(key) for key, _ in graph.outputs]
    if graph.returns_tuple:
        return [f"output_{k}" for k in range(len(graph.outputs))]
    return ["output"]


def model_weights(model: Any, weights: WeightSource, seed: int = 0, *, transfer: bool = False,
                  match: MatchMode = "name") -> dict[str, np.ndarray]:
    """The arrays ``to_onnx`` writes, in the model's float type: NumPy's random weights (None), a
    checkpoint (a path) or a mapping (checked against the model's keys and shapes)."""
    from specdsl.backends.numpy.weights import check_weights, load_weights, random_weights

    dtype = np.dtype(NP_DTYPES[_dtype(model)])
    if weights is None or weights is True:
        arrays = random_weights(model, seed, dtype)
    elif isinstance(weights, (str, os.PathLike)):
        arrays = load_weights(weights, model, transfer=transfer, seed=seed, match=match)
    else:
        assert not isinstance(weights, bool)
        arrays = check_weights(model, weights)
    return {k: v if v.dtype.kind in "iu" else v.astype(dtype, copy=False) for k, v in arrays.items()}


def _dtype(model: Any) -> str:
    dtype = model.graph.dtype
    if dtype not in ELEM_TYPES:
        raise refusal(f"ONNX export writes float16, float32 or float64 models; received dtype {dtype}", None,
                      hint="declare `dtype float32` and convert the exported model")
    return str(dtype)


def check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset must be between {MIN_OPSET} and {MAX_OPSET} (the installed onnx's newest); "
                         f"received {opset}")


def to_onnx(model: Any, weights: WeightSource = None, *, seed: int = 0, batch: int | None = None,
            opset: int = DEFAULT_OPSET, size_probe: Any = None, transfer: bool = False,
            match: MatchMode = "name", capture: bool = False) -> onnx.ModelProto:
    """The ONNX model of a loaded spec ``model`` (see the module's docstring). ``capture`` adds
    every spec node's output (in node order, after the model's own) as a graph output, for
    comparing a graph node by node."""
    proto, arrays = build_onnx(model, weights, seed=seed, batch=batch, opset=opset, size_probe=size_probe,
                               transfer=transfer, match=match, capture=capture)
    for name, array in arrays:
        add_initializer(proto.graph, name, array)
    return proto


def save_onnx(model: Any, path: str | os.PathLike[str], weights: WeightSource = None, **options: Any) -> None:
    """``to_onnx(model, weights, **options)`` written to ``path`` atomically; the weights go from
    their arrays to the file without passing through a protobuf message."""
    from specdsl.atomic import replace_file

    proto, arrays = build_onnx(model, weights, **options)
    replace_file(path, serialized(proto, arrays))


def build_onnx(model: Any, weights: WeightSource = None, *, seed: int = 0, batch: int | None = None,
               opset: int = DEFAULT_OPSET, size_probe: Any = None, transfer: bool = False,
               match: MatchMode = "name", capture: bool = False) -> tuple[onnx.ModelProto, list[Weight]]:
    """``to_onnx``'s model without its weights' initializers, and those weights (name, array) in
    the order they follow the graph's constants."""
    check_opset(opset)
    graph, figures = model.graph, model.analysis.figures
    dtype = _dtype(model)
    arrays = None if weights is False else model_weights(model, weights, seed, transfer=transfer, match=match)
    symbolic = _symbolic_shapes(model, size_probe) if size_probe is not None else None
    b = Builder(opset, dtype, "N" if batch is None else batch, shapes_of_helpers=symbolic is None)
    inputs = [value_info("input", b.elem, (b.batch, *(symbolic[0] if symbolic else graph.input_shape)))]
    b.reserve("input")
    keys = {param_key(n.path, w.name): w for n in graph.nodes for w in figures[n.index].weights}
    for key in keys:
        b.reserve(key)
    names = [b.reserve(name) for name in output_names(graph)]
    used: dict[str, None] = {}
    weight_list: list[Weight] = []

    def use(key: str) -> str:
        if key not in used:
            used[key] = None
            if arrays is not None:
                weight_list.append((key, arrays[key]))
            else:
                spec = keys[key]
                inputs.append(value_info(key, INT64 if spec.dtype == "int64" else b.elem, spec.shape))
        return key

    tensors: list[str] = ["input"]
    for node in graph.nodes[1:]:
        tensors.append(_lower(b, model, node, tensors, use, symbolic))
    outputs = []
    for name, index in zip(names, graph.output_nodes, strict=True):
        shape = symbolic[index] if symbolic else figures[index].shape
        with b.lowering(graph.nodes[index], name):
            b.op("Identity", [tensors[index]], shape, out=name)
        outputs.append(b.value_infos.pop(name))
    if capture:
        outputs.extend(b.value_infos[tensors[n.index]] for n in graph.nodes[1:])
    onnx_graph = helper.make_graph(b.nodes, str(model.name), inputs, outputs, b.initializers,
                                   doc_string=graph.description or None, value_info=list(b.value_infos.values()))
    proto = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="specdsl", producer_version=__version__,
                              doc_string=f"{model.name} from {model.file}")
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    if symbolic is not None:
        _infer_helper_shapes(proto, weight_list)
    return proto, weight_list


def _lower(b: Builder, model: Any, node: Any, tensors: list[str], use: Any,
           symbolic: list[tuple[Dim, ...]] | None) -> str:
    figures = model.analysis.figures
    fig = figures[node.index]
    names = {w.name: param_key(node.path, w.name) for w in fig.weights}
    site = Site(node, fig.attrs, [tensors[i] for i in node.inputs], NodeWeights(names, use), tuple(fig.shape),
                [tuple(figures[i].shape) for i in node.inputs], symbolic is not None)
    with b.lowering(node, module_path(node.path) or node.op):
        out = LOWERINGS[node.op].lower(b, site)
        if symbolic is not None and out in b.value_infos:
            b.value_infos[out] = value_info(out, b.elem, (b.batch, *symbolic[node.index]))
    return out


def _symbolic_shapes(model: Any, probe: Any) -> list[tuple[Dim, ...]]:
    """Each node's shape with a symbol (``H``) where it is the input's axis at both sizes, the size
    where both agree, and unknown (None) where it depends on the size otherwise; refuses a spec
    whose weights depend on the input size (a flatten into a linear layer)."""
    g, p = model.graph, probe.graph
    rank = len(g.input_shape) - 1
    if rank == 0 or len(p.nodes) != len(g.nodes):
        raise refusal("--dynamic-size needs spatial axes that the spec lets vary; "
                      f"received input {list(g.input_shape)}", g.nodes[0])
    symbols = dict(zip(zip(g.input_shape[1:], p.input_shape[1:], strict=True), SPATIAL_SYMBOLS[rank], strict=True))
    out: list[tuple[Dim, ...]] = []
    for node in g.nodes:
        a, c = model.analysis.figures[node.index], probe.analysis.figures[node.index]
        if [w.shape for w in a.weights] != [w.shape for w in c.weights]:
            raise refusal(f"{node.op} has weights whose shape depends on the input size "
                          f"({[list(w.shape) for w in a.weights]} here, {[list(w.shape) for w in c.weights]} at input "
                          f"{list(p.input_shape)}), so the input size cannot be symbolic", node,
                          hint="export without --dynamic-size, or pool to a fixed size first (adaptive_avgpool)")
        out.append(tuple(x if x == y else symbols.get((x, y)) for x, y in zip(a.shape, c.shape, strict=True)))
    return out


def _infer_helper_shapes(proto: onnx.ModelProto, weights: list[Weight]) -> None:
    """With symbolic sizes, the helpers' shapes are ONNX's own inference (the weights as inputs)."""
    light = onnx.ModelProto()
    light.CopyFrom(proto)
    known = {i.name for i in light.graph.input}
    for name, array in weights:
        light.graph.input.append(value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape))
    inferred = onnx.shape_inference.infer_shapes(light)
    have = {v.name for v in proto.graph.value_info} | {o.name for o in proto.graph.output}
    for info in inferred.graph.value_info:
        if info.name not in have and info.name not in known:
            proto.graph.value_info.append(info)
