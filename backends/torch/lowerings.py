"""How each op becomes PyTorch: one table, read by ``to_torch`` (fx.py) and the emitter (emit*.py).

``LOWERINGS`` maps every op name in ``specdsl.ops.OPS`` to one of

* :class:`ModuleLowering`: the op runs as a module. ``ctor(attrs, rank, inplace)``
  returns a :class:`Ctor`, the constructor call kept as data
  (``nn.Conv2d(3, 64, kernel_size=7, bias=False)``): ``to_torch`` instantiates it, the
  emitter prints it (with block parameters in place of channel counts);
* :class:`FunctionLowering`: the op is an expression of its inputs, written as ordinary
  Python (``(a + b) / 2``, ``torch.cat([a, b], dim=1)``). ``to_torch`` runs it on fx
  proxies, which records graph nodes; the emitter runs it on ``SourceExpr`` names and
  prints the result (see ``source_expr.py``);
* :class:`ParameterLowering`: the op's one tensor is a parameter of its container named by
  the node (TensorSpec.of_container: torchvision's ``CNBlock.layer_scale``). ``to_torch``
  registers it on the parent and reads it with ``get_attr``; the emitter writes
  ``self.<name> = nn.Parameter(...)`` (or ``register_parameter``) and ``x * self.<name>``.

``attrs`` is the node's analysis figure ``.attrs`` (``ConvAttrs``, ``PoolAttrs``, ..., or
the validated args), ``rank`` the number of spatial axes of the (first) input, and
``inplace`` whether ``passes.inplace.inplace_activations`` lets the node overwrite its input.

A missing entry is an error that names the op (:func:`lowering_for`), never a fallback.
This module must not import torch: the emitter reads it, and emitting needs no torch.

Adding an op: write its rule in ``specdsl/ops`` (which adds it to ``OPS``), then add one
entry below, e.g. ``"hardtanh": ModuleLowering(lambda a, rank, inplace: _call("nn.Hardtanh",
a.min, a.max))`` or ``"mul": FunctionLowering(lambda xs, a, torch: functools.reduce(operator.mul,
xs))``. A module that ``torch.nn`` lacks goes in ``modules.py`` and is named without ``nn.``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

from specdsl.backends.torch import lowerings_norm_evo as norm_evo
from specdsl.backends.torch import lowerings_norm_global as norm_global
from specdsl.backends.torch.lowering_types import (
    Ctor,
    CtorFn,
    FilledParameter,
    FunctionLowering,
    ModuleLowering,
    ParameterLowering,
)
from specdsl.ops.registry import OpTable

__all__ = ["LOWERINGS", "Ctor", "CtorFn", "FilledParameter", "FunctionLowering", "Lowering", "ModuleLowering",
           "ParameterLowering", "fractal_sampling", "lowering_for"]

_DIMS = {0: "1d", 1: "1d", 2: "2d", 3: "3d"}


Lowering = ModuleLowering | FunctionLowering | ParameterLowering


def lowering_for(op: str) -> Lowering:
    """The op's entry; a missing one raises :class:`~specdsl.ops.registry.MissingEntry`."""
    return LOWERINGS[op]


# -- module lowerings --------------------------------------------------------------


def _call(name: str, *args: Any, channels_in: tuple[Any, ...] = (), channels_out: tuple[Any, ...] = (),
          **kwargs: Any) -> Ctor:
    return Ctor(name, tuple(args), tuple(kwargs.items()), channels_in, channels_out)


def _axes(values: tuple[int, ...]) -> Any:
    """One number when every axis agrees (``kernel_size=3``), else the tuple."""
    return values[0] if len(set(values)) == 1 else values


def _conv(a: Any, rank: int, inplace: bool) -> Ctor:
    # same_tf at stride 1 with an odd dilated kernel pads d(k-1)/2 on both sides whatever the input's
    # size (timm's is_static_pad): a plain nn.Conv, as timm builds it.
    if a.ws or (a.same_tf and any(s != 1 or d * (k - 1) % 2 for k, s, d in zip(a.kernel, a.stride, a.dilation))):
        return _helper_conv(a)
    kw: dict[str, Any] = {"kernel_size": _axes(a.kernel)}
    if any(s != 1 for s in a.stride):
        kw["stride"] = _axes(a.stride)
    if a.same:
        kw["padding"] = "same"
    elif any(a.padding):
        kw["padding"] = _axes(a.padding)
    if any(v != 1 for v in a.dilation):
        kw["dilation"] = _axes(a.dilation)
    if a.groups != 1:
        kw["groups"] = a.groups
    if not a.bias:
        kw["bias"] = False
    if a.padding_mode != "zeros":
        kw["padding_mode"] = a.padding_mode
    return _call(f"nn.Conv{_DIMS[rank]}", a.in_channels, a.out_channels, channels_in=(0,), channels_out=(1,), **kw)


