"""Norm-activation modules without running statistics: EvoNorm-S0 and the filter response norm with
its TLU, as timm's EvoNorm2dS0 / EvoNorm2dS0a and FilterResponseNormTlu2d compute them (the same
operations in the same order, so the values and what autograd keeps are timm's), over any number of
spatial axes.

Like ``modules_modern.py`` (``modules.py`` re-exports them for ``to_torch``), each class is copied as
text into the file ``specdsl build`` emits (``helper_source.py``): nothing but torch and builtins, no
f-strings, no ``with``, no lambdas. timm computes the statistics in float32 (``x.float()``); a float64
input keeps its precision here (the NumPy reference runs in float64), which changes nothing for float32
or lower.
"""

from __future__ import annotations

import torch
from torch import nn


class EvoNorm(nn.Module):
    """EvoNorm-S0: d the standard deviation of each group of channels over the group and the spatial
    axes (biased, eps under the root); with apply_act x * sigmoid(v * x) / d * weight + bias, v [C];
    without it x / d * weight + bias (variant s0a) or x * weight + bias (variant s0, as timm's S0)."""

    def __init__(self, num_features: int, groups: int = 32, eps: float = 1e-5, apply_act: bool = True,
                 variant: str = "s0") -> None:
        super().__init__()
        self.groups = groups
        self.eps = eps
        self.apply_act = apply_act
        self.variant = variant
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        if apply_act:
            self.v = nn.Parameter(torch.ones(num_features))
        else:
            self.register_parameter("v", None)

    def group_std(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.reshape([x.shape[0], self.groups, -1, *list(x.shape[2:])])
        stats = grouped if grouped.dtype == torch.float64 else grouped.float()
        dims = tuple(range(2, grouped.dim()))
        std = torch.sqrt(torch.var(stats, dim=dims, correction=0, keepdim=True).add(self.eps)).type_as(x)
        return std.expand(grouped.shape).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [-1] + [1] * (x.dim() - 2)
        if self.v is not None:
            d = self.group_std(x)
            x = x * torch.sigmoid(x * self.v.view(shape).type_as(x))
            x = x / d
        elif self.variant == "s0a":
            x = x / self.group_std(x)
        return x * self.weight.view(shape).type_as(x) + self.bias.view(shape).type_as(x)

    def extra_repr(self) -> str:
        return (str(self.weight.shape[0]) + ", groups=" + str(self.groups) + ", eps=" + str(self.eps)
                + ", apply_act=" + str(self.apply_act) + ", variant=" + self.variant)


class FilterResponseNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) over the spatial axes per sample and channel, * weight + bias, then with
    apply_act the thresholded linear unit max(y, tau); weight, bias and tau [C]."""

    def __init__(self, num_features: int, eps: float = 1e-5, apply_act: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        if apply_act:
            self.tau = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("tau", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [-1] + [1] * (x.dim() - 2)
        squares = x.pow(2)
        squares = squares if squares.dtype == torch.float64 else squares.float()
        rms = torch.rsqrt(squares.mean(dim=tuple(range(2, x.dim())), keepdim=True).add(self.eps)).type_as(x)
        x = x * rms.expand(x.shape)
        x = x * self.weight.view(shape).type_as(x) + self.bias.view(shape).type_as(x)
        if self.tau is None:
            return x
        return torch.maximum(x, self.tau.view(shape).type_as(x))

    def extra_repr(self) -> str:
        return str(self.weight.shape[0]) + ", eps=" + str(self.eps) + ", apply_act=" + str(self.tau is not None)
