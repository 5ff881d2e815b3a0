"""Import readers of the calls split attention and selective kernels are made of (timm's SplitAttn,
RadixSoftmax, SelectiveKernel): ``torch.stack`` of the branches, ``x.sum(dim)`` over the branch axis,
and ``x.transpose(1, 2)`` (a permute of two axes). Entries of the table in imports.py; no torch here.
"""

from __future__ import annotations

from typing import Any

from specdsl.backends.torch import import_readers as read
from specdsl.backends.torch.import_types import Refuse, Site


def stack(site: Site) -> dict[str, Any]:
    """``torch.stack(xs, dim)``: the dim counts the output's axes, one more than an input's."""
    d = int(site.arg(1, "dim", 0))
    ndim = int(site.inputs[0].ndim) + 1
    d = d + ndim if d < 0 else d
    if d == 0:
        raise Refuse("a stack along the batch axis")
    return {"dim": d}


def sum_(site: Site) -> dict[str, Any]:
    """``x.sum(dim, keepdim)`` / ``torch.sum(x, dim, keepdim)`` over non-batch axes, in the input's dtype."""
    dims = site.arg(1, "dim", None)
    if dims is None or site.kwargs.get("dtype") is not None:
        raise Refuse("a sum over every axis (the batch's too) or into another dtype")
    listed = [site.dim(int(d)) for d in (dims if isinstance(dims, list | tuple) else (dims,))]
    if 0 in listed:
        raise Refuse("a sum over the batch axis")
    keep = bool(site.arg(2, "keepdim", False))
    return {"dim": listed[0] if len(listed) == 1 else sorted(listed), "keepdims": keep}


def transpose(site: Site) -> dict[str, Any] | None:
    """``x.transpose(a, b)`` / ``torch.transpose(x, a, b)``: a permute swapping two axes (the batch kept);
    None for a permute's own call (``x.permute(0, 2, 1)``, ``torch.permute(x, dims)``)."""
    if site.module is not None or site.method == "permute" or \
            (not site.method and isinstance(site.arg(1, "dims", None), list | tuple)):
        return None
    a, b = site.dim(int(site.arg(1, "dim0"))), site.dim(int(site.arg(2, "dim1")))
    if 0 in (a, b) and a != b:
        raise Refuse("a transpose that moves the batch axis")
    dims = list(range(int(site.inputs[0].ndim)))
    dims[a], dims[b] = dims[b], dims[a]
    return {"dims": dims}


def permute(site: Site) -> dict[str, Any]:
    """The permute entry's reader: a transpose, or a permute as import_readers reads it."""
    swapped = transpose(site)
    return swapped if swapped is not None else read.permute(site)


def condconv(site: Site) -> dict[str, Any]:
    """timm's CondConv2d, called with (x, routing_weights): its constructor's arguments, read off the module."""
    m = site.module
    if m.dynamic_padding:
        raise Refuse("a CondConv2d with TensorFlow's dynamic SAME padding (the tf_ variants)")
    return {"out": int(m.out_channels), "k": _axes(m.kernel_size), "stride": _axes(m.stride), "pad": _axes(m.padding),
            "dilation": _axes(m.dilation), "groups": int(m.groups), "bias": m.bias is not None}


def _axes(values: Any) -> int | list[int]:
    """One number where every axis agrees (as a spec writes it: ``k=3``), else one per axis."""
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values
