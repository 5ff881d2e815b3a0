"""Convolution and transposed convolution, 1D/2D/3D."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Literal, NamedTuple

from specdsl.ops.model import Field
from specdsl.ops.rule import (
    Args,
    AxisRF,
    Inferred,
    IntPerAxis,
    NonNegPerAxis,
    OpRule,
    PositiveInt,
    RuleContext,
    RuleViolation,
    Shape,
    TensorSpec,
    Trait,
    Window,
    axes_text,
    check_in,
    numel,
    per_axis,
    require_rank,
    rf_window,
)
from specdsl.ops.window import same_padding, tf_same_padding, window_output

Groups = PositiveInt | Literal["depthwise"]


class ConvArgs(Args):
    out: PositiveInt = Field(description="output channels")
    k: IntPerAxis = Field(description="kernel size, one number or one per spatial axis")
    stride: IntPerAxis = 1
    pad: NonNegPerAxis | Literal["same", "valid", "same_tf"] = Field(
        default=0, description="padding per axis, 'same' (PyTorch's, stride 1), 'valid' (none) or 'same_tf' "
        "(TensorFlow's SAME at any stride: ceil(n / stride) outputs, the odd pixel after, from the input's size)")
    dilation: IntPerAxis = 1
    groups: Groups = 1
    bias: bool = True
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"
    in_: PositiveInt | None = Field(default=None, alias="in", description="expected input channels (checked)")
    ws: bool = Field(default=False, description="standardise the weight per output channel at run time "
                     "(zero mean, unit variance; timm's StdConv2d, BiT)")
    gain: bool = Field(default=False, description="with ws: a learned gain [C_out, 1, ...] times "
                       "gamma / sqrt(fan_in) (timm's ScaledStdConv2d, NFNets)")
    gamma: float = Field(default=1.0, description="with gain: the gain's constant factor")
    eps: float = Field(default=1e-6, gt=0, description="with ws: added to the weight's variance")


class DeconvArgs(Args):
    out: PositiveInt = Field(description="output channels")
    k: IntPerAxis
    stride: IntPerAxis = 1
    pad: NonNegPerAxis = 0
    output_padding: NonNegPerAxis = 0
    dilation: IntPerAxis = 1
    groups: Groups = 1
    bias: bool = True
    in_: PositiveInt | None = Field(default=None, alias="in")


class ConvAttrs(NamedTuple):
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]  # before the first element, per axis
    padding_after: tuple[int, ...]
    same: bool  # written as pad='same' (PyTorch pads asymmetrically itself)
    groups: int
    bias: bool
    padding_mode: str
    windows: tuple[Window, ...]
    # pad='same_tf': padding and padding_after are this input's; the lowerings compute them from
    # the input's size at run time (tf_same_padding), so another input size stays exact.
    same_tf: bool = False
    ws: bool = False  # weight standardisation: (w - mean) / sqrt(var + eps) per output channel
    gain: bool = False  # ... times gain · gamma / sqrt(fan_in)
    gamma: float = 1.0
    eps: float = 1e-6


class DeconvAttrs(NamedTuple):
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int
    bias: bool


def _groups(groups: int | str, in_c: int, out_c: int) -> int:
    g = in_c if groups == "depthwise" else int(groups)
    if in_c % g:
        raise RuleViolation(
            "E303",
            f"groups must divide the input channels; received groups={g}, in_channels={in_c}",
            hint="pick groups from the divisors of the input channels",
            field="groups",
        )
    if out_c % g:
        raise RuleViolation(
            "E303",
            f"groups must divide the output channels; received groups={g}, out={out_c}",
            hint=f"make out a multiple of {g}",
            field="groups",
        )
    return g


Axes = tuple[int, ...]


def _window_axes(args: ConvArgs | DeconvArgs, x: Shape, op: str) -> tuple[int, int, Axes, Axes, Axes]:
    """What conv and transposed conv read alike: rank, input channels, kernel, stride, dilation."""
    rank = require_rank(x, (1, 2, 3), op)
    check_in(args.in_, x[0], "input channels")
    kernel = per_axis(args.k, rank, "kernel size k", "k")
    stride = per_axis(args.stride, rank, "stride", "stride")
    dilation = per_axis(args.dilation, rank, "dilation", "dilation")
    return rank, x[0], kernel, stride, dilation


def infer_conv(args: ConvArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    rank, in_c, kernel, stride, dilation = _window_axes(args, x, "conv")
    groups = _groups(args.groups, in_c, args.out)
    _check_pairings(args)
    if args.pad == "same_tf":
        pads = [tf_same_padding(x[1 + i], kernel[i], stride[i], dilation[i]) for i in range(rank)]
    elif args.pad == "same":
        if any(s != 1 for s in stride):
            raise RuleViolation(
                "E308",
                f"padding 'same' works only at stride 1 (PyTorch rule); received stride={list(stride)}",
                hint="give explicit padding, e.g. pad: (k - 1) // 2",
                field="pad",
            )
        pads = [same_padding(k, d) for k, d in zip(kernel, dilation, strict=True)]
    else:
        sym = per_axis(0 if args.pad == "valid" else args.pad, rank, "padding", "pad")
        pads = [(p, p) for p in sym]
    if args.ws and in_c // groups * numel(kernel) == 1:
        raise RuleViolation(
            "E386",
            "weight standardisation needs more than one weight per output channel (one standardises to 0, "
            f"and timm's batch norm over them refuses it); received in_channels / groups = {in_c // groups} "
            f"and kernel {list(kernel)}",
            hint="drop ws=true on this conv", field="ws")
    out_sizes = []
    for i in range(rank):
        n = x[1 + i]
        before, after = pads[i]
        if args.padding_mode == "reflect" and max(before, after) >= n:
            raise RuleViolation(
                "E309",
                f"reflect padding must be smaller than the input; received pad={max(before, after)} "
                f"for size {n}",
                field="pad",
            )
        if args.padding_mode == "circular" and max(before, after) > n:
            raise RuleViolation(
                "E309",
                f"circular padding may wrap around the input at most once (PyTorch rule); "
                f"received pad={max(before, after)} for size {n}",
                field="pad",
            )
        out_sizes.append(
            window_output(n, kernel[i], stride[i], before, after, dilation[i], rank=rank, axis=i, ctx=ctx)
        )
    attrs = ConvAttrs(
        in_channels=in_c,
        out_channels=args.out,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        padding=tuple(p[0] for p in pads),
        padding_after=tuple(p[1] for p in pads),
        same=args.pad == "same",
        groups=groups,
        bias=args.bias,
        padding_mode=args.padding_mode,
        windows=tuple(
            Window(d * (k - 1) + 1, s, p[0]) for k, s, d, p in zip(kernel, stride, dilation, pads, strict=True)
        ),
        same_tf=args.pad == "same_tf",
        ws=args.ws,
        gain=args.gain,
        gamma=args.gamma,
        eps=args.eps,
    )
    return Inferred((args.out, *out_sizes), attrs)


def _check_pairings(args: ConvArgs) -> None:
    """Arguments that mean something only beside another: the standardisation's, and same_tf's zeros."""
    given = args.model_fields_set
    needs = [("gain", "ws", args.gain and not args.ws),
             ("eps", "ws", "eps" in given and not args.ws),
             ("gamma", "gain", "gamma" in given and not args.gain)]
    for field, other, bad in needs:
        if bad:
            raise RuleViolation(
                "E386",
                f"{field} applies only to a conv with {other}=true; received {field}="
                f"{str(getattr(args, field)).lower()} with {other}=false",
                hint=f"add {other}=true, or drop {field}",
                field=field,
            )
    if (args.pad == "same_tf" or args.ws) and args.padding_mode != "zeros":
        what = "pad=same_tf pads with zeros (TensorFlow's SAME)" if args.pad == "same_tf" else \
            "a weight-standardised conv pads with zeros (timm's StdConv2d)"
        raise RuleViolation(
            "E386",
            f"{what}; received padding_mode={args.padding_mode}",
            hint="drop padding_mode, or give the padding as numbers",
            field="padding_mode",
        )


def conv_weights(a: ConvAttrs) -> tuple[TensorSpec, ...]:
    fan_in = a.in_channels // a.groups * numel(a.kernel)
    weight = TensorSpec("weight", (a.out_channels, a.in_channels // a.groups, *a.kernel),
                        init="kaiming_fan_out", fan_in=float(fan_in))
    tensors = (weight, TensorSpec("bias", (a.out_channels,), init="zeros")) if a.bias else (weight,)
    # timm's ScaledStdConv2d registers its gain after nn.Conv2d's weight and bias: [C_out, 1, 1, 1], ones.
    return (*tensors, TensorSpec("gain", (a.out_channels, 1, *(1,) * len(a.kernel)), init="ones")) if a.gain \
        else tensors


def conv_macs(a: ConvAttrs, ins: Sequence[Shape], out: Shape) -> int:
    # Every output element is a dot product over (C_in / groups) · prod(kernel) inputs.
    return numel(out) * (a.in_channels // a.groups) * numel(a.kernel)


def bias_adds(a: ConvAttrs | DeconvAttrs, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out) if a.bias else 0


def window_summary(op: str, a: Any) -> str:
    """``conv 3×3 s2 p1 d2 g32``: kernel, then whatever differs from the default."""
    text = f"{op} {'×'.join(map(str, a.kernel))}"
    if any(s != 1 for s in a.stride):
        text += f" s{axes_text(a.stride)}"
    if any(a.padding) or any(getattr(a, "padding_after", ())):
        text += f" p{axes_text(a.padding)}"
    if any(d != 1 for d in a.dilation):
        text += f" d{axes_text(a.dilation)}"
    if getattr(a, "groups", 1) != 1:
        text += f" g{a.groups}"
    if getattr(a, "same_tf", False):
        text += " same_tf"
    if getattr(a, "ws", False):
        text += " ws"
    return text


def channels_detail(op: str, a: ConvAttrs | DeconvAttrs) -> str:
    return f"{a.out_channels} ch"


def infer_deconv(args: DeconvArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    rank, in_c, kernel, stride, dilation = _window_axes(args, x, "deconv")
    pad = per_axis(args.pad, rank, "padding", "pad")
    out_pad = per_axis(args.output_padding, rank, "output_padding", "output_padding")
    groups = _groups(args.groups, in_c, args.out)
    sizes = []
    for i in range(rank):
        if out_pad[i] >= max(stride[i], dilation[i]):
            raise RuleViolation(
                "E310",
                "output_padding must be smaller than stride or dilation (PyTorch rule); "
                f"received output_padding={out_pad[i]}, stride={stride[i]}, dilation={dilation[i]}",
                field="output_padding",
            )
        size = (x[1 + i] - 1) * stride[i] - 2 * pad[i] + dilation[i] * (kernel[i] - 1) + out_pad[i] + 1
        if size <= 0:
            raise RuleViolation(
                "E301",
                f"output size must be positive; received ({x[1 + i]} - 1)·{stride[i]} - 2·{pad[i]} "
                f"+ {dilation[i]}·({kernel[i]} - 1) + {out_pad[i]} + 1 = {size}",
                hint="reduce the padding",
                field="pad",
            )
        sizes.append(size)
    attrs = DeconvAttrs(
        in_channels=in_c,
        out_channels=args.out,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        padding=pad,
        output_padding=out_pad,
        groups=groups,
        bias=args.bias,
    )
    return Inferred((args.out, *sizes), attrs)


def deconv_weights(a: DeconvAttrs) -> tuple[TensorSpec, ...]:
    # Each output sees about k / stride inputs per axis.
    fan_in = max(a.in_channels // a.groups * numel(a.kernel) / numel(a.stride), 1.0)
    # PyTorch's own initialisation: torchvision initialises no transposed conv.
    weight = TensorSpec("weight", (a.in_channels, a.out_channels // a.groups, *a.kernel), fan_in=float(fan_in))
    return (weight, TensorSpec("bias", (a.out_channels,))) if a.bias else (weight,)


def deconv_macs(a: DeconvAttrs, ins: Sequence[Shape], out: Shape) -> int:
    # torch.utils.flop_counter: each input element scatters into C_out/groups · prod(k) outputs.
    x = ins[0]
    return numel(x[1:]) * a.in_channels * (a.out_channels // a.groups) * numel(a.kernel)


def rf_deconv(a: DeconvAttrs, ins: Sequence[Any]) -> Any:
    """Transposed conv = zero-insertion by s, then a stride-1 conv padded by d(k-1) - p."""
    rf = ins[0]
    if rf is None:
        return None
    out = []
    for axis, k, s, d, p in zip(rf, a.kernel, a.stride, a.dilation, a.padding, strict=True):
        j: int | Fraction = Fraction(axis.stride) / s
        k_eff = d * (k - 1) + 1
        j = int(j) if j.denominator == 1 else j
        size = axis.size + (k_eff - 1) * j
        pad = axis.pad + (k_eff - 1 - p) * j
        out.append(AxisRF(size, j, pad))
    return tuple(out)


_CONV_TRAITS = frozenset({Trait.OVERWRITABLE_OUTPUT})

RULES = [
    OpRule("conv", "conv", ConvArgs, infer_conv, conv_weights, conv_macs, bias_adds, rf_window,
           positional=("out", "k"), summary=window_summary, detail=channels_detail, traits=_CONV_TRAITS,
           ranks=frozenset({1, 2, 3}), doc="convolution (nn.Conv1d/2d/3d by input rank)"),
    OpRule("deconv", "conv", DeconvArgs, infer_deconv, deconv_weights, deconv_macs, bias_adds, rf_deconv,
           positional=("out", "k"), summary=window_summary, detail=channels_detail, traits=_CONV_TRAITS,
           ranks=frozenset({1, 2, 3}), doc="transposed convolution (nn.ConvTranspose1d/2d/3d)",
           aliases=("conv_transpose",)),
]
