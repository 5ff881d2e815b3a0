"""How each op's arguments are read from a traced call: the readers of the import table (imports.py).

A reader is the inverse of the op's lowering (lowerings.py): from ``nn.Conv2d(64, 128, kernel_size=3,
padding=1, bias=False)`` it reads ``conv(128, k=3, pad=1, bias=false)``. It returns ``None`` when the
call is not its op, and raises ``Refuse`` for a call of its op with an option no spec can say.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from specdsl.backends.torch.import_types import SAME, Lift, Reader, Refuse, Site


def axes(values: Any) -> Any:
    """One number when every axis agrees (``(3, 3)`` -> 3), else a list."""
    if isinstance(values, int | float) and not isinstance(values, bool):
        return values
    values = list(values)
    return values[0] if len(set(values)) == 1 else values


def _tensor_operands(site: Site) -> bool:
    """Every operand of an element-wise call is a tensor that another node makes (no scalars, no weights)."""
    operands = [a for a in site.args if not isinstance(a, str)]
    return not site.params and len(operands) == len(site.inputs) and len(site.inputs) >= 2


def _spatial(site: Site, dims: Any) -> bool:
    dims = [dims] if isinstance(dims, int) else list(dims or [])
    return site.rank > 0 and sorted(site.dim(d) for d in dims) == list(range(2, 2 + site.rank))


# -- modules and their functional forms -----------------------------------------------


def conv(site: Site) -> dict[str, Any]:
    m = site.module
    pad = m.padding if isinstance(m.padding, str) else axes(m.padding)
    return {"out": m.out_channels, "k": axes(m.kernel_size), "stride": axes(m.stride), "pad": pad,
            "dilation": axes(m.dilation), "groups": m.groups, "bias": m.bias is not None,
            "padding_mode": m.padding_mode}


def deconv(site: Site) -> dict[str, Any]:
    m = site.module
    if len(site.args) > 1 or site.kwargs:
        raise Refuse("a transposed conv called with output_size")
    return {"out": m.out_channels, "k": axes(m.kernel_size), "stride": axes(m.stride), "pad": axes(m.padding),
            "output_padding": axes(m.output_padding), "dilation": axes(m.dilation), "groups": m.groups,
            "bias": m.bias is not None}


_MAX_POOL = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG_POOL = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")


def _pool_options(site: Site, names: tuple[str, ...]) -> dict[str, Any]:
    """kernel_size, stride, padding, ... of a pooling module, or of its F.* call's arguments."""
    if site.module is not None:
        return {n: getattr(site.module, n, None) for n in names}
    return {n: site.arg(i + 1, n, None) for i, n in enumerate(names)}


def maxpool(site: Site) -> dict[str, Any]:
    o = _pool_options(site, _MAX_POOL)
    if o["return_indices"]:
        raise Refuse("max pooling with return_indices=True")
    k = axes(o["kernel_size"])
    stride = axes(o["stride"] if o["stride"] else o["kernel_size"])
    return {"k": k, "stride": None if stride == k else stride, "pad": axes(o["padding"] or 0),
            "dilation": axes(o["dilation"] or 1), "ceil_mode": bool(o["ceil_mode"])}


def avgpool(site: Site) -> dict[str, Any]:
    o = _pool_options(site, _AVG_POOL)
    if o["divisor_override"]:
        raise Refuse("average pooling with divisor_override")
    k = axes(o["kernel_size"])
    stride = axes(o["stride"] if o["stride"] else o["kernel_size"])
    include = o["count_include_pad"]
    return {"k": k, "stride": None if stride == k else stride, "pad": axes(o["padding"] or 0),
            "ceil_mode": bool(o["ceil_mode"]), "count_include_pad": True if include is None else bool(include)}


def adaptive(site: Site) -> dict[str, Any]:
    size = site.module.output_size if site.module is not None else site.arg(1, "output_size")
    if getattr(site.module, "return_indices", False) or site.kwargs.get("return_indices"):
        raise Refuse("adaptive max pooling with return_indices=True")
    sizes = [size] * site.rank if isinstance(size, int) else list(size)
    spatial = site.inputs[0].shape[2:]
    return {"out": axes([int(spatial[i]) if s is None else int(s) for i, s in enumerate(sizes)])}


def global_mean(site: Site) -> dict[str, Any] | None:
    """``x.mean((2, 3))`` / ``torch.mean(x, dim=..., keepdim=...)`` over every spatial axis."""
    if site.module is not None:  # specdsl's own GlobalPool
        return {"keepdims": site.module.keepdims} if site.module.kind == "avg" else None
    dims = site.arg(1, "dim", None)
    if dims is None or not _spatial(site, dims) or site.kwargs.get("dtype") is not None:
        return None
    return {"keepdims": bool(site.arg(2, "keepdim", False))}