def _helper_conv(a: Any) -> Ctor:
    """StdConv (ws) or ConvSameTF (pad=same_tf) of modules_conv.py: timm's keys, padding from the input."""
    kw: dict[str, Any] = {"kernel_size": a.kernel, "stride": a.stride}
    if any(v != 1 for v in a.dilation):
        kw["dilation"] = a.dilation
    if a.groups != 1:
        kw["groups"] = a.groups
    if not a.bias:
        kw["bias"] = False
    if a.same_tf and a.ws:
        kw["same_tf"] = True
    elif not a.same_tf:
        kw["padding"] = a.padding
        if a.padding_after != a.padding:
            kw["padding_after"] = a.padding_after
    if a.gain:
        kw["gain"] = True
        if a.gamma != 1.0:
            kw["gamma"] = a.gamma
    if a.ws and a.eps != 1e-6:
        kw["eps"] = a.eps
    return _call("StdConv" if a.ws else "ConvSameTF", a.in_channels, a.out_channels, channels_in=(0,),
                 channels_out=(1,), **kw)


def _deconv(a: Any, rank: int, inplace: bool) -> Ctor:
    kw: dict[str, Any] = {"kernel_size": _axes(a.kernel), "stride": _axes(a.stride), "padding": _axes(a.padding)}
    if any(a.output_padding):
        kw["output_padding"] = _axes(a.output_padding)
    if a.groups != 1:
        kw["groups"] = a.groups
    if not a.bias:
        kw["bias"] = False
    if any(v != 1 for v in a.dilation):
        kw["dilation"] = _axes(a.dilation)
    return _call(f"nn.ConvTranspose{_DIMS[rank]}", a.in_channels, a.out_channels, channels_in=(0,),
                 channels_out=(1,), **kw)


def _maxpool(a: Any, rank: int, inplace: bool) -> Ctor:
    kw: dict[str, Any] = {"kernel_size": _axes(a.kernel), "stride": _axes(a.stride)}
    if any(a.padding):
        kw["padding"] = _axes(a.padding)
    if any(v != 1 for v in a.dilation):
        kw["dilation"] = _axes(a.dilation)
    if a.ceil_mode:
        kw["ceil_mode"] = True
    return _call(f"nn.MaxPool{_DIMS[rank]}", **kw)


def _avgpool(a: Any, rank: int, inplace: bool) -> Ctor:
    kw: dict[str, Any] = {"kernel_size": _axes(a.kernel), "stride": _axes(a.stride)}
    if any(a.padding):
        kw["padding"] = _axes(a.padding)
    if a.ceil_mode:
        kw["ceil_mode"] = True
    if not a.count_include_pad:
        kw["count_include_pad"] = False
    return _call(f"nn.AvgPool{_DIMS[rank]}", **kw)


def _global_pool(kind: str) -> CtorFn:
    return lambda a, rank, inplace: _call("GlobalPool", rank, kind, a.keepdims)


def _adaptive_pool(kind: str) -> CtorFn:
    return lambda a, rank, inplace: _call(f"nn.Adaptive{kind}Pool{_DIMS[rank]}", _axes(a.out_size))


def _upsample(a: Any, rank: int, inplace: bool) -> Ctor:
    if a.like:  # [@x, @ref] -> upsample: the size is ref's, at run time
        return _call("UpsampleTo", a.mode, **({} if a.align_corners is None else {"align_corners": a.align_corners}))
    kw: dict[str, Any] = {"scale_factor": a.scale} if a.scale is not None else {"size": a.size}
    kw["mode"] = a.mode
    if a.align_corners is not None:
        kw["align_corners"] = a.align_corners
    return _call("nn.Upsample", **kw)


