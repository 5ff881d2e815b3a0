"""PyTorch lowerings of evonorm and frn (specdsl/ops/norm_evo.py): entries of the table in ``lowerings.py``,
each a constructor call of a module in ``modules_evo.py`` with the arguments that differ from its
defaults (``EvoNorm(32, groups=2, eps=0.001)``, ``FilterResponseNorm(64)``). No torch here."""

from __future__ import annotations

from typing import Any

from specdsl.backends.torch.lowering_types import Ctor


def evonorm(a: Any, rank: int, inplace: bool) -> Ctor:
    kw: dict[str, Any] = {"groups": a.groups} if a.groups != 32 else {}
    if a.eps != 1e-5:
        kw["eps"] = a.eps
    if not a.apply_act:
        kw["apply_act"] = False
    if a.variant != "s0":
        kw["variant"] = a.variant
    return Ctor("EvoNorm", (a.channels,), tuple(kw.items()), channels_in=(0,))


def frn(a: Any, rank: int, inplace: bool) -> Ctor:
    kw: dict[str, Any] = {"eps": a.eps} if a.eps != 1e-5 else {}
    if not a.apply_act:
        kw["apply_act"] = False
    return Ctor("FilterResponseNorm", (a.channels,), tuple(kw.items()), channels_in=(0,))
