"""Readers of the PyTorch import table (imports.py) for evonorm and frn: the inverses of their lowerings
(modules_evo.py's EvoNorm and FilterResponseNorm) and timm's modules that compute the same
(EvoNorm2dS0, EvoNorm2dS0a, FilterResponseNormTlu2d). Each module is one node, its weight, bias and
v or tau under their own names. No torch here."""

from __future__ import annotations

from typing import Any

from specdsl.backends.torch.import_types import Site

_TIMM = "timm.layers.evo_norm"
EVO_MODULES = (f"{_TIMM}.EvoNorm2dS0", f"{_TIMM}.EvoNorm2dS0a")
FRN_MODULES = ("timm.layers.filter_response_norm.FilterResponseNormTlu2d",)


def evonorm(site: Site) -> dict[str, Any]:
    """timm's groups (also when built from group_size: timm keeps the count), eps and whether v is there;
    its class names the variant (the two differ only without the gate)."""
    m = site.module
    variant = m.variant if hasattr(m, "variant") else ("s0a" if type(m).__name__ == "EvoNorm2dS0a" else "s0")
    return {"groups": int(m.groups), "eps": float(m.eps), "apply_act": m.v is not None, "variant": variant}


def frn(site: Site) -> dict[str, Any]:
    """timm's rms flag changes nothing in its forward; tau is there exactly when the TLU is applied."""
    m = site.module
    return {"eps": float(m.eps), "apply_act": m.tau is not None}
