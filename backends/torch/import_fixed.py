"""Readers of the PyTorch import table (imports.py) for reshape, unsqueeze, squeeze, scale and blurpool:
the inverses of their lowerings (modules_modern.py) and the calls that mean the same
(``x.view(n, 1, -1)``, ``x.unsqueeze(2)``, ``x * 0.17``, timm's ``BlurPool2d``). No torch is imported."""

from __future__ import annotations

from typing import Any

from specdsl.backends.torch.import_types import Refuse, Site


def reshape(site: Site) -> dict[str, Any] | None:
    """``Reshape(shape)``, ``x.view(n, *shape)``, ``x.reshape((n, *shape))``, ``torch.reshape(x, ...)``: the
    sizes after the batch as written (-1 kept); a call that does not keep the batch first is refused."""
    if site.module is not None:
        return {"shape": list(site.module.shape)}
    sizes: Any = site.args[1:] or (site.kwargs.get("shape") or site.kwargs.get("size"),)
    if len(sizes) == 1 and isinstance(sizes[0], list | tuple):
        sizes = sizes[0]
    sizes = [int(s) for s in sizes]
    batch = int(site.inputs[0].shape[0])
    if len(sizes) < 2 or int(site.out.shape[0]) != batch or sizes[0] not in (batch, -1) or \
            (sizes[0] == -1 and -1 in sizes[1:]):
        raise Refuse(f"a reshape to {sizes} that does not keep the batch axis first")
    rest = sizes[1:]
    # A -1 for the batch: the sample's sizes are then all known.
    return {"shape": rest if sizes[0] == batch else [int(d) for d in site.out.shape[1:]]}


def _axis(site: Site, extra: int) -> dict[str, Any]:
    dim = site.module.dim if site.module is not None else site.arg(1, "dim", None)
    if not isinstance(dim, int):
        raise Refuse(f"{site.method or 'squeeze'} without one dim (specdsl names the axis)")
    ndim = int(site.inputs[0].ndim) + extra
    if (dim + ndim if dim < 0 else dim) == 0:
        raise Refuse("an unsqueeze or squeeze of the batch axis")
    return {"dim": dim}


def unsqueeze(site: Site) -> dict[str, Any]:
    return _axis(site, 1)


def squeeze(site: Site) -> dict[str, Any] | None:
    args = _axis(site, 0)
    if tuple(site.out.shape) == tuple(site.inputs[0].shape):
        return None  # PyTorch left an axis that is not 1 alone: no op (identity would say so)
    return args


def scale(site: Site) -> dict[str, Any] | None:
    """``x * 0.17``, ``0.17 * x``, ``torch.mul(x, 0.17)``: one tensor times a Python number."""
    numbers = [a for a in site.args if isinstance(a, int | float) and not isinstance(a, bool)]
    if site.params or len(site.inputs) != 1 or len(numbers) != 1 or len(site.args) != 2:
        return None
    return {"value": float(numbers[0])}


def blurpool(site: Site) -> dict[str, Any]:
    """timm's ``BlurPool2d`` (or specdsl's own): filter size, stride and padding mode."""
    m = site.module
    return {"filt": int(m.filt_size), "stride": int(m.stride), "pad_mode": str(m.pad_mode)}
