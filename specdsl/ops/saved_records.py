"""The records of the saved-for-backward table (``saved.py``): what a node looks like to its entry
(:class:`Call`), what an entry says (:class:`Saved`, the views, :class:`SavedEntry`), and the lookup.

No torch here either: ``specdsl check --train`` reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

Shape = tuple[int, ...]
Autocast = Literal["low", "fp32", "same"]


class Call(NamedTuple):
    """One node as its autograd entry sees it; every shape includes the batch."""

    attrs: Any
    ins: tuple[Shape, ...]
    out: Shape
    # Per input: its dtype ("float32", "bfloat16", ...) and whether it requires grad.
    in_dtypes: tuple[str, ...]
    needs_grad: tuple[bool, ...]
    # The op's own parameters require grad (it has some and the node is not frozen).
    trains: bool
    # passes.inplace.inplace_activations lets it overwrite its input.
    inplace: bool
    device: Literal["cpu", "cuda"]
    # The low-precision dtype under autocast ("bfloat16" / "float16"), or None.
    amp: str | None
    # Elements of each parameter the op owns (for autocast's weight copies).
    param_numels: tuple[int, ...] = ()
    # Per input: whether it is contiguous (a split's part along channels is not, for a batch over 1).
    contiguous: tuple[bool, ...] = ()

    @property
    def batch(self) -> int:
        return self.out[0]


class Saved(NamedTuple):
    """One tensor an autograd node keeps: an input's storage, the output's, or a new tensor."""

    kind: Literal["input", "output", "new"]
    index: int = 0  # type: ignore[assignment]  # the field hides tuple.index, never called
    numel: int = 0
    # For "new": a dtype name, "" for the dtype of input 0, "acc" for its accumulation dtype
    # (float32, or float64 for a float64 input: norm statistics).
    dtype: str = ""
    what: str = "activation"  # activation | indices | mask | stats | cast | weight_copy

    @staticmethod
    def input(k: int = 0) -> Saved:
        return Saved("input", k)

    @staticmethod
    def output() -> Saved:
        return Saved("output")

    @staticmethod
    def new(numel: int, dtype: str = "", what: str = "activation") -> Saved:
        return Saved("new", numel=numel, dtype=dtype, what=what)


class Same(NamedTuple):
    """The output is input ``index`` itself (identity, an in-place activation)."""

    index: int = 0  # type: ignore[assignment]  # the field hides tuple.index, never called


class Narrow(NamedTuple):
    """The output is a slice of input ``index``: per axis (batch included), start and size."""

    index: int  # type: ignore[assignment]  # the field hides tuple.index, never called
    starts: tuple[int, ...]
    sizes: tuple[int, ...]


class Reshape(NamedTuple):
    """``reshape``: a view of input ``index`` where its strides allow one, else a copy."""

    index: int = 0  # type: ignore[assignment]  # the field hides tuple.index, never called


class Permute(NamedTuple):
    """``permute``: input ``index`` with its axes (batch included) in the order ``dims``."""

    index: int  # type: ignore[assignment]  # the field hides tuple.index, never called
    dims: tuple[int, ...]


View = Same | Narrow | Reshape | Permute
SavesFn = Callable[[Call], tuple[Saved, ...]]
ViewFn = Callable[[Call], View | None]


def _fresh(call: Call) -> View | None:
    return None


@dataclass(frozen=True)
class SavedEntry:
    saves: SavesFn
    view: ViewFn = _fresh
    autocast: Autocast = "same"
    # The backward hands its output's gradient on as the inputs' gradients, allocating nothing
    # (add, identity, views); "new": it allocates a gradient per input (most ops).
    # "slices": it hands on slices of its output's gradient (concat), views that keep it alive.
    grads: Literal["new", "pass", "slices"] = "new"
    # Elements of the output's allocation where a kernel makes it larger than the output.
    storage: Callable[[Call], int] | None = None
