"""The kinds of entry in the PyTorch lowering table (lowerings.py): a module's constructor call
kept as data, an expression of the inputs, a parameter of the node's container.

Kept apart from the table so that the table reads as one entry per op; no torch is imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from specdsl.backends.torch.source_expr import TORCH_SOURCE, SourceExpr, as_source


@dataclass(frozen=True)
class Ctor:
    """A module constructor call, kept as data so integers can become expressions.

    ``name`` is ``nn.<Class>`` for torch.nn, or a class of ``modules.py``.
    """

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    # Positions (int index or kwarg name) holding channel counts: in / out.
    channels_in: tuple[Any, ...] = ()
    channels_out: tuple[Any, ...] = ()
    # Takes the model's shared FractalPath after its positional arguments (the fractal Join).
    fractal_path: bool = False

    def render(self, exprs: dict[Any, str] | None = None) -> str:
        """``nn.Conv2d(64, c, kernel_size=3)``: each argument's literal, or its entry in ``exprs``."""
        exprs = exprs or {}
        parts = [exprs.get(i, repr(a)) for i, a in enumerate(self.args)]
        if self.fractal_path:
            parts.append("self.fractal_path")
        parts += [f"{k}={exprs.get(k, repr(v))}" for k, v in self.kwargs]
        return f"{self.name}({', '.join(parts)})"

    def slots(self) -> list[tuple[Any, Any]]:
        """(position, value) of every argument."""
        return [*enumerate(self.args), *self.kwargs]


CtorFn = Callable[[Any, int, bool], Ctor]  # (attrs, rank, inplace) -> Ctor


@dataclass(frozen=True)
class ModuleLowering:
    """The op runs as a module; ``ctor(attrs, rank, inplace)`` describes its constructor call."""

    ctor: CtorFn


@dataclass(frozen=True)
class FunctionLowering:
    """The op is an expression of its inputs: ``apply(inputs, attrs, torch)``.

    ``channels(input_channels, attrs)`` gives the output's channel count as an expression of
    the inputs' (or None) for emitted block classes; ops with ``Trait.KEEPS_CHANNELS`` need none.
    """

    apply: Callable[[Sequence[Any], Any, Any], Any]
    channels: Callable[[Sequence[str | None], Any], str | None] | None = None

    def source(self, inputs: Sequence[str], attrs: Any) -> str:
        """The expression's text over the variables ``inputs``, e.g. ``(a + b) / 2``."""
        return as_source(self.apply([SourceExpr(v) for v in inputs], attrs, TORCH_SOURCE)).text


@dataclass(frozen=True)
class FilledParameter(Ctor):
    """``nn.Parameter(torch.full((C, 1, ..., 1), fill))``: args ``(C,)``, kwargs ``rank`` and ``fill``."""

    def render(self, exprs: dict[Any, str] | None = None) -> str:
        exprs = exprs or {}
        values = dict(self.slots())
        channels, fill = exprs.get(0, repr(values[0])), exprs.get("fill", repr(values["fill"]))
        rank = exprs.get("rank", repr(values["rank"]))
        shape = f"({', '.join([channels, *['1'] * int(rank)])}{',' if rank == '0' else ''})" if rank.isdigit() \
            else f"({channels},) + (1,) * ({rank})"
        return f"nn.Parameter(torch.full({shape}, {fill}))"

    def make(self, torch: Any) -> Any:
        values = dict(self.slots())
        return torch.nn.Parameter(torch.full((values[0],) + (1,) * values["rank"], values["fill"]))


@dataclass(frozen=True)
class ParameterLowering:
    """The op's tensor is a parameter of its container named by the node (TensorSpec.of_container):
    ``tensor(attrs, rank, inplace)`` describes its creation, ``apply(x, p, attrs, torch)`` the forward over
    the input and the parameter, as ordinary Python (fx proxies in ``to_torch``, ``SourceExpr`` in the emitter)."""

    tensor: Callable[[Any, int, bool], FilledParameter]
    apply: Callable[[Any, Any, Any, Any], Any]

    def source(self, x: str, parameter: str, attrs: Any) -> str:
        return as_source(self.apply(SourceExpr(x), SourceExpr(parameter), attrs, TORCH_SOURCE)).text
