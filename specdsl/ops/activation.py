"""Activations, softmax, dropout, stochastic depth and identity: shape-preserving ops."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from specdsl.ops.model import Field
from specdsl.ops.rule import (
    Args,
    InferFn,
    Inferred,
    NoArgs,
    OpRule,
    PositiveInt,
    Probability,
    RuleContext,
    RuleViolation,
    Shape,
    TensorSpec,
    Trait,
    fmt_shape,
    numel,
    require_rank,
)


class LeakyReluArgs(Args):
    slope: float = Field(default=0.01, description="negative_slope")


class HardtanhArgs(Args):
    min_val: float = -1.0
    max_val: float = 1.0


class EluArgs(Args):
    alpha: float = 1.0


class GeluArgs(Args):
    approximate: Literal["none", "tanh"] = "none"


class SoftplusArgs(Args):
    beta: float = 1.0
    threshold: float = 20.0


class SoftmaxArgs(Args):
    dim: int = Field(default=1, description="axis in PyTorch numbering (0 is the batch)")


class DropoutArgs(Args):
    p: Probability = 0.5


class PReluArgs(Args):
    num_parameters: PositiveInt = Field(default=1, description="1 (one slope shared) or the channel count")
    init: float = Field(default=0.25, description="initial slope of the negative part")


class StochasticDepthArgs(Args):
    p: Probability = Field(description="probability of dropping the whole residual branch")
    mode: Literal["row", "batch"] = Field(
        default="row", description="row: drop per sample; batch: drop for the whole batch")


def infer_same(args: Args, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    return Inferred(ins[0], args)


def infer_softmax(args: SoftmaxArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    ndim = len(x) + 1  # with the batch axis
    if not -ndim <= args.dim < ndim or args.dim in (0, -ndim):
        raise RuleViolation(
            "E311",
            f"softmax dim must be a non-batch axis of the {ndim}-d batched input "
            f"(1..{ndim - 1} or -{ndim - 1}..-1); received dim={args.dim} for {fmt_shape(x)}",
            hint="dim 1 is the channel / feature axis",
            field="dim",
        )
    return Inferred(x, args)


def infer_hardtanh(args: HardtanhArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    if args.max_val <= args.min_val:
        raise RuleViolation(
            "E374",
            f"hardtanh needs max_val > min_val (PyTorch rule); received min_val={args.min_val}, "
            f"max_val={args.max_val}",
            hint="swap the two bounds",
            field="max_val",
        )
    return Inferred(ins[0], args)


def infer_prelu(args: PReluArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    if args.num_parameters not in (1, x[0]):
        raise RuleViolation(
            "E370",
            f"prelu num_parameters must be 1 or the input channels ({x[0]}, PyTorch rule); received "
            f"num_parameters={args.num_parameters} for input {fmt_shape(x)}",
            hint=f"write prelu(num_parameters={x[0]}) for one slope per channel, or leave it out for one slope",
            field="num_parameters",
        )
    return Inferred(x, args)


def prelu_weights(a: PReluArgs) -> tuple[TensorSpec, ...]:
    # nn.PReLU fills its weight with `init` itself: PyTorch's own initialisation.
    return (TensorSpec("weight", (a.num_parameters,)),)


def _infer_channel_dropout(rank: int, op: str):
    def infer(args: DropoutArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
        require_rank(ins[0], (rank,), op)
        return Inferred(ins[0], args)

    return infer


def per_element(a: object, ins: Sequence[Shape], out: Shape) -> int:
    return numel(out)


def dim_detail(op: str, a: SoftmaxArgs) -> str:
    return f"dim {a.dim}" if a.dim != 1 else ""


def p_detail(op: str, a: DropoutArgs) -> str:
    return f"p={a.p:g}"


def depth_detail(op: str, a: StochasticDepthArgs) -> str:
    return f"p={a.p:g}" + (" batch" if a.mode == "batch" else "")


def prelu_detail(op: str, a: PReluArgs) -> str:
    return f"{a.num_parameters} slopes" if a.num_parameters != 1 else ""


_SAME = frozenset({Trait.KEEPS_CHANNELS, Trait.KEEPS_LAYOUT})
_IN_PLACE = frozenset({Trait.KEEPS_CHANNELS, Trait.KEEPS_LAYOUT, Trait.INPLACE})


def _act(name: str, args: type[Args] = NoArgs, doc: str = "", aliases: tuple[str, ...] = (),
         positional: tuple[str, ...] = (), traits: frozenset[Trait] = _SAME) -> OpRule:
    return OpRule(name, "activation", args, infer_same, extra=per_element, positional=positional, traits=traits,
                  doc=doc, aliases=aliases)


_DROP = _SAME | {Trait.DROP_RATE}


def _dropout(name: str, infer: InferFn, ranks: frozenset[int] | None, doc: str) -> OpRule:
    return OpRule(name, "dropout", DropoutArgs, infer, positional=("p",), detail=p_detail,
                  traits=_DROP, ranks=ranks, doc=doc)


RULES = [
    _act("relu", doc="max(0, x)", traits=_IN_PLACE),
    _act("relu6", doc="min(max(0, x), 6)", traits=_IN_PLACE),
    _act("leaky_relu", LeakyReluArgs, doc="leaky ReLU (negative slope)", aliases=("leakyrelu",),
         positional=("slope",), traits=_IN_PLACE),
    _act("elu", EluArgs, doc="exponential linear unit", positional=("alpha",)),
    OpRule("hardtanh", "activation", HardtanhArgs, infer_hardtanh, extra=per_element,
           positional=("min_val", "max_val"), traits=_SAME, doc="clamp to [min_val, max_val] (nn.Hardtanh)"),
    _act("gelu", GeluArgs, doc="Gaussian error linear unit"),
    # In place where torchvision runs them so (EfficientNet's SiLU, MobileNetV3's Hardswish).
    _act("silu", doc="x·sigmoid(x), a.k.a. swish", aliases=("swish",), traits=_IN_PLACE),
    _act("hardswish", doc="hard swish (MobileNetV3)", traits=_IN_PLACE),
    _act("hardsigmoid", doc="relu6(x + 3) / 6, MobileNetV3's gate (nn.Hardsigmoid)"),
    _act("mish", doc="x·tanh(softplus(x)) (nn.Mish)"),
    _act("selu", doc="scaled ELU with fixed α and λ (nn.SELU)"),
    OpRule("prelu", "activation", PReluArgs, infer_prelu, prelu_weights, extra=per_element,
           positional=("num_parameters", "init"), detail=prelu_detail, traits=_SAME,
           doc="leaky ReLU with learnable slopes, one or one per channel (nn.PReLU)"),
    _act("sigmoid", doc="logistic sigmoid"),
    _act("tanh", doc="hyperbolic tangent"),
    _act("softplus", SoftplusArgs, doc="log(1 + exp(βx))/β"),
    OpRule("softmax", "activation", SoftmaxArgs, infer_softmax, extra=per_element, positional=("dim",),
           detail=dim_detail, traits=_SAME, doc="softmax along dim"),
    OpRule("log_softmax", "activation", SoftmaxArgs, infer_softmax, extra=per_element, positional=("dim",),
           detail=dim_detail, traits=_SAME, doc="log-softmax along dim"),
    _dropout("dropout", infer_same, None, "element-wise dropout (nn.Dropout)"),
    _dropout("dropout1d", _infer_channel_dropout(1, "dropout1d"), frozenset({1}),
             "channel-wise dropout for [C, L] (nn.Dropout1d)"),
    _dropout("dropout2d", _infer_channel_dropout(2, "dropout2d"), frozenset({2}),
             "channel-wise dropout for [C, H, W] (nn.Dropout2d)"),
    _dropout("dropout3d", _infer_channel_dropout(3, "dropout3d"), frozenset({3}),
             "channel-wise dropout for [C, D, H, W] (nn.Dropout3d)"),
    OpRule("stochastic_depth", "dropout", StochasticDepthArgs, infer_same, positional=("p", "mode"),
           detail=depth_detail, traits=_DROP, aliases=("drop_path",),
           doc="drops a residual branch per sample (row) or per batch while training, scaling by 1/(1-p); "
               "the identity in eval (torchvision.ops.StochasticDepth)"),
    OpRule("identity", "shape", NoArgs, infer_same, traits=_SAME, doc="passes its input through (nn.Identity)"),
]
