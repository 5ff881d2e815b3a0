"""Norm-activation layers without running statistics: EvoNorm-S0 and filter response norm (timm's
EvoNorm2dS0 / EvoNorm2dS0a and FilterResponseNormTlu2d; regnetz_*_evos, resnetv2_50d_evos/frn).

``evonorm`` is EvoNorm-S0 (Liu et al. 2020) as timm computes it: ``d`` the standard deviation (biased,
+ eps under the root) of each group of ``channels/groups`` channels over the group and the spatial axes
of one sample; with ``apply_act`` the layer is ``x · sigmoid(v · x) / d · weight + bias``, its
activation folded in with a third parameter ``v`` [C]. Without it, variant ``s0`` is the affine map
alone (``x · weight + bias``: timm's EvoNorm2dS0 skips the division then) and ``s0a`` still divides by
``d`` (EvoNorm2dS0a); with ``apply_act`` both compute the same.

``frn`` is the filter response norm (Singh & Krishnan 2019), timm's FilterResponseNormTlu2d:
``x · rsqrt(mean(x²) + eps) · weight + bias``, the mean square per sample and channel over the spatial
axes, then with ``apply_act`` its thresholded linear unit ``max(y, tau)``, ``tau`` [C].

Weights are timm's, in timm's order: weight (ones), bias (zeros), then v (ones) or tau (zeros). MACs
are 0, as every norm's; the "full" count adds one operation per output element.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

from specdsl.ops.model import Field
from specdsl.ops.norm import per_element
from specdsl.ops.rule import (
    Args,
    Inferred,
    OpRule,
    PositiveFloat,
    PositiveInt,
    RuleContext,
    RuleViolation,
    Shape,
    TensorSpec,
    Trait,
    require_rank,
)


class EvoNormArgs(Args):
    groups: PositiveInt = Field(default=32, description="channel groups of the standard deviation (timm: 32)")
    eps: PositiveFloat = Field(default=1e-5, description="added to the group variance (timm: S0 1e-5, S0a 1e-3)")
    apply_act: bool = Field(default=True, description="fold in the sigmoid gate x·sigmoid(v·x), v [C]")
    variant: Literal["s0", "s0a"] = Field(
        default="s0", description="timm's EvoNorm2dS0 or S0a: without apply_act, s0 does not normalise, s0a does")


class FRNArgs(Args):
    eps: PositiveFloat = Field(default=1e-5, description="added to the mean square (timm: 1e-5)")
    apply_act: bool = Field(default=True, description="the thresholded linear unit max(y, tau), tau [C]")


class EvoNormAttrs(NamedTuple):
    channels: int
    groups: int
    eps: float
    apply_act: bool
    variant: str

    @property
    def normalises(self) -> bool:
        """timm's EvoNorm2dS0 without its activation is the affine map alone."""
        return self.apply_act or self.variant == "s0a"


class FRNAttrs(NamedTuple):
    channels: int
    eps: float
    apply_act: bool


def infer_evonorm(args: EvoNormArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    # The statistics run over the spatial axes: a [C] feature vector has none.
    require_rank(x, (1, 2, 3), "evonorm")
    if x[0] % args.groups:
        raise RuleViolation(
            "E303",
            f"evonorm groups must divide the channels; received groups={args.groups}, channels={x[0]}",
            hint="pick groups from the divisors of the channel count",
            field="groups",
        )
    return Inferred(x, EvoNormAttrs(x[0], args.groups, args.eps, args.apply_act, args.variant))


def evonorm_weights(a: EvoNormAttrs) -> tuple[TensorSpec, ...]:
    both = (TensorSpec("weight", (a.channels,), init="ones"), TensorSpec("bias", (a.channels,), init="zeros"))
    return (*both, TensorSpec("v", (a.channels,), init="ones")) if a.apply_act else both


def infer_frn(args: FRNArgs, ins: Sequence[Shape], ctx: RuleContext) -> Inferred:
    x = ins[0]
    require_rank(x, (1, 2, 3), "frn")
    return Inferred(x, FRNAttrs(x[0], args.eps, args.apply_act))


def frn_weights(a: FRNAttrs) -> tuple[TensorSpec, ...]:
    both = (TensorSpec("weight", (a.channels,), init="ones"), TensorSpec("bias", (a.channels,), init="zeros"))
    return (*both, TensorSpec("tau", (a.channels,), init="zeros")) if a.apply_act else both


def evo_detail(op: str, a: EvoNormAttrs | FRNAttrs) -> str:
    groups = f"groups {a.groups}, " if isinstance(a, EvoNormAttrs) else ""
    return groups + ("act" if a.apply_act else "no act")


# Statistics per sample over its spatial extent, as instancenorm and groupnorm: the field is kept as theirs.
_TRAITS = frozenset({Trait.OVERWRITABLE_OUTPUT, Trait.KEEPS_CHANNELS})

RULES = [
    OpRule("evonorm", "norm", EvoNormArgs, infer_evonorm, evonorm_weights, extra=per_element, detail=evo_detail,
           traits=_TRAITS, ranks=frozenset({1, 2, 3}),
           doc="EvoNorm-S0 (timm's EvoNorm2dS0/S0a): x·sigmoid(v·x) / group std · weight + bias; weight, bias, "
               "v [C]"),
    OpRule("frn", "norm", FRNArgs, infer_frn, frn_weights, extra=per_element, detail=evo_detail,
           traits=_TRAITS, ranks=frozenset({1, 2, 3}),
           doc="filter response norm with its TLU (timm's FilterResponseNormTlu2d): max(x·rsqrt(mean(x²) + eps)"
               "·weight + bias, tau); weight, bias, tau [C]"),
]
