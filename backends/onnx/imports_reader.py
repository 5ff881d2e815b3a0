"""What an import pattern sees of an ONNX graph: constants, producers, users and inferred shapes.

A pattern (``imports_table.py``) is written from the node that ends it back to its inputs:
``r.made_by(name, "Sigmoid")`` is the node producing ``name`` if it is a Sigmoid that nothing else
reads and no other pattern has taken, so a pattern never swallows a tensor another node needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from onnx import NodeProto, helper, numpy_helper

Shape = tuple[int, ...]


class Tensor(NamedTuple):
    """A weight as the pattern found it: the ONNX tensor's name (an initializer's, or a graph
    input's when the file carries no weights) and its values in the spec's layout (None without
    weights)."""

    source: str
    array: np.ndarray | None


@dataclass
class Match:
    """What one pattern recognised: the spec op's arguments (as a spec writes them), the ONNX
    tensors its inputs read, the ONNX nodes it covers (the node it ends with first), its weights
    by their names in the op rule, and, for a split, the tensors that become its parts."""

    args: dict[str, Any]
    inputs: list[str]
    nodes: list[NodeProto]
    weights: dict[str, Tensor] = field(default_factory=dict)
    parts: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return str(self.nodes[0].output[0])


MatchFn = Callable[["Reader", NodeProto], "Match | None"]


class Reader:
    """One ONNX graph, indexed for the patterns. ``shapes`` hold ONNX's inferred shapes without
    the batch axis; ``constants`` the initializers, Constant nodes and Identities of either;
    ``weight_inputs`` the graph inputs beyond the model's input (weights left out of the file)."""

    def __init__(self, nodes: Sequence[NodeProto], constants: dict[str, np.ndarray],
                 weight_inputs: dict[str, Shape], shapes: dict[str, tuple[int | str, ...]],
                 outputs: Sequence[str]) -> None:
        self.nodes = list(nodes)
        self.constants = constants
        self.weight_inputs = weight_inputs
        self.shapes = shapes
        self.graph_outputs = set(outputs)
        self.output_order = list(outputs)
        self.producer: dict[str, NodeProto] = {}
        self.users: dict[str, list[NodeProto]] = {}
        for node in self.nodes:
            for out in node.output:
                self.producer[out] = node
            for name in node.input:
                if name:
                    self.users.setdefault(name, []).append(node)
        self.taken: set[int] = set()  # id() of the nodes a match covers, and of the static ones
        self.static: set[int] = set()  # id() of the nodes known before the model runs (constants, shapes)

    # -- values ------------------------------------------------------------------------

    def const(self, name: str) -> np.ndarray | None:
        return self.constants.get(name) if name else None

    def is_weight(self, name: str) -> bool:
        return bool(name) and (name in self.constants or name in self.weight_inputs)

    def tensor(self, name: str, convert: Callable[[np.ndarray], np.ndarray] | None = None) -> Tensor:
        array = self.const(name)
        if array is not None and convert is not None:
            array = convert(array)
        return Tensor(name, array)

    def weight_shape(self, name: str) -> Shape | None:
        array = self.const(name)
        return tuple(array.shape) if array is not None else self.weight_inputs.get(name)

    def scalar(self, name: str) -> float | None:
        """A one-value constant as a float (None when it is not one)."""
        array = self.const(name)
        if array is None or array.size != 1:
            return None
        return float(array.reshape(()))

    def ints(self, name: str) -> list[int] | None:
        array = self.const(name)
        return None if array is None else [int(v) for v in array.reshape(-1)]

    def full(self, name: str) -> tuple[int | str, ...] | None:
        """The inferred shape with its batch axis (a symbol such as ``N`` where it is one)."""
        return self.shapes.get(name)

    def shape(self, name: str) -> Shape | None:
        """The inferred shape without the batch axis, where every other axis is known."""
        full = self.shapes.get(name)
        if full is None or not full or not all(isinstance(d, int) for d in full[1:]):
            return None
        return tuple(int(d) for d in full[1:])

    # -- structure ---------------------------------------------------------------------

    def free(self, node: NodeProto) -> bool:
        return id(node) not in self.taken

    def only_user(self, name: str, node: NodeProto) -> bool:
        """Whether ``node`` is the one reader of ``name`` (which is no graph output)."""
        users = self.users.get(name, [])
        return name not in self.graph_outputs and len(users) == 1 and users[0] is node

    def made_by(self, name: str, op_type: str, user: NodeProto | None = None) -> NodeProto | None:
        """The free ``op_type`` node making ``name``, if ``user`` (when given) is its one reader."""
        node = self.producer.get(name)
        if node is None or node.op_type != op_type or not self.free(node):
            return None
        if user is not None and not all(self.only_user(out, user) for out in node.output):
            return None
        return node

    def inner(self, name: str, op_type: str) -> NodeProto | None:
        """The free ``op_type`` node making ``name`` whose every output only one node reads: a
        node inside a pattern."""
        node = self.producer.get(name)
        if node is None or node.op_type != op_type or not self.free(node):
            return None
        for out in node.output:
            if out in self.graph_outputs or len(self.users.get(out, [])) != 1:
                return None
        return node


def attrs(node: NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded)."""
    out = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


def constant_value(node: NodeProto) -> np.ndarray | None:
    """A Constant node's value (its tensor, or one of the scalar/list forms)."""
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name in ("value_float", "value_int"):
            return np.asarray(helper.get_attribute_value(a))
        if a.name in ("value_floats", "value_ints"):
            return np.asarray(list(helper.get_attribute_value(a)))
    return None


def one(values: Sequence[int]) -> int | list[int]:
    """One number where every axis agrees (``k=3``), else the list, as a spec writes it."""
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


@dataclass(frozen=True)
class Pattern:
    """One ONNX form of a spec op, matched from the ONNX node it ends with (``onnx``) back to its
    inputs; ``reads`` says what it recognises (``Pad -> Conv``). Where several patterns end in the
    same ONNX op, the larger ``priority`` is tried first (a Mul ending silu before a plain mul)."""

    onnx: str
    match: MatchFn
    reads: str
    priority: int = 0


@dataclass(frozen=True)
class ImportEntry:
    """An op's entry in the import table: its ONNX patterns, or (none) the documented reason no
    ONNX form maps back to it. ``fill`` gives tensors the op has in PyTorch that ONNX never
    carries, with their value (a batch norm's ``num_batches_tracked``)."""

    patterns: tuple[Pattern, ...] = ()
    refusal: str = ""
    fill: tuple[tuple[str, Any], ...] = ()


def decimal(value: float) -> float:
    """A float32 attribute as the shortest decimal that is the same float32 (1e-05 for 1e-5f)."""
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def complement(value: float) -> float:
    """1 − a float32 attribute to six digits (a batch norm's momentum: 0.1 for 1 − 0.9f)."""
    return float(f"{1 - float(value):.6g}")
