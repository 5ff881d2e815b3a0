"""Readers of the PyTorch import table (imports.py) for grn, rmsnorm and simplenorm: the inverses of
their lowerings (modules_modern.py's GlobalResponseNorm and RmsNorm) and the modules that compute the
same (timm's GlobalResponseNorm, RmsNorm2d, RmsNorm, SimpleNorm2d, SimpleNorm and their Fp32 forms,
torch's nn.RMSNorm). Each module is one node, its weight and bias under their own names. No torch here."""

from __future__ import annotations

from typing import Any

from specdsl.backends.torch.import_types import Refuse, Site

# timm's classes that normalise the last axis (channels last); their 2d forms normalise axis 1.
_LAST_AXIS = ("RmsNorm", "RmsNormFp32", "SimpleNorm", "SimpleNormFp32", "RMSNorm")


def grn(site: Site) -> dict[str, Any]:
    """timm's GlobalResponseNorm (channel_dim -1 when channels last, else 1) or specdsl's."""
    m = site.module
    last = m.channel_dim == -1 if hasattr(m, "channel_dim") else bool(m.channels_last)
    if hasattr(m, "spatial_dim") and tuple(m.spatial_dim) != ((1, 2) if last else (2, 3)):
        raise Refuse(f"a global response norm over the axes {tuple(m.spatial_dim)}")
    return {"eps": float(m.eps), "channels_last": last}


def _rms(centred: bool) -> Any:
    def read(site: Site) -> dict[str, Any] | None:
        m = site.module
        if hasattr(m, "centred"):  # specdsl's RmsNorm is both ops: its flag says which
            if bool(m.centred) != centred:
                return None
            return {"eps": float(m.eps), "affine": m.weight is not None, "channels_last": bool(m.channels_last)}
        shape = tuple(m.normalized_shape)
        if len(shape) != 1:
            raise Refuse(f"an RMS norm over the trailing axes {list(shape)} (specdsl's normalises one axis)")
        if m.eps is None:
            # nn.RMSNorm's default: the dtype's machine epsilon, which a spec cannot write for every dtype.
            raise Refuse("nn.RMSNorm with eps=None (the input dtype's epsilon); give it eps")
        return {"eps": float(m.eps), "affine": m.weight is not None,
                "channels_last": type(m).__name__ in _LAST_AXIS}

    read.__qualname__ = "simplenorm" if centred else "rmsnorm"
    return read


rmsnorm = _rms(centred=False)
simplenorm = _rms(centred=True)

_TIMM_NORM = "timm.layers.norm"
GRN_MODULES = ("timm.layers.grn.GlobalResponseNorm",)
RMS_MODULES = (*(f"{_TIMM_NORM}.{c}" for c in ("RmsNorm2d", "RmsNorm2dFp32", "RmsNorm", "RmsNormFp32")),
               "torch.nn.RMSNorm")
SIMPLE_MODULES = tuple(f"{_TIMM_NORM}.{c}"
                       for c in ("SimpleNorm2d", "SimpleNorm2dFp32", "SimpleNorm", "SimpleNormFp32"))
