"""Convolutions ``torch.nn`` lacks: TensorFlow's SAME padding at any stride (timm's Conv2dSame, the
tf_ EfficientNets) and weight standardisation (timm's StdConv2d for BiT, ScaledStdConv2d for NFNets).

Like ``modules.py`` (which re-exports them for ``to_torch``), each class is copied as text into the
file ``specdsl build`` emits (``helper_source.py``): nothing but torch, builtins and each other, no
f-strings, no ``with``, no lambdas. Both hold ``weight`` and ``bias`` as nn.ConvNd does, so their
state_dict keys are timm's (``weight``, ``bias``, then StdConv's ``gain``).
"""

from __future__ import annotations

import torch
from torch import nn


class ConvSameTF(nn.Module):
    """A convolution of any rank (len(kernel_size)) whose padding, with same_tf, is TensorFlow's SAME:
    ceil(n / stride) outputs along each axis, the padding computed from the input's size at every
    call, the odd pixel after (timm's pad_same). Without same_tf it pads ``padding`` before and
    ``padding_after`` (default: the same) after, as nn.ConvNd with padding='same' does."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple, stride: tuple, dilation: tuple = (),
                 groups: int = 1, bias: bool = True, same_tf: bool = True, padding: tuple = (),
                 padding_after=None) -> None:
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)
        self.dilation = tuple(dilation) if dilation else (1,) * len(self.kernel_size)
        self.groups = groups
        self.same_tf = same_tf
        self.padding = tuple(padding) if padding else (0,) * len(self.kernel_size)
        self.padding_after = self.padding if padding_after is None else tuple(padding_after)
        self.weight = nn.Parameter(torch.empty((out_channels, in_channels // groups, *self.kernel_size)))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        # nn.ConvNd's default: uniform on ±1/sqrt(fan_in) for weight and bias.
        bound = self.weight[0].numel() ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def pads(self, x: torch.Tensor) -> tuple:
        """(before, after) per spatial axis for this input."""
        if not self.same_tf:
            return self.padding, self.padding_after
        before, after = [], []
        for axis in range(len(self.kernel_size)):
            n, s = x.shape[2 + axis], self.stride[axis]
            total = max((-(-n // s) - 1) * s + self.dilation[axis] * (self.kernel_size[axis] - 1) + 1 - n, 0)
            before.append(total // 2)
            after.append(total - total // 2)
        return tuple(before), tuple(after)

    def convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        before, after = self.pads(x)
        extra = [q - p for p, q in zip(before, after)]
        if any(extra):
            # The odd pixels after; the convolution pads the symmetric part itself (as PyTorch's 'same').
            widths = []
            for e in reversed(extra):
                widths += [0, e]
            x = torch.nn.functional.pad(x, widths)
        rank = len(self.kernel_size)
        if rank == 1:
            return torch.nn.functional.conv1d(x, weight, self.bias, self.stride, before, self.dilation, self.groups)
        if rank == 2:
            return torch.nn.functional.conv2d(x, weight, self.bias, self.stride, before, self.dilation, self.groups)
        return torch.nn.functional.conv3d(x, weight, self.bias, self.stride, before, self.dilation, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convolve(x, self.weight)

    def extra_repr(self) -> str:
        return ("kernel_size=" + str(self.kernel_size) + ", stride=" + str(self.stride) + ", same_tf="
                + str(self.same_tf) + ", bias=" + str(self.bias is not None))


class StdConv(ConvSameTF):
    """A convolution whose weight is standardised per output channel at every call: (w - mean) /
    sqrt(var + eps), the variance biased (timm's StdConv2d, BiT); with gain, times a learned gain
    [C_out, 1, ...] and gamma / sqrt(fan_in) (timm's ScaledStdConv2d, NFNets). Computed, as timm does,
    with a training-mode batch norm over each output channel's weights."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple, stride: tuple, dilation: tuple = (),
                 groups: int = 1, bias: bool = True, same_tf: bool = False, padding: tuple = (),
                 padding_after=None, gain: bool = False, gamma: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, dilation, groups, bias, same_tf, padding,
                         padding_after)
        self.eps = eps
        self.scale = gamma * self.weight[0].numel() ** -0.5
        if gain:
            self.gain = nn.Parameter(torch.ones((out_channels,) + (1,) * (1 + len(self.kernel_size))))
        else:
            self.register_parameter("gain", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = None if self.gain is None else (self.gain * self.scale).view(-1)
        w = torch.nn.functional.batch_norm(self.weight.reshape(1, self.weight.shape[0], -1), None, None,
                                           weight=scale, training=True, momentum=0.0, eps=self.eps)
        return self.convolve(x, w.reshape(self.weight.shape))

    def extra_repr(self) -> str:
        return ("kernel_size=" + str(self.kernel_size) + ", stride=" + str(self.stride) + ", same_tf="
                + str(self.same_tf) + ", bias=" + str(self.bias is not None) + ", gain="
                + str(self.gain is not None) + ", eps=" + str(self.eps))


class CondConv2d(nn.Module):
    """timm's CondConv2d (CondConv, Yang et al. 2019): forward(x, routing) convolves each sample with its own
    kernel, routing[b] @ weight, the weight holding the E experts' kernels as rows [E, out · C/groups · kh · kw]
    (and the bias [E, out]), timm's layout and keys. Runs as timm does: one grouped conv over the batch."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple, stride: tuple, padding: tuple,
                 dilation: tuple, groups: int = 1, bias: bool = False, num_experts: int = 1) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)
        self.padding = tuple(padding)
        self.dilation = tuple(dilation)
        self.groups = groups
        self.expert_shape = (out_channels, in_channels // groups, *self.kernel_size)
        fan_in = in_channels // groups
        for k in self.kernel_size:
            fan_in *= k
        self.weight = nn.Parameter(torch.empty((num_experts, out_channels * fan_in)))
        if bias:
            self.bias = nn.Parameter(torch.empty((num_experts, out_channels)))
        else:
            self.register_parameter("bias", None)
        # Each expert as nn.Conv2d initialises its weight and bias (timm's condconv initializer alike).
        bound = fan_in ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, routing: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        weight = torch.matmul(routing, self.weight).view((b * self.out_channels, *self.expert_shape[1:]))
        bias = None if self.bias is None else torch.matmul(routing, self.bias).view(b * self.out_channels)
        out = torch.nn.functional.conv2d(x.reshape(1, b * x.shape[1], x.shape[2], x.shape[3]), weight, bias,
                                         self.stride, self.padding, self.dilation, self.groups * b)
        return out.view(b, self.out_channels, out.shape[2], out.shape[3])

    def extra_repr(self) -> str:
        return ("experts=" + str(self.weight.shape[0]) + ", kernel_size=" + str(self.kernel_size) + ", stride="
                + str(self.stride) + ", groups=" + str(self.groups) + ", bias=" + str(self.bias is not None))
