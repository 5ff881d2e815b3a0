"""The kinds in the PyTorch import table (imports.py): an entry, the call site its reader sees, what it returns.

No torch is imported here: a reader sees tensors only through ``.shape`` and ``.ndim``, so the table
loads (and its coverage is tested) without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_REQUIRED = object()


class Refuse(Exception):
    """A call the entry recognises but that no spec can say (``return_indices=True``): reported, never guessed."""


@dataclass
class Site:
    """One traced call, with concrete values.

    ``module``: the module of a module call (else None). ``args``/``kwargs``: the call's arguments with
    tensors as tensors. ``inputs``: the tensors among them that other lifted nodes make, in order.
    ``params``: (state_dict name, tensor) of the operands that are the model's own parameters or buffers.
    ``out``: the call's value. ``shape_source``: where a size argument was read from another node's shape
    (``F.interpolate(x, size=y.shape[-2:])``), that node's position among the lifted nodes.
    """

    module: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: Sequence[Any]
    out: Any
    params: Sequence[tuple[str, Any]] = ()
    shape_source: int | None = None
    method: str = ""  # the tensor method's name, for a method call
    # For a function reading the model's own tensors (``F.batch_norm(x, self.running_mean, ...)`` in timm's
    # BatchNormAct2d): the module that holds them all, and its path (the node's name).
    owner: Any = None
    owner_path: str | None = None

    def arg(self, position: int, name: str, default: Any = _REQUIRED) -> Any:
        """A function's argument by position or by keyword, as its signature takes it."""
        if position < len(self.args):
            return self.args[position]
        if name in self.kwargs:
            return self.kwargs[name]
        if default is _REQUIRED:
            raise Refuse(f"argument '{name}' missing")
        return default

    @property
    def rank(self) -> int:
        """Spatial axes of the first input (a [N, C, H, W] tensor: 2)."""
        return int(self.inputs[0].ndim) - 2

    def dim(self, d: int) -> int:
        """A dimension of the first input, counted from 0 (the batch) as PyTorch counts it."""
        nd = int(self.inputs[0].ndim)
        return d + nd if d < 0 else d


@dataclass(frozen=True)
class Lift:
    """What a reader makes of a call when it is more than the op's arguments: the node's inputs
    (positions among the lifted nodes; ``None``: the call's tensor inputs) and, for a parameter that
    is a node itself (layer_scale), the node's path."""

    args: dict[str, Any]
    inputs: tuple[int, ...] | None = None
    path: str | None = None
    # Ops the call is before this one, in order (``x[:, 16:48]`` is a split, then this part of it): the
    # first reads the call's input, this node reads the last.
    before: tuple[tuple[str, dict[str, Any]], ...] = ()


# The node is its input (``x.contiguous()``): no node is made.
SAME = object()

Reader = Callable[[Site], "dict[str, Any] | Lift | object | None"]


@dataclass(frozen=True)
class ImportEntry:
    """How one op is recognised in a traced model.

    ``modules``: classes (dotted names, resolved when torch is there: ``torch.nn.Conv2d``; a class
    of a package that is not installed is skipped) whose instances *are* the op; matched exactly,
    never by subclass, since a subclass may change ``forward``. ``functions``: callables
    (``torch.nn.functional.relu``, ``operator.add``); a plain Python function listed here is recorded
    as one call instead of being traced into. ``methods``: tensor method names (``x.relu()``).
    ``read(site)`` gives the op's spec arguments (defaults may be left in: they are dropped), ``None``
    when the call is not this op (another entry may take it), or raises :class:`Refuse`.
    ``refusal`` says why an op has no torch form to recognise (then nothing else is given)."""

    read: Reader | None = None
    modules: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    refusal: str = ""
    notes: tuple[str, ...] = field(default=())
