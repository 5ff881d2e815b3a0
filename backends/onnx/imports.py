"""An ONNX graph lifted back to specdsl ops: ``lift_onnx(path) -> LiftedGraph``, with the ``onnx``
package alone (no torch).

    >>> import specdsl
    >>> from specdsl.backends.onnx import to_onnx
    >>> from specdsl.backends.onnx.imports import lift_onnx
    >>> lifted = lift_onnx(to_onnx(specdsl.load("lenet5")))
    >>> [n.op for n in lifted.nodes][:4]
    ['input', 'conv', 'tanh', 'avgpool']

The graph's shapes come from ONNX's shape inference (at the file's input size, or ``input_shape``
where it leaves the spatial axes symbolic). Its nodes are matched against the import table
(imports_table.py), from the last node back, so each pattern takes the whole decomposition that
ends in it; shape computations (Shape, Gather of shapes, Concat of constants) fold away. Every
lifted node is checked by its op's rule: its output shape must be ONNX's. An ONNX node that no
pattern takes, or whose reading the rule rejects, is reported in ``LiftedGraph.unmapped`` with
its name and the reason, and nothing is guessed in its place. Initializers become
``LiftedGraph.weights`` under the recovered state_dict keys (names: imports_names.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import NodeProto, TensorProto, numpy_helper

from specdsl.backends.naming import param_key, state_dict_order
from specdsl.backends.onnx.imports_names import Namer
from specdsl.backends.onnx.imports_reader import Match, Pattern, Reader, constant_value
from specdsl.backends.onnx.imports_table import IMPORTS, patterns_by_onnx_op
from specdsl.ir import Node
from specdsl.lift.graph import LiftedGraph, LiftedNode, Unmapped
from specdsl.ops import OPS
from specdsl.passes.shapes import NodeShape, infer_node

DTYPES = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.DOUBLE: "float64",
          TensorProto.BFLOAT16: "bfloat16"}
# Nodes whose output is known before the model runs when their inputs are: shape arithmetic.
_SHAPE_OF = {"Shape", "Size"}
# Initializers up to this many values stay in the copy given to shape inference (shapes, axes).
_SMALL = 4096

Source = str | os.PathLike[str] | bytes | onnx.ModelProto


def lift_onnx(source: Source, *, input_shape: Sequence[int] | None = None, name: str | None = None) -> LiftedGraph:
    """The ONNX model ``source`` (a path, the file's bytes or a ModelProto) as a LiftedGraph.
    ``input_shape`` (without the batch axis) fixes axes the file leaves symbolic."""
    model = _load(source)
    reader, input_name, shape, dtype = _read(model, input_shape)
    index = patterns_by_onnx_op()
    specdsl = model.producer_name == "specdsl"
    matches: dict[int, tuple[str, Match]] = {}
    for node in reversed(reader.nodes):
        if not reader.free(node):
            continue
        for op, pattern in _candidates(index, node, specdsl):
            found = pattern.match(reader, node)
            if found is not None and _closed(reader, found):
                matches[id(found.nodes[0])] = (op, found)
                reader.taken.update(id(n) for n in found.nodes)
                break
    graph_name = name or model.graph.name or "imported"
    lifted = LiftedGraph(graph_name, shape, [LiftedNode("input", {}, (), "", False, "onnx input")], (), dtype=dtype)
    _assemble(reader, lifted, matches, input_name, Namer(model, reader))
    return lifted


_WRITTEN_OP = re.compile(r"\((\w+)\)$")


def _candidates(index: dict[str, list[tuple[str, Pattern]]], node: NodeProto,
                specdsl: bool) -> list[tuple[str, Pattern]]:
    """The patterns that may end at ``node``, best first; in specdsl's own files, whose doc strings
    name each node's op (``file:line: path (op)``), that op's patterns go first (a reshape that is
    also a flatten stays a reshape)."""
    if node.domain not in ("", "ai.onnx"):
        return []
    found = index.get(node.op_type, [])
    written = _WRITTEN_OP.search(node.doc_string) if specdsl else None
    if written is None:
        return found
    return sorted(found, key=lambda pair: pair[0] != written.group(1))  # stable: priorities kept


def _load(source: Source) -> onnx.ModelProto:
    """The model; a file that is no ONNX model (or whose external data onnx's own checks refuse:
    a location outside the model's folder, bounds past the file) is a ValueError saying so."""
    from google.protobuf.message import DecodeError

    if isinstance(source, onnx.ModelProto):
        return source
    try:
        if isinstance(source, bytes):
            return onnx.load_from_string(source)
        return onnx.load(os.fspath(source))
    except (DecodeError, onnx.checker.ValidationError) as exc:
        raise ValueError(f"not a readable ONNX model: {exc}") from None


def _read(model: onnx.ModelProto, input_shape: Sequence[int] | None) -> tuple[Reader, str, tuple[int, ...], str]:
    """The graph's reader, its data input's name, that input's shape (no batch) and the dtype."""
    g = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in constants]
    if not inputs:
        raise ValueError("the ONNX graph has no input that is not an initializer")
    data = inputs[0]
    tensor_type = data.type.tensor_type
    dims: list[int | str] = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
                             for d in tensor_type.shape.dim]
    if input_shape is not None:
        if len(input_shape) != len(dims) - 1:
            raise ValueError(f"input_shape needs {len(dims) - 1} axes (the batch excluded) for input "
                             f"'{data.name}' of shape {dims}; received {list(input_shape)}")
        dims = [dims[0], *(int(d) for d in input_shape)]
    if len(dims) < 2 or not all(isinstance(d, int) and d > 0 for d in dims[1:]):
        raise ValueError(f"input '{data.name}' has shape {dims} with symbolic axes; pass input_shape "
                         "(the axes after the batch, e.g. 3,224,224)")
    # Further inputs are weights left out of the file (specdsl's --no-weights): every axis fixed.
    # One with a symbolic axis is a second data input, which no spec has.
    data_like = [i.name for i in inputs[1:] if any(not d.HasField("dim_value") for d in i.type.tensor_type.shape.dim)]
    if data_like:
        raise ValueError(f"a spec takes one input; the ONNX graph has inputs '{data.name}' and "
                         f"{', '.join(repr(n) for n in data_like)} with symbolic axes")
    weight_inputs = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in inputs[1:]}
    shapes = _infer(model, data.name, dims)
    nodes = list(g.node)
    before = set(constants)
    static = _fold(nodes, constants, shapes)
    folded = {n: constants[n] for s in static for n in s.output if n in constants and n not in before}
    if folded:  # again with the folded bounds as constants: a Slice's shape follows from them
        shapes = _infer(model, data.name, dims, folded)
    reader = Reader(nodes, constants, weight_inputs, shapes, [o.name for o in g.output])
    reader.taken.update(id(n) for n in static)
    reader.static.update(id(n) for n in static)
    shape = tuple(int(d) for d in dims[1:])
    return reader, data.name, shape, DTYPES.get(tensor_type.elem_type, "float32")