def global_max(site: Site) -> dict[str, Any] | None:
    if site.module is not None:
        return {"keepdims": site.module.keepdims} if site.module.kind == "max" else None
    dims = site.arg(1, "dim", None)
    if dims is None or not _spatial(site, dims):
        return None
    return {"keepdims": bool(site.arg(2, "keepdim", False))}


def upsample(site: Site) -> dict[str, Any] | Lift:
    m = site.module
    if m is not None and hasattr(m, "scale_factor"):  # nn.Upsample and its two named forms
        size, scale, mode, corners = m.size, m.scale_factor, m.mode, m.align_corners
        if getattr(m, "recompute_scale_factor", None):
            raise Refuse("upsampling with recompute_scale_factor=True")
    elif m is not None:  # specdsl's UpsampleTo: the second input's size
        return {"mode": m.mode, "align_corners": m.align_corners}
    else:
        size, scale = site.arg(1, "size", None), site.arg(2, "scale_factor", None)
        mode, corners = site.arg(3, "mode", "nearest"), site.arg(4, "align_corners", None)
        if site.arg(5, "recompute_scale_factor", None) or site.arg(6, "antialias", False):
            raise Refuse("interpolate with recompute_scale_factor or antialias")
    args: dict[str, Any] = {"mode": mode, "align_corners": corners}
    if size is not None and site.shape_source is not None and m is None:
        # the size is another node's (DeepLab's `F.interpolate(x, size=input.shape[-2:])`): follow it
        return Lift(args, inputs=(-1, site.shape_source))
    if size is not None:
        args["size"] = axes([int(s) for s in ([size] * site.rank if isinstance(size, int) else size)])
    else:
        args["scale"] = axes([float(s) for s in ([scale] * site.rank if isinstance(scale, int | float) else scale)])
    return args


def _holder(site: Site) -> Any:
    """The module whose attributes say the op's arguments: the called module, or for a function over a
    module's own tensors (``F.batch_norm(x, self.running_mean, ...)``) the module that holds them."""
    if site.module is not None:
        return site.module
    if site.owner is None:
        raise Refuse("a call over tensors that are not one module's own")
    return site.owner


def _named(site: Site, args: dict[str, Any]) -> dict[str, Any] | Lift:
    """A function over a module's tensors is that module's node (its tensors keep their names)."""
    return args if site.module is not None else Lift(args, path=site.owner_path)


def channel_norm(kind: str) -> Reader:
    def read(site: Site) -> dict[str, Any] | Lift:
        m = _holder(site)
        return _named(site, {"eps": m.eps, "momentum": m.momentum, "affine": m.affine,
                             "track_running_stats": m.track_running_stats})

    read.__qualname__ = f"channel_norm({kind})"
    return read


def layernorm(site: Site) -> dict[str, Any]:
    m = site.module
    shape = list(m.normalized_shape)
    return {"shape": shape[0] if len(shape) == 1 else shape, "eps": m.eps,
            "elementwise_affine": m.elementwise_affine, "bias": getattr(m, "bias", None) is not None}


def groupnorm(site: Site) -> dict[str, Any] | Lift:
    m = _holder(site)
    return _named(site, {"groups": m.num_groups, "eps": m.eps, "affine": m.affine})


def layer_norm_2d(site: Site) -> dict[str, Any]:
    """LayerNorm over the channels at each position (torchvision's and timm's LayerNorm2d)."""
    m = site.module
    if getattr(m, "weight", None) is None or getattr(m, "bias", None) is None:
        raise Refuse("a channel layer norm without weight and bias")
    return {"eps": m.eps}


def plain(site: Site) -> dict[str, Any]:
    return {}


def module_fields(**fields: str) -> Reader:
    """A module whose spec arguments are its attributes (``leaky_relu(slope)``: ``negative_slope``)."""

    def read(site: Site) -> dict[str, Any]:
        return {arg: getattr(site.module, attr) for arg, attr in fields.items()}

    return read


def function_args(**fields: tuple[int, str, Any]) -> Reader:
    """A function's arguments by (position, name, default): ``F.leaky_relu(x, negative_slope=0.01)``."""

    def read(site: Site) -> dict[str, Any]:
        return {arg: site.arg(pos, name, default) for arg, (pos, name, default) in fields.items()}

    return read


def either(module: Reader, function: Reader) -> Reader:
    def read(site: Site) -> Any:
        return module(site) if site.module is not None else function(site)

    return read


def dim_arg(site: Site) -> dict[str, Any]:
    d = site.module.dim if site.module is not None else site.arg(1, "dim", None)
    if d is None:
        raise Refuse("softmax without dim")
    return {"dim": site.dim(d)}


def dropout(site: Site) -> dict[str, Any]:
    return {"p": float(site.module.p if site.module is not None else site.arg(1, "p", 0.5))}


def stochastic_depth(site: Site) -> dict[str, Any]:
    if site.module is not None:
        return {"p": float(site.module.p), "mode": site.module.mode}
    return {"p": float(site.arg(1, "p")), "mode": site.arg(2, "mode")}