def _channel_norm(kind: str, affine: bool, track_running_stats: bool) -> CtorFn:
    """BatchNorm / InstanceNorm: the arguments that differ from PyTorch's defaults."""

    def ctor(a: Any, rank: int, inplace: bool) -> Ctor:
        kw: dict[str, Any] = {}
        if a.eps != 1e-5:
            kw["eps"] = a.eps
        if a.momentum != 0.1:
            kw["momentum"] = a.momentum
        if a.affine != affine:
            kw["affine"] = a.affine
        if a.track_running_stats != track_running_stats:
            kw["track_running_stats"] = a.track_running_stats
        return _call(f"nn.{kind}{_DIMS[rank]}", a.num_features, channels_in=(0,), **kw)

    return ctor


def _layernorm(a: Any, rank: int, inplace: bool) -> Ctor:
    kw: dict[str, Any] = {}
    if a.eps != 1e-5:
        kw["eps"] = a.eps
    if not a.elementwise_affine:
        kw["elementwise_affine"] = False
    if not a.bias:
        kw["bias"] = False
    return _call("nn.LayerNorm", list(a.normalized_shape), **kw)


def _groupnorm(a: Any, rank: int, inplace: bool) -> Ctor:
    kw: dict[str, Any] = {"eps": a.eps} if a.eps != 1e-5 else {}
    if not a.affine:
        kw["affine"] = False
    return _call("nn.GroupNorm", a.num_groups, a.num_channels, channels_in=(1,), **kw)


def _plain(name: str, *, can_run_in_place: bool = False) -> CtorFn:
    """A module without arguments (``nn.ReLU()``), ``inplace=True`` where allowed and asked for."""
    return lambda a, rank, inplace: _call(name, **_in_place(can_run_in_place and inplace))


def _in_place(inplace: bool) -> dict[str, Any]:
    return {"inplace": True} if inplace else {}


def _dropout(name: str) -> CtorFn:
    return lambda a, rank, inplace: _call(name, a.p)


def _linear(a: Any, rank: int, inplace: bool) -> Ctor:
    kw = {} if a.bias else {"bias": False}
    return _call("nn.Linear", a.in_features, a.out_features, channels_in=(0,), channels_out=(1,), **kw)


def _prelu(a: Any, rank: int, inplace: bool) -> Ctor:
    kw: dict[str, Any] = {"init": a.init} if a.init != 0.25 else {}
    if a.num_parameters == 1:
        return _call("nn.PReLU", **kw)
    return _call("nn.PReLU", a.num_parameters, channels_in=(0,), **kw)


def _channel_layernorm(a: Any, rank: int, inplace: bool) -> Ctor:
    return _call("ChannelNorm", a.num_channels, channels_in=(0,), **({"eps": a.eps} if a.eps != 1e-5 else {}))


_PAD_MODULES = {"constant": "ConstantPad", "reflect": "ReflectionPad", "replicate": "ReplicationPad",
                "circular": "CircularPad"}


def _pad(a: Any, rank: int, inplace: bool) -> Ctor:
    widths = a.padding[0] if len(set(a.padding)) == 1 else a.padding
    name = f"nn.{_PAD_MODULES[a.mode]}{_DIMS[rank]}"
    return _call(name, widths, a.value) if a.mode == "constant" else _call(name, widths)


def _local(a: Any, rank: int, inplace: bool) -> Ctor:
    kw: dict[str, Any] = {"out_sizes": a.out_sizes, "kernel_size": a.kernel, "stride": a.stride,
                          "padding": a.padding}
    if not a.bias:
        kw["bias"] = False
    return _call("LocallyConnected", a.in_channels, a.out_channels, channels_in=(0,), channels_out=(1,), **kw)


def _join(a: Any, rank: int, inplace: bool) -> Ctor:
    # The emitted file passes the model's shared FractalPath; to_torch passes its own object.
    return Ctor("Join", (a.drop_local, a.drop_global, tuple(a.columns)), fractal_path=True)


def fractal_sampling(ctors: Iterable[Ctor]) -> tuple[int, float] | None:
    """How a model with fractal joins samples a column per training batch (global drop-path):
    (the number of columns, the probability), read from its Join constructors; None without joins."""
    joins = [c.args for c in ctors if c.fractal_path]  # (drop_local, drop_global, columns)
    if not joins:
        return None
    return max(max(columns or (1,)) for _, _, columns in joins), max(drop_global for _, drop_global, _ in joins)