def _infer(model: onnx.ModelProto, input_name: str, dims: list[int | str],
           folded: dict[str, np.ndarray] | None = None) -> dict[str, tuple[int | str, ...]]:
    """ONNX's inferred shape of every tensor (the input at ``dims``), weights left out of the copy;
    ``folded`` values replace the nodes that compute them."""
    g = model.graph
    folded = folded or {}
    light = onnx.ModelProto(ir_version=model.ir_version)  # the graph without its weights' bytes
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    light.graph.node.extend(n for n in g.node if not (n.output and all(o in folded for o in n.output)))
    light.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in folded.items())
    light.graph.input.extend(g.input)
    light.graph.output.extend(g.output)
    for t in g.initializer:
        if _numel(t) <= _SMALL:  # shape constants: inference reads their values
            light.graph.initializer.append(t)
        elif t.name not in {i.name for i in light.graph.input}:
            light.graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    for value in light.graph.input:
        if value.name == input_name:
            shape = value.type.tensor_type.shape
            for d, want in zip(shape.dim, dims, strict=True):
                if isinstance(want, int):
                    d.Clear()
                    d.dim_value = want
    try:
        inferred = onnx.shape_inference.infer_shapes(light, data_prop=True)
    except onnx.shape_inference.InferenceError as exc:
        raise ValueError(f"ONNX's shape inference fails on this graph: {exc}") from None
    out: dict[str, tuple[int | str, ...]] = {}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        t = value.type.tensor_type
        if t.HasField("shape"):
            out[value.name] = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in t.shape.dim)
    return out