def identity(site: Site) -> Any:
    return {} if site.module is not None else SAME


def flatten(site: Site) -> dict[str, Any] | None:
    if site.module is not None:
        start, end = site.module.start_dim, site.module.end_dim
    else:
        start, end = site.arg(1, "start_dim", 0), site.arg(2, "end_dim", -1)
    start = site.dim(start)
    if start == 0:
        raise Refuse("flatten over the batch axis (start_dim=0)")
    return {"start_dim": start, "end_dim": end if end == -1 else site.dim(end)}


def view_as_flatten(site: Site) -> dict[str, Any] | None:
    """``x.view(x.size(0), -1)``, ``x.reshape(n, -1)``: a flatten from axis 1 when that is what it did."""
    shape = tuple(site.inputs[0].shape)
    out = tuple(site.out.shape)
    if len(shape) > 2 and out == (shape[0], math.prod(shape[1:])):
        return {"start_dim": 1, "end_dim": -1}
    return None


def flatten_any(site: Site) -> dict[str, Any] | None:
    if site.module is None and site.method in ("view", "reshape"):
        return view_as_flatten(site)
    return flatten(site)


def linear(site: Site) -> dict[str, Any] | Lift:
    """``nn.Linear``, or ``F.linear(x, self.weight, self.bias)`` in a subclass's forward (timm's Linear)."""
    m = _holder(site)
    if site.module is None and len(site.params) != (2 if getattr(m, "bias", None) is not None else 1):
        raise Refuse("F.linear over tensors that are not its module's weight and bias")
    return _named(site, {"out": int(m.weight.shape[0]), "bias": getattr(m, "bias", None) is not None})


def elementwise(site: Site) -> dict[str, Any] | None:
    """``a + b``, ``torch.add(a, b)``, ``a.mul_(b)``: tensors only, alpha 1."""
    if site.kwargs.get("alpha", 1) != 1 or not _tensor_operands(site):
        return None
    return {}


def concat(site: Site) -> dict[str, Any]:
    d = site.dim(site.arg(1, "dim", 0))
    if d == 0:
        raise Refuse("concatenation along the batch axis")
    return {"dim": d}


def split(site: Site) -> dict[str, Any]:
    d = site.dim(site.arg(2, "dim", 0))
    if d == 0:
        raise Refuse("split along the batch axis")
    return {"sizes": [int(o.shape[d]) for o in site.out], "dim": d}


def chunk(site: Site) -> dict[str, Any]:
    d = site.dim(site.arg(2, "dim", 0))
    if d == 0:
        raise Refuse("chunk along the batch axis")
    return {"chunks": int(site.arg(1, "chunks")), "dim": d}


def channel_shuffle(site: Site) -> dict[str, Any]:
    groups = site.module.groups if site.module is not None else site.arg(1, "groups")
    return {"groups": int(groups)}


def permute(site: Site) -> dict[str, Any]:
    if site.module is not None:
        dims: Sequence[int] = site.module.dims
    else:
        rest = site.args[1:] or (site.kwargs.get("dims"),)
        dims = rest[0] if len(rest) == 1 and isinstance(rest[0], list | tuple) else rest
    dims = [site.dim(int(d)) for d in dims]
    if dims[0] != 0:
        raise Refuse("a permute that moves the batch axis")
    return {"dims": dims}


_PAD_MODES = {"ConstantPad": "constant", "ZeroPad": "constant", "ReflectionPad": "reflect",
              "ReplicationPad": "replicate", "CircularPad": "circular"}


def pad(site: Site) -> dict[str, Any]:
    m = site.module
    if m is not None:
        mode = next(v for k, v in _PAD_MODES.items() if type(m).__name__.startswith(k))
        widths, value = list(m.padding), float(getattr(m, "value", 0.0))
    else:
        widths, mode = list(site.arg(1, "pad")), site.arg(2, "mode", "constant")
        value = float(site.arg(3, "value", None) or 0.0)
    if len(widths) > 2 * site.rank or any(w < 0 for w in widths):
        raise Refuse(f"padding {widths} (negative, or of the channel axis)")
    return {"pad": widths[0] if len(set(widths)) == 1 and len(widths) == 2 * site.rank else widths,
            "mode": mode, "value": value}


def factor(attr: str) -> Reader:
    def read(site: Site) -> dict[str, Any]:
        return {"factor": int(getattr(site.module, attr) if site.module is not None else site.arg(1, attr))}

    return read


def local(site: Site) -> dict[str, Any]:
    m = site.module
    return {"out": int(m.weight.shape[len(m.out_sizes)]), "k": axes(m.kernel_size), "stride": axes(m.stride),
            "pad": axes(m.padding), "bias": m.bias is not None}


def join(site: Site) -> dict[str, Any]:
    m = site.module
    return {"drop_local": m.drop_local, "drop_global": m.drop_global, "columns": list(m.columns)}
