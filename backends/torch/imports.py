"""How each op is recognised in a traced PyTorch model: one table, read by the torch capture (capture_lift.py).

``IMPORTS`` maps every op in ``specdsl.ops.OPS`` to an :class:`ImportEntry`: the module classes, the
functions and the tensor methods that *are* the op, and a reader that takes the op's spec arguments
from the call (the inverse of the op's entry in ``lowerings.py``). An op that no PyTorch call stands
for has a ``refusal`` instead, saying why. A call no entry takes is an unmapped node, reported with its
module path and source line, never a guess.

Adding an op: write its rule and lowerings, then one entry below, e.g. ``"hardtanh": ImportEntry(
read.either(read.module_fields(min_val="min_val", max_val="max_val"), read.function_args(...)),
modules=_nn("Hardtanh"), functions=_F("hardtanh"))``. Names are strings, resolved when torch is
there, so this module imports no torch (the coverage test runs without it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from specdsl.backends.torch import import_attn as attn
from specdsl.backends.torch import import_conv, import_norms
from specdsl.backends.torch import import_evo as evo
from specdsl.backends.torch import import_fixed as fixed
from specdsl.backends.torch import import_grn as grn
from specdsl.backends.torch import import_readers as read
from specdsl.backends.torch import import_select as select
from specdsl.backends.torch.import_types import SAME, ImportEntry, Lift, Refuse, Site
from specdsl.ops.registry import OpTable

__all__ = ["IMPORTS", "SAME", "ImportEntry", "Index", "Lift", "Refuse", "Site", "index", "ops_of_class"]

_OURS = "specdsl.backends.torch.modules"  # specdsl's own modules: a spec's to_torch imports back


def _nn(*names: str, dims: bool = False) -> tuple[str, ...]:
    """``torch.nn.<Name>``; with ``dims``, its 1d/2d/3d classes."""
    return tuple(f"torch.nn.{n}{d}" for n in names for d in (("1d", "2d", "3d") if dims else ("",)))


def _F(*names: str, dims: bool = False) -> tuple[str, ...]:
    return tuple(f"torch.nn.functional.{n}{d}" for n in names for d in (("1d", "2d", "3d") if dims else ("",)))


def _act(name: str, module: str, *, torch_fn: bool = False, method: bool = False, **fields: tuple[int, str, Any]
         ) -> ImportEntry:
    """An activation: ``nn.<Module>``, ``F.<name>`` (``F.<name>_``), maybe ``torch.<name>`` and ``x.<name>()``."""
    reader = read.either(read.module_fields(**{k: v[1] for k, v in fields.items()}), read.function_args(**fields)) \
        if fields else read.plain
    functions = _F(name, f"{name}_") + ((f"torch.{name}", f"torch.{name}_") if torch_fn else ())
    return ImportEntry(reader, modules=_nn(module), functions=functions,
                       methods=(name, f"{name}_") if method else ())


IMPORTS: OpTable[ImportEntry] = OpTable("PyTorch import entry", "IMPORTS", __name__, {
    "conv": ImportEntry(import_conv.conv, modules=(
        *_nn("Conv", dims=True), f"{_OURS}.ConvSameTF", f"{_OURS}.StdConv", "timm.layers.conv2d_same.Conv2dSame",
        *(f"timm.layers.std_conv.{c}" for c in ("StdConv2d", "StdConv2dSame", "ScaledStdConv2d",
                                                 "ScaledStdConv2dSame")))),
    "deconv": ImportEntry(read.deconv, modules=_nn("ConvTranspose", dims=True)),
    "maxpool": ImportEntry(read.maxpool, modules=_nn("MaxPool", dims=True), functions=_F("max_pool", dims=True)),
    "avgpool": ImportEntry(read.avgpool, modules=_nn("AvgPool", dims=True), functions=_F("avg_pool", dims=True)),
    "gap": ImportEntry(read.global_mean, modules=(f"{_OURS}.GlobalPool",), functions=("torch.mean",),
                       methods=("mean",)),
    "gmp": ImportEntry(read.global_max, modules=(f"{_OURS}.GlobalPool",), functions=("torch.amax",),
                       methods=("amax",)),
    "adaptive_avgpool": ImportEntry(read.adaptive, modules=_nn("AdaptiveAvgPool", dims=True),
                                    functions=_F("adaptive_avg_pool", dims=True)),
    "adaptive_maxpool": ImportEntry(read.adaptive, modules=_nn("AdaptiveMaxPool", dims=True),
                                    functions=_F("adaptive_max_pool", dims=True)),
    "upsample": ImportEntry(read.upsample, modules=(*_nn("Upsample"), f"{_OURS}.UpsampleTo"),
                            functions=_F("interpolate", "upsample")),
    # F.batch_norm over a module's own tensors: timm's BatchNormAct2d (its act and drop are modules of their own).
    "bn": ImportEntry(read.channel_norm("bn"), modules=(*_nn("BatchNorm", dims=True), *_nn("SyncBatchNorm")),
                      functions=_F("batch_norm")),
    "instancenorm": ImportEntry(read.channel_norm("instancenorm"), modules=_nn("InstanceNorm", dims=True)),
    # timm's LayerNorm (channels last) is an nn.LayerNorm whose forward calls F.layer_norm alike.
    "layernorm": ImportEntry(read.layernorm, modules=(*_nn("LayerNorm"), "timm.layers.norm.LayerNorm")),
    "groupnorm": ImportEntry(read.groupnorm, modules=_nn("GroupNorm"), functions=_F("group_norm")),
    "channel_norm": ImportEntry(read.layer_norm_2d, modules=(
        "torchvision.models.convnext.LayerNorm2d", "timm.layers.norm.LayerNorm2d", f"{_OURS}.ChannelNorm")),
    "grn": ImportEntry(grn.grn, modules=(*grn.GRN_MODULES, f"{_OURS}.GlobalResponseNorm")),
    "rmsnorm": ImportEntry(grn.rmsnorm, modules=(*grn.RMS_MODULES, f"{_OURS}.RmsNorm")),
    "simplenorm": ImportEntry(grn.simplenorm, modules=(*grn.SIMPLE_MODULES, f"{_OURS}.RmsNorm")),
    "evonorm": ImportEntry(evo.evonorm, modules=(*evo.EVO_MODULES, f"{_OURS}.EvoNorm")),
    "frn": ImportEntry(evo.frn, modules=(*evo.FRN_MODULES, f"{_OURS}.FilterResponseNorm")),
    "layer_scale": ImportEntry(import_norms.layer_scale, functions=("operator.mul", "operator.imul", "torch.mul"),
                               methods=("mul", "mul_")),
    "lrn": ImportEntry(read.module_fields(size="size", alpha="alpha", beta="beta", k="k"),
                       modules=_nn("LocalResponseNorm")),
    "relu": _act("relu", "ReLU", torch_fn=True, method=True),
    "relu6": _act("relu6", "ReLU6"),
    "leaky_relu": _act("leaky_relu", "LeakyReLU", slope=(1, "negative_slope", 0.01)),
    "elu": _act("elu", "ELU", alpha=(1, "alpha", 1.0)),
    "hardtanh": _act("hardtanh", "Hardtanh", min_val=(1, "min_val", -1.0), max_val=(2, "max_val", 1.0)),
    "gelu": ImportEntry(read.either(read.module_fields(approximate="approximate"),
                                    read.function_args(approximate=(99, "approximate", "none"))),
                        modules=_nn("GELU"), functions=_F("gelu")),
    "silu": _act("silu", "SiLU"),
    "hardswish": _act("hardswish", "Hardswish"),
    "hardsigmoid": _act("hardsigmoid", "Hardsigmoid"),
    "mish": _act("mish", "Mish"),
    "selu": _act("selu", "SELU", torch_fn=True),
    "prelu": ImportEntry(read.module_fields(num_parameters="num_parameters", init="init"), modules=_nn("PReLU")),
    "sigmoid": _act("sigmoid", "Sigmoid", torch_fn=True, method=True),
    "tanh": _act("tanh", "Tanh", torch_fn=True, method=True),
    "softplus": _act("softplus", "Softplus", beta=(1, "beta", 1.0), threshold=(2, "threshold", 20.0)),
    "softmax": ImportEntry(read.dim_arg, modules=_nn("Softmax"), functions=(*_F("softmax"), "torch.softmax"),
                           methods=("softmax",)),
    "log_softmax": ImportEntry(read.dim_arg, modules=_nn("LogSoftmax"),
                               functions=(*_F("log_softmax"), "torch.log_softmax"), methods=("log_softmax",)),
    "dropout": ImportEntry(read.dropout, modules=_nn("Dropout"), functions=_F("dropout")),
    "dropout1d": ImportEntry(read.dropout, modules=_nn("Dropout1d"), functions=_F("dropout1d")),
    "dropout2d": ImportEntry(read.dropout, modules=_nn("Dropout2d"), functions=_F("dropout2d")),
    "dropout3d": ImportEntry(read.dropout, modules=_nn("Dropout3d"), functions=_F("dropout3d")),
    "stochastic_depth": ImportEntry(read.stochastic_depth, modules=(
        "torchvision.ops.StochasticDepth", "torchvision.ops.stochastic_depth.StochasticDepth",
        f"{_OURS}.StochasticDepth"), functions=("torchvision.ops.stochastic_depth.stochastic_depth",)),
    # x.contiguous() changes the memory layout alone: the node is its input.
    "identity": ImportEntry(read.identity, modules=_nn("Identity"), methods=("contiguous",)),
    "crop": ImportEntry(read.plain, modules=(f"{_OURS}.CenterCrop",)),
    "flatten": ImportEntry(read.flatten_any, modules=_nn("Flatten"), functions=("torch.flatten",),
                           methods=("flatten", "view", "reshape")),
    "linear": ImportEntry(read.linear, modules=_nn("Linear"), functions=_F("linear")),
    "join": ImportEntry(read.join, modules=(f"{_OURS}.Join",)),
    "add": ImportEntry(select.add, functions=("operator.add", "operator.iadd", "torch.add"),
                       methods=("add", "add_")),
    "mul": ImportEntry(select.mul, functions=("operator.mul", "operator.imul", "torch.mul"),
                       methods=("mul", "mul_")),
    "mean": ImportEntry(refusal="no PyTorch call is the mean of several tensors alone: torch.stack(xs).mean(0) "
                                "is a stack (no op) and (a + b) / 2 an add and a division by a constant"),
    "concat": ImportEntry(read.concat, functions=("torch.cat", "torch.concat", "torch.concatenate")),
    "split": ImportEntry(read.split, functions=("torch.split",), methods=("split",)),
    "chunk": ImportEntry(read.chunk, functions=("torch.chunk",), methods=("chunk",)),
    "part": ImportEntry(select.part, functions=("operator.getitem",)),
    "channel_shuffle": ImportEntry(read.channel_shuffle, modules=_nn("ChannelShuffle"), functions=(
        "torch.channel_shuffle", "torch.nn.functional.channel_shuffle",
        "torchvision.models.shufflenetv2.channel_shuffle")),
    "permute": ImportEntry(attn.permute, modules=("torchvision.ops.misc.Permute", f"{_OURS}.Permute"),
                           functions=("torch.permute", "torch.transpose"), methods=("permute", "transpose")),
    "pad": ImportEntry(read.pad, modules=(*_nn("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad",
                                               "CircularPad", dims=True),), functions=_F("pad")),
    "pixel_shuffle": ImportEntry(read.factor("upscale_factor"), modules=_nn("PixelShuffle"),
                                 functions=(*_F("pixel_shuffle"), "torch.pixel_shuffle")),
    "pixel_unshuffle": ImportEntry(read.factor("downscale_factor"), modules=_nn("PixelUnshuffle"),
                                   functions=(*_F("pixel_unshuffle"), "torch.pixel_unshuffle")),
    "local": ImportEntry(read.local, modules=(f"{_OURS}.LocallyConnected",)),
    # After flatten and mul, which take a view(n, -1) and a product of tensors first (import_fixed.py).
    "reshape": ImportEntry(fixed.reshape, modules=(f"{_OURS}.Reshape",), functions=("torch.reshape",),
                           methods=("view", "reshape")),
    "unsqueeze": ImportEntry(fixed.unsqueeze, modules=(f"{_OURS}.Unsqueeze",), functions=("torch.unsqueeze",),
                             methods=("unsqueeze",)),
    "squeeze": ImportEntry(fixed.squeeze, modules=(f"{_OURS}.Squeeze",), functions=("torch.squeeze",),
                           methods=("squeeze",)),
    "scale": ImportEntry(fixed.scale, functions=("operator.mul", "torch.mul"), methods=("mul",)),
    "blurpool": ImportEntry(fixed.blurpool, modules=(f"{_OURS}.BlurPool2d", "timm.layers.blur_pool.BlurPool2d")),
    "stack": ImportEntry(attn.stack, functions=("torch.stack",)),
    "sum": ImportEntry(attn.sum_, functions=("torch.sum",), methods=("sum",)),
    "condconv": ImportEntry(attn.condconv, modules=(f"{_OURS}.CondConv2d", "timm.layers.cond_conv2d.CondConv2d")),
})


@dataclass
class Index:
    """The table turned around, for the capture: which ops a class, a function or a method may be."""

    by_class: dict[type, list[str]]
    by_function: dict[Any, list[str]]
    by_method: dict[str, list[str]]
    # Plain Python functions in the table (torchvision's channel_shuffle): recorded as one call.
    autowrap: tuple[Callable[..., Any], ...]


def _resolve(dotted: str) -> Any | None:
    """The object a dotted name names, or None where its package is not installed or lacks it."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return obj
    return None