def _numel(t: TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n


def _fold(nodes: list[NodeProto], constants: dict[str, np.ndarray], shapes: dict[str, Any]) -> list[NodeProto]:
    """Constant nodes, Identities of constants and shape arithmetic (from Shape, integer constants
    and Constant nodes): known before the model runs, so no layer. The values of Constants and of
    Identities of constants join ``constants``, where patterns read them; computations on float
    initializers (a weight's Transpose or Unsqueeze) are left to the patterns."""
    static: list[NodeProto] = []
    known: set[str] = {name for name, value in constants.items() if value.dtype.kind in "iub"}
    for node in nodes:
        ins = [i for i in node.input if i]
        if node.op_type == "Constant":
            value = constant_value(node)
            if value is not None:
                constants[node.output[0]] = value
        elif node.op_type == "Identity" and ins and ins[0] in constants:
            constants[node.output[0]] = constants[ins[0]]
        elif not (node.op_type in _SHAPE_OF or (ins and all(i in known for i in ins))):
            continue
        known.update(node.output)
        static.append(node)
        _evaluate(node, constants, shapes)
    return static


def _evaluate(node: NodeProto, constants: dict[str, np.ndarray], shapes: dict[str, Any]) -> None:
    """The value of a node of shape arithmetic (torch.onnx computes a chunk's bounds from Shape),
    with ONNX's reference evaluator; a symbolic axis reads as 1 (only sizes of known axes are
    read back: a pattern never takes a bound on the batch axis). Nothing where it cannot be had."""
    from onnx.reference import ReferenceEvaluator

    if node.op_type == "Shape":
        dims = shapes.get(node.input[0])
        if dims is not None:
            a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
            full = np.array([d if isinstance(d, int) else 1 for d in dims], dtype=np.int64)
            constants[node.output[0]] = full[a.get("start", 0):a.get("end", len(full))]
        return
    feeds = {i: constants[i] for i in node.input if i}
    if len(feeds) != len([i for i in node.input if i]) or node.op_type == "Constant":
        return
    try:
        values = ReferenceEvaluator(node).run(None, feeds)
    except Exception:  # an op the reference evaluator lacks: the value stays unknown
        return
    for name, value in zip(node.output, values, strict=False):
        constants[name] = np.asarray(value)


def _closed(r: Reader, m: Match) -> bool:
    """Whether a match is all free nodes whose outputs, but its own and its parts', stay inside it."""
    covered = {id(n) for n in m.nodes}
    if len(covered) != len(m.nodes) or not all(r.free(n) for n in m.nodes):
        return False
    leaving = {m.output, *m.parts}
    for node in m.nodes:
        for out in node.output:
            if out in leaving or not out:
                continue
            if out in r.graph_outputs or any(id(u) not in covered for u in r.users.get(out, [])):
                return False
    return not any(i in {o for n in m.nodes for o in n.output} for i in m.inputs)


def _assemble(r: Reader, lifted: LiftedGraph, matches: dict[int, tuple[str, Match]], input_name: str,
              namer: Namer) -> None:
    """The lifted nodes in the graph's order, each checked by its rule; the weights; the outputs."""
    namer.prepare(matches.values())
    build = _Assembly(r, lifted, namer, input_name)
    # A split is placed at its first node (its parts may be read before its last Slice).
    position = {id(n): k for k, n in enumerate(r.nodes)}
    at = {id(min(m.nodes, key=lambda n: position[id(n)])) if m.parts else key: (op, m)
          for key, (op, m) in matches.items()}
    aliases = {n.output[0]: n.input[0] for n in r.nodes if n.op_type == "Identity" and r.free(n)
               and n.output[0] in r.graph_outputs and n.input[0] not in r.constants}
    for node in r.nodes:
        if id(node) in at:
            build.add(*at[id(node)])
        elif r.free(node) and node.output[0] not in aliases:
            lifted.unmapped.append(Unmapped(namer.site(node), _origin(node), _why(r, node), namer.source(node)))
    found = [build.value(aliases.get(out, out)) for out in r.output_order]
    lifted.outputs = tuple(i for i in found if i is not None)
    lifted.classes = namer.classes
    tensors = build.tensors
    order = state_dict_order([(path, name) for path, name, _ in tensors])
    lifted.weights = {param_key(tensors[k][0], tensors[k][1]): tensors[k][2] for k in order}


class _Assembly:
    """The lifted graph growing node by node: which lifted node each ONNX tensor is, the rules'
    shapes so far, the weights found, and the parts of splits not read yet (a part becomes a
    node where it is first read, as a spec's ``@s.k`` does)."""

    def __init__(self, r: Reader, lifted: LiftedGraph, namer: Namer, input_name: str) -> None:
        self.r, self.lifted, self.namer = r, lifted, namer
        self.value_of: dict[str, int] = {input_name: 0}
        self.shapes: list[NodeShape] = [NodeShape(lifted.input_shape)]
        self.tensors: list[tuple[str, str, Any]] = []  # (module path, rule name, array) in node order
        self.pending: dict[str, tuple[int, int, str]] = {}  # part tensor -> (split node, index, origin)

    def value(self, name: str) -> int | None:
        if name in self.value_of:
            return self.value_of[name]
        if name not in self.pending:
            return None
        split, k, origin = self.pending.pop(name)
        path = self.lifted.nodes[split].path
        node = Node(len(self.lifted.nodes), "part", OPS["part"].args.model_validate({"index": k}), (split,), path)
        self.shapes.append(infer_node(node, self.shapes, self.lifted.input_shape))
        self.lifted.nodes.append(LiftedNode("part", {"index": k}, (split,), path, False, origin))
        self.value_of[name] = node.index
        return node.index

    def add(self, op: str, m: Match) -> None:
        anchor, lifted, namer = m.nodes[0], self.lifted, self.namer
        inputs = [self.value(i) for i in m.inputs]
        if None in inputs:
            missing = m.inputs[inputs.index(None)]
            reason = f"reads '{missing}', the output of an ONNX node that did not map"
            lifted.unmapped.append(Unmapped(namer.site(anchor), _origin(anchor), reason, namer.source(anchor)))
            return
        ins = [i for i in inputs if i is not None]
        path, is_module = namer.path(op, m)
        problem, shape = _checked(lifted, op, m, ins, path, self.shapes, self.r)
        if problem:
            lifted.unmapped.append(Unmapped(path, _origin(anchor), problem, namer.source(anchor)))
            return
        index = len(lifted.nodes)
        lifted.nodes.append(LiftedNode(op, m.args, tuple(ins), path, is_module, _origin(anchor), namer.source(anchor)))
        if m.output not in m.parts:  # a split read through Slices alone has no whole tensor
            self.value_of[m.output] = index
        fill = dict(IMPORTS[op].fill)
        for spec in OPS[op].weights(shape.attrs):
            found = m.weights.get(spec.name)
            if found is not None and found.array is not None:
                self.tensors.append((path, spec.name, found.array))
            elif found is None and spec.name in fill:
                dtype = np.int64 if spec.dtype == "int64" else None
                self.tensors.append((path, spec.name, np.asarray(fill[spec.name], dtype)))
        for k, part in enumerate(m.parts):
            self.pending[part] = (index, k, _origin(anchor))


def _checked(lifted: LiftedGraph, op: str, m: Match, inputs: list[int], path: str, shapes: list[NodeShape],
             r: Reader) -> tuple[str | None, NodeShape]:
    """The op rule's reading of the match: None and its shape, or why it does not hold."""
    from pydantic import ValidationError

    try:
        args = OPS[op].args.model_validate(m.args)
    except ValidationError as exc:
        return f"{op} takes no arguments {m.args}: {exc.errors()[0]['msg']}", NodeShape(failed=True)
    node = Node(len(lifted.nodes), op, args, tuple(inputs), path)
    shape = infer_node(node, shapes, lifted.input_shape)
    if shape.failed or shape.shape is None:
        why = shape.diagnostics[0].message if shape.diagnostics else "an input's shape is unknown"
        return f"{op} {m.args} does not hold here: {why}", shape
    onnx_shape = r.shape(m.output) if m.output not in m.parts else None  # a part's shape: its slice's
    if onnx_shape is not None and tuple(onnx_shape) != tuple(shape.shape):
        return (f"read as {op} {m.args} it gives shape {list(shape.shape)}, but ONNX infers "
                f"{list(onnx_shape)}"), shape
    for spec in OPS[op].weights(shape.attrs):
        found = m.weights.get(spec.name)
        if found is not None and found.array is not None and tuple(found.array.shape) != tuple(spec.shape):
            return (f"{op} {m.args} has a {spec.name or 'parameter'} of shape {list(spec.shape)}; the ONNX tensor "
                    f"'{found.source}' is {list(found.array.shape)}"), shape
    shapes.append(shape)
    return None, shape


def _origin(node: NodeProto) -> str:
    return f"onnx {node.op_type} '{node.name or node.output[0]}'"


def _why(r: Reader, node: NodeProto) -> str:
    if node.domain not in ("", "ai.onnx"):
        return f"ops of the domain '{node.domain}' have no import entries"
    ops = [op for op, item in IMPORTS.items() if any(p.onnx == node.op_type for p in item.patterns)]
    if not ops:
        return f"no import entry reads ONNX {node.op_type}"
    return (f"ONNX {node.op_type} with these inputs and attributes matches no pattern of "
            f"{', '.join(ops)} (see backends/onnx/imports_table.py)")
