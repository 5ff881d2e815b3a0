"""What a lowering is given for one spec node, and how an entry of the ONNX table looks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from specdsl.backends.onnx.builder import Builder, refusal


class NodeWeights:
    """A node's parameters and buffers by their names in its op rule (``weight``, ``running_var``);
    reading one adds its initializer (or graph input) under the NumPy backend's key, so a weight no
    lowering reads (``num_batches_tracked``) never enters the graph."""

    def __init__(self, names: dict[str, str], use: Callable[[str], str]) -> None:
        self._names = names  # rule name -> weight key
        self._use = use

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __getitem__(self, name: str) -> str:
        return self._use(self._names[name])


@dataclass(frozen=True, slots=True)
class Site:
    """One spec node being lowered: its figure's ``attrs``, its inputs' tensor names, its
    weights, its static output shape and its inputs' (both without the batch axis); ``dynamic``
    when the spatial axes are symbolic (``--dynamic-size``), so no size may be baked in."""

    node: Any
    attrs: Any
    ins: list[str]
    w: NodeWeights
    shape: tuple[int, ...]
    in_shapes: list[tuple[int, ...]]
    dynamic: bool

    @property
    def x(self) -> str:
        return self.ins[0]

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.in_shapes[0]

    @property
    def rank(self) -> int:
        """Spatial axes of the first input."""
        return len(self.in_shapes[0]) - 1

    def fixed_size(self, why: str) -> None:
        """Refuse symbolic spatial sizes for a lowering that bakes a size in (``why`` says which)."""
        if self.dynamic:
            raise refusal(f"{self.node.op} cannot take a symbolic input size: {why}", self.node,
                          hint="export without --dynamic-size (the spec's input size is then fixed)")


LowerFn = Callable[[Builder, Site], str]


@dataclass(frozen=True, slots=True)
class Lowering:
    """One op's ONNX lowering: ``lower(b, site)`` adds the nodes and returns the output's name.
    ``onnx`` lists the ONNX ops it writes (documentation for the reader and the importer)."""

    lower: LowerFn
    onnx: tuple[str, ...]