_INDEX: dict[frozenset[str], Index] = {}


def _loaded(dotted: str) -> bool:
    """Whether the name's package is imported already: a class of a package nobody imported cannot be
    in the model, and importing timm just in case would cost seconds."""
    import sys

    return dotted.split(".")[0] in sys.modules


def index() -> Index:
    """The reverse lookups (this imports torch), for the packages imported so far (torchvision, timm)."""
    import sys

    roots = frozenset(r for r in ("torchvision", "timm") if r in sys.modules)
    if roots not in _INDEX:
        _INDEX[roots] = _build()
    return _INDEX[roots]


def _build() -> Index:
    import types

    import torch  # noqa: F401 - the names below are torch's

    by_class: dict[type, list[str]] = {}
    by_function: dict[Any, list[str]] = {}
    by_method: dict[str, list[str]] = {}
    autowrap: list[Callable[..., Any]] = []
    for op, entry in IMPORTS.items():
        for name in entry.modules:
            cls = _resolve(name) if _loaded(name) else None
            if isinstance(cls, type) and op not in by_class.get(cls, []):
                by_class.setdefault(cls, []).append(op)
        for name in entry.functions:
            fn = _resolve(name) if _loaded(name) else None
            if fn is None:
                continue
            by_function.setdefault(fn, []).append(op)
            if isinstance(fn, types.FunctionType) and fn.__module__.split(".")[0] != "torch":
                autowrap.append(fn)
        for method in entry.methods:
            by_method.setdefault(method, []).append(op)
    return Index(by_class, by_function, by_method, tuple(autowrap))


def ops_of_class(idx: Index, cls: type) -> list[str] | None:
    """The ops a module class may be: its own entry, or that of the table class it derives from without
    overriding forward (torchvision's Conv3DSimple is an nn.Conv3d); None when none."""
    for base in cls.__mro__:
        if base in idx.by_class:
            same_forward = getattr(cls, "forward", None) is getattr(base, "forward", None)
            return idx.by_class[base] if base is cls or same_forward else None
    return None