# -- function lowerings --------------------------------------------------------------


def _sum(inputs: Sequence[Any], a: Any, torch: Any) -> Any:
    return functools.reduce(operator.add, inputs)


def _product(inputs: Sequence[Any], a: Any, torch: Any) -> Any:
    return functools.reduce(operator.mul, inputs)


def _broadcast_channels(channels: Sequence[str | None], a: Any) -> str | None:
    """The channels of the first input not repeated along channels (a [1, H, W] map broadcasts)."""
    full = [c for c, flags in zip(channels, a.broadcast or [()] * len(channels)) if not flags or not flags[0]]
    return full[0] if full else None


def _mean(inputs: Sequence[Any], a: Any, torch: Any) -> Any:
    return functools.reduce(operator.add, inputs) / len(inputs)


def _concat(inputs: Sequence[Any], a: Any, torch: Any) -> Any:
    return torch.cat(list(inputs), dim=a.dim)


def _concat_channels(channels: Sequence[str | None], a: Any) -> str | None:
    """Along the channel axis, the channels add up."""
    names = [c for c in channels if c]
    return " + ".join(names) if a.dim == 1 and len(names) == len(channels) else None


def _split(inputs: Sequence[Any], a: Any, torch: Any) -> Any:
    return torch.split(inputs[0], list(a.sizes), dim=a.dim)


def _chunk(inputs: Sequence[Any], a: Any, torch: Any) -> Any:
    return torch.chunk(inputs[0], len(a.sizes), dim=a.dim)


def _part(inputs: Sequence[Any], a: Any, torch: Any) -> Any:
    return inputs[0][a.index]


# -- the table -------------------------------------------------------------------------

