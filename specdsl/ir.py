"""The graph IR: a DAG of primitive ops in topological order.

Node 0 is the model input. Every node keeps the location and path of the spec
text that produced it, so any later pass can point back at the source. The path is
also the node's module name (``layer1[0].conv1`` is the module ``layer1.0.conv1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from specdsl.errors import SourceLoc
from specdsl.ops.rule import Args

# The op name of node 0, the model input.
INPUT = "input"

_POSITION = re.compile(r"\[(\d+)\]")


def module_name(path: str) -> str:
    """A node path as the module name it is (issue 24: the path is the naming): positions in
    brackets become dotted, ``layer1[0].conv1`` -> ``layer1.0.conv1``, ``[3]`` -> ``3``."""
    return _POSITION.sub(r".\1", path).removeprefix(".")

# Bytes per element of each dtype a model may declare.
DTYPES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass(eq=False, slots=True)
class Node:
    index: int
    op: str
    args: Args | None
    inputs: tuple[int, ...]
    path: str
    name: str | None = None
    loc: SourceLoc | None = None
    arg_locs: dict[str, SourceLoc] = field(default_factory=dict)
    frozen: bool = False
    init: Any = None
    # "while expanding block ..." notes for diagnostics raised at this node.
    notes: tuple[str, ...] = ()

    @property
    def is_input(self) -> bool:
        """The model input (node 0): not an op, so it has no rule and no lowering."""
        return self.op == INPUT

    @property
    def label(self) -> str:
        return self.name or self.path


@dataclass(frozen=True)
class BlockCall:
    """One call of a user-defined block: what it was given and which nodes it became."""

    block: str
    params: dict[str, Any]
    param_types: dict[str, str]
    input_names: tuple[str, ...]
    inputs: tuple[int, ...]
    output: int
    # A block declaring several outputs (`outputs [@a, @b]`): every one in order, `output` the first;
    # empty for the usual single output.
    outputs: tuple[int, ...] = ()


@dataclass(eq=False)
class Graph:
    model: str
    input_shape: tuple[int, ...]
    dtype: str
    nodes: list[Node]
    output: int
    description: str | None = None
    # Path of every block call -> the block's name, for reports grouped by block.
    blocks: dict[str, str] = field(default_factory=dict)
    # Path of every user-block call -> its arguments, inputs and output node.
    calls: dict[str, BlockCall] = field(default_factory=dict)
    # Integer expressions written in each user block (`c * 4`), for code that reads like the spec.
    block_exprs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Several outputs (`outputs [...]` / `outputs(...)`): (key, node) in order, the key None in a
    # tuple; empty for the usual single output, `output`. Otherwise `output` is the first of them.
    outputs: tuple[tuple[str | None, int], ...] = ()
    # Paths of the lists of modules (`as convs.1`: specdsl.blocks.members), for reports.
    lists: frozenset[str] = frozenset()

    @property
    def output_nodes(self) -> tuple[int, ...]:
        """Every node the model returns."""
        return tuple(i for _, i in self.outputs) if self.outputs else (self.output,)

    @property
    def returns_dict(self) -> bool:
        return bool(self.outputs) and self.outputs[0][0] is not None

    @property
    def returns_tuple(self) -> bool:
        return bool(self.outputs) and self.outputs[0][0] is None and len(self.outputs) > 1

    def consumers(self) -> list[list[int]]:
        users: list[list[int]] = [[] for _ in self.nodes]
        for node in self.nodes:
            for i in node.inputs:
                users[i].append(node.index)
        return users
