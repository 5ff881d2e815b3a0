"""The lifted graph: what a capture (torch.fx, ONNX) hands to structure recovery.

A flat DAG of specdsl ops in topological order, each node carrying the module path it came from,
so the recovered spec's names reproduce the original state_dict keys. It holds no torch or ONNX
objects: argument values are plain (int, float, bool, str, lists), as a spec would write them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LiftedNode:
    """One specdsl op.

    ``path`` is the dotted module path of the module this node *is* (``layer1.0.conv1``) when
    ``is_module`` is true; for a function or method call (``torch.add``, ``x.flatten(1)``) it is
    the path of the module whose forward made the call (``layer1.0``, or ``""`` for the root).
    ``inputs`` index earlier nodes of ``LiftedGraph.nodes``; index 0 is the model input.
    """

    op: str
    args: dict[str, Any]
    inputs: tuple[int, ...]
    path: str
    is_module: bool
    # For reports: what the node was in the source model ("nn.Conv2d", "torch.add", "onnx Conv").
    origin: str = ""
    # "file.py:123" of the source line that made the call, where the capture knows it.
    source: str | None = None


@dataclass(frozen=True)
class Unmapped:
    """A node of the source model that no import entry maps: reported, never guessed."""

    path: str
    origin: str
    reason: str
    source: str | None = None


@dataclass
class LiftedGraph:
    """A captured model. ``nodes[0]`` is the input (op ``"input"``, no args, path ``""``)."""

    name: str
    input_shape: tuple[int, ...]          # without the batch axis, as a spec's `input`
    nodes: list[LiftedNode]
    outputs: tuple[int, ...]              # one index per model output
    # The class name of each module by path ("" is the root): names the recovered blocks.
    classes: dict[str, str] = field(default_factory=dict)
    unmapped: list[Unmapped] = field(default_factory=list)
    # Parameters and buffers by state_dict key, in the source's registration order, when the
    # capture has them (for --verify and --weights-out); values are numpy arrays.
    weights: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