LOWERINGS: OpTable[Lowering] = OpTable("PyTorch lowering", "LOWERINGS", __name__, {
    "conv": ModuleLowering(_conv),
    "deconv": ModuleLowering(_deconv),
    "maxpool": ModuleLowering(_maxpool),
    "avgpool": ModuleLowering(_avgpool),
    "gap": ModuleLowering(_global_pool("avg")),
    "gmp": ModuleLowering(_global_pool("max")),
    "adaptive_avgpool": ModuleLowering(_adaptive_pool("Avg")),
    "adaptive_maxpool": ModuleLowering(_adaptive_pool("Max")),
    "upsample": ModuleLowering(_upsample),
    "bn": ModuleLowering(_channel_norm("BatchNorm", affine=True, track_running_stats=True)),
    "instancenorm": ModuleLowering(_channel_norm("InstanceNorm", affine=False, track_running_stats=False)),
    "layernorm": ModuleLowering(_layernorm),
    "groupnorm": ModuleLowering(_groupnorm),
    "lrn": ModuleLowering(lambda a, rank, inplace: _call("nn.LocalResponseNorm", a.size, alpha=a.alpha, beta=a.beta,
                                                         k=a.k)),
    "relu": ModuleLowering(_plain("nn.ReLU", can_run_in_place=True)),
    "relu6": ModuleLowering(_plain("nn.ReLU6", can_run_in_place=True)),
    "leaky_relu": ModuleLowering(lambda a, rank, inplace: _call("nn.LeakyReLU", a.slope, **_in_place(inplace))),
    "elu": ModuleLowering(lambda a, rank, inplace: _call("nn.ELU", a.alpha)),
    "hardtanh": ModuleLowering(lambda a, rank, inplace: _call("nn.Hardtanh", a.min_val, a.max_val)),
    "gelu": ModuleLowering(lambda a, rank, inplace: _call("nn.GELU", approximate=a.approximate)),
    "silu": ModuleLowering(_plain("nn.SiLU", can_run_in_place=True)),
    "hardswish": ModuleLowering(_plain("nn.Hardswish", can_run_in_place=True)),
    "sigmoid": ModuleLowering(_plain("nn.Sigmoid")),
    "tanh": ModuleLowering(_plain("nn.Tanh")),
    "softplus": ModuleLowering(lambda a, rank, inplace: _call("nn.Softplus", beta=a.beta, threshold=a.threshold)),
    "softmax": ModuleLowering(lambda a, rank, inplace: _call("nn.Softmax", dim=a.dim)),
    "log_softmax": ModuleLowering(lambda a, rank, inplace: _call("nn.LogSoftmax", dim=a.dim)),
    "dropout": ModuleLowering(_dropout("nn.Dropout")),
    "dropout1d": ModuleLowering(_dropout("nn.Dropout1d")),
    "dropout2d": ModuleLowering(_dropout("nn.Dropout2d")),
    "dropout3d": ModuleLowering(_dropout("nn.Dropout3d")),
    "identity": ModuleLowering(_plain("nn.Identity")),
    "crop": ModuleLowering(lambda a, rank, inplace: _call("CenterCrop")),
    "flatten": ModuleLowering(lambda a, rank, inplace: _call("nn.Flatten", a.start_dim, a.end_dim)),
    "linear": ModuleLowering(_linear),
    "join": ModuleLowering(_join),
    "add": FunctionLowering(_sum, channels=_broadcast_channels),
    "mul": FunctionLowering(_product, channels=_broadcast_channels),
    "mean": FunctionLowering(_mean),
    "concat": FunctionLowering(_concat, channels=_concat_channels),
    "split": FunctionLowering(_split),
    "chunk": FunctionLowering(_chunk),
    "part": FunctionLowering(_part),
    "channel_shuffle": ModuleLowering(lambda a, rank, inplace: _call("nn.ChannelShuffle", a.groups)),
    "hardsigmoid": ModuleLowering(_plain("nn.Hardsigmoid")),
    "mish": ModuleLowering(_plain("nn.Mish")),
    "selu": ModuleLowering(_plain("nn.SELU")),
    "prelu": ModuleLowering(_prelu),
    "stochastic_depth": ModuleLowering(lambda a, rank, inplace: _call("StochasticDepth", a.p, mode=a.mode)),
    "channel_norm": ModuleLowering(_channel_layernorm),
    "evonorm": ModuleLowering(norm_evo.evonorm),
    "frn": ModuleLowering(norm_evo.frn),
    "grn": ModuleLowering(norm_global.grn),
    "rmsnorm": ModuleLowering(norm_global.rmsnorm),
    "simplenorm": ModuleLowering(norm_global.simplenorm),
    "layer_scale": ParameterLowering(
        lambda a, rank, inplace: FilledParameter("nn.Parameter", (a.shape[0],), (("rank", len(a.shape) - 1),
                                                                                 ("fill", a.init)), channels_in=(0,)),
        # A flat gamma [C] is viewed against the batch in forward, as timm's gamma.reshape(1, -1, 1, 1).
        lambda x, p, a, torch: x * torch.reshape(p, a.view) if a.view else x * p),
    "permute": ModuleLowering(lambda a, rank, inplace: _call("Permute", list(a.dims))),
    "pad": ModuleLowering(_pad),
    "pixel_shuffle": ModuleLowering(lambda a, rank, inplace: _call("nn.PixelShuffle", a.factor)),
    "pixel_unshuffle": ModuleLowering(lambda a, rank, inplace: _call("nn.PixelUnshuffle", a.factor)),
    "local": ModuleLowering(_local),
    "reshape": ModuleLowering(lambda a, rank, inplace: _call("Reshape", list(a.shape))),
    "unsqueeze": ModuleLowering(lambda a, rank, inplace: _call("Unsqueeze", a.dim)),
    "squeeze": ModuleLowering(lambda a, rank, inplace: _call("Squeeze", a.dim)),
    "scale": FunctionLowering(lambda xs, a, torch: xs[0] * a.value),
    "blurpool": ModuleLowering(lambda a, rank, inplace: _call("BlurPool2d", a.channels, filt_size=a.filt,
                                                              stride=a.stride[0], pad_mode=a.pad_mode,
                                                              channels_in=(0,))),
    "stack": FunctionLowering(lambda xs, a, torch: torch.stack(list(xs), dim=a.dim)),
    "sum": FunctionLowering(lambda xs, a, torch: torch.sum(xs[0], dim=a.written, keepdim=a.keepdims)),
    "condconv": ModuleLowering(lambda a, rank, inplace: _call("CondConv2d", a.conv.in_channels, a.conv.out_channels,
        a.conv.kernel, a.conv.stride, a.conv.padding, a.conv.dilation, groups=a.conv.groups, bias=a.conv.bias,
        num_experts=a.experts, channels_in=(0,), channels_out=(1,))),
})
