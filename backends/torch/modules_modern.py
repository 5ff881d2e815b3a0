"""Modules of the modern CNN vocabulary that ``torch.nn`` lacks: channel norm, stochastic depth,
permute, reshape, unsqueeze, squeeze, timm's blur-pool, global response norm and RMS norm, and the
locally connected layer (layer scale is a parameter of its block: lowerings.py).

Like ``modules.py`` (which re-exports them for ``to_torch``), each class is copied as text into
the file ``specdsl build`` emits (``helper_source.py``), so both outputs run the same code: the
classes use nothing but torch, builtins and each other, no f-strings, no ``with``, no lambdas.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelNorm(nn.Module):
    """Layer norm over the channel axis at every position (torchvision's LayerNorm2d, any rank):
    the channels move last, are normalised with weight and bias [C], and move back."""

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.layer_norm(x.movedim(1, -1), (self.num_channels,), self.weight, self.bias,
                                           self.eps)
        return y.movedim(-1, 1)

    def extra_repr(self) -> str:
        return str(self.num_channels) + ", eps=" + str(self.eps)


class StochasticDepth(nn.Module):
    """Drops its input while training, per sample ("row") or for the whole batch ("batch"),
    scaling what survives by 1 / (1 - p); the identity in eval (torchvision.ops.StochasticDepth)."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        if keep > 0.0:
            mask.div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return "p=" + str(self.p) + ", mode=" + self.mode


class Permute(nn.Module):
    """Reorders the axes (batch included, which stays first): a view, as torch.permute gives."""

    def __init__(self, dims: list) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)

    def extra_repr(self) -> str:
        return str(list(self.dims))


class LocallyConnected(nn.Module):
    """A convolution with its own kernel at every output position (unshared weights), zero padding.

    weight [*out_sizes, out, C, *k] (a conv weight per position), bias [out, *out_sizes]; the input's
    spatial size is fixed by out_sizes, as a linear layer's is by its features."""

    def __init__(self, in_channels: int, out_channels: int, out_sizes: tuple, kernel_size: tuple, stride: tuple,
                 padding: tuple, bias: bool = True) -> None:
        super().__init__()
        self.out_sizes = tuple(out_sizes)
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)
        self.padding = tuple(padding)
        self.weight = nn.Parameter(torch.empty((*self.out_sizes, out_channels, in_channels, *self.kernel_size)))
        if bias:
            self.bias = nn.Parameter(torch.empty((out_channels, *self.out_sizes)))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Conv2d's default: uniform on ±1/sqrt(fan_in) for weight and bias.
        fan_in = self.weight.shape[len(self.out_sizes) + 1]
        for k in self.kernel_size:
            fan_in = fan_in * k
        bound = fan_in ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rank = len(self.kernel_size)
        widths = []
        for p in reversed(self.padding):
            widths += [p, p]
        x = torch.nn.functional.pad(x, widths)
        for axis in range(rank):
            x = x.unfold(2 + axis, self.kernel_size[axis], self.stride[axis])
        # [N, C, *out_sizes, *k] -> [N, positions, C·prod(k)], one row of inputs per output position.
        order = [0, *range(2, 2 + rank), 1, *range(2 + rank, 2 + 2 * rank)]
        n, positions = x.shape[0], self.weight.shape[:rank].numel()
        cols = x.permute(order).reshape(n, positions, -1)
        w = self.weight.reshape(positions, self.weight.shape[rank], -1)
        y = torch.einsum("nlk,lok->nol", cols, w).reshape((n, w.shape[1], *self.out_sizes))
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self) -> str:
        return ("out_sizes=" + str(self.out_sizes) + ", kernel_size=" + str(self.kernel_size) + ", stride="
                + str(self.stride) + ", padding=" + str(self.padding) + ", bias=" + str(self.bias is not None))


class Reshape(nn.Module):
    """Gives each sample a new shape, the batch kept first (``x.reshape(x.shape[0], *shape)``): a view
    where PyTorch's reshape is one. One size may be -1, inferred."""

    def __init__(self, shape: list) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape((x.shape[0], *self.shape))

    def extra_repr(self) -> str:
        return str(list(self.shape))


class Unsqueeze(nn.Module):
    """Inserts an axis of size 1 at dim (PyTorch numbering, the batch axis 0): a view."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(self.dim)

    def extra_repr(self) -> str:
        return "dim=" + str(self.dim)


class Squeeze(nn.Module):
    """Removes the axis dim, of size 1 (PyTorch numbering, the batch axis 0): a view."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(self.dim)

    def extra_repr(self) -> str:
        return "dim=" + str(self.dim)


class BlurPool2d(nn.Module):
    """Anti-aliased downsampling as timm's BlurPool2d (Zhang 2019): pad by ((stride - 1) + (filt - 1)) // 2
    in pad_mode, then a depthwise conv with stride by the binomial filter, the outer product of the row
    C(filt-1, k) / 2^(filt-1) with itself, held in the non-persistent buffer `filt` [C, 1, filt, filt]."""

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2, pad_mode: str = "reflect") -> None:
        super().__init__()
        self.channels = channels
        self.filt_size = filt_size
        self.stride = stride
        self.pad_mode = pad_mode
        self.padding = [((stride - 1) + (filt_size - 1)) // 2] * 4
        self.register_buffer("filt", self.binomial(None, torch.float32), persistent=False)

    def binomial(self, device, dtype) -> torch.Tensor:
        """[C, 1, filt, filt]: Pascal's row in exact integers, one division, an outer product (timm's values)."""
        row = torch.ones(1, device=device, dtype=dtype)
        for _ in range(self.filt_size - 1):
            zero = torch.zeros(1, device=device, dtype=dtype)
            row = torch.cat([row, zero]) + torch.cat([zero, row])
        row = row / (2 ** (self.filt_size - 1))
        blur = (row.reshape(-1, 1) * row.reshape(1, -1)).reshape(1, 1, self.filt_size, self.filt_size)
        return blur.expand(self.channels, 1, self.filt_size, self.filt_size).contiguous()

    def reset_buffers(self) -> None:
        """Compute the filter again where a build on the meta device (then to_empty, or a load with
        assign=True) left it empty: no state_dict holds it."""
        old = self.get_buffer("filt")
        self.register_buffer("filt", self.binomial("cpu" if old.is_meta else old.device, old.dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.pad(x, self.padding, mode=self.pad_mode)
        return torch.nn.functional.conv2d(x, self.get_buffer("filt"), stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return (str(self.channels) + ", filt_size=" + str(self.filt_size) + ", stride=" + str(self.stride)
                + ", pad_mode=" + self.pad_mode)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's global response norm, as timm's GlobalResponseNorm: the L2 norm of each channel over
    the spatial axes, divided by its mean over the channels (+ eps), scales the input; the output is
    x + bias + weight * (x * that), weight and bias [C], zero at first. Channels first (axis 1) or, with
    channels_last, the last axis."""

    def __init__(self, dim: int, eps: float = 1e-6, channels_last: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.channels_last = channels_last
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            spatial, channel, shape = tuple(range(1, x.dim() - 1)), -1, [-1]
        else:
            spatial, channel, shape = tuple(range(2, x.dim())), 1, [-1] + [1] * (x.dim() - 2)
        # timm's own operations in timm's order, so the values and what autograd keeps are timm's.
        x_g = x.norm(p=2, dim=spatial, keepdim=True)
        x_n = x_g / (x_g.mean(dim=channel, keepdim=True) + self.eps)
        return x + torch.addcmul(self.bias.view(shape), self.weight.view(shape), x * x_n)

    def extra_repr(self) -> str:
        return str(self.weight.shape[0]) + ", eps=" + str(self.eps) + ", channels_last=" + str(self.channels_last)


class RmsNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) * weight over the channels at every position (timm's RmsNorm2d), or over the
    last axis with channels_last (timm's RmsNorm); with centred, the unbiased variance replaces the mean
    square (timm's SimpleNorm2d and SimpleNorm: x is scaled, not centred). weight [C] when affine."""

    def __init__(self, channels: int, eps: float = 1e-6, affine: bool = True, channels_last: bool = False,
                 centred: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.channels_last = channels_last
        self.centred = centred
        if affine:
            self.weight = nn.Parameter(torch.ones(channels))
        else:
            self.register_parameter("weight", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = -1 if self.channels_last else 1
        if self.centred:
            v = torch.var(x, dim=dim, keepdim=True)
        else:
            v = x.pow(2).mean(dim=dim, keepdim=True)
        x = x * torch.rsqrt(v + self.eps)
        if self.weight is None:
            return x
        if self.channels_last:
            return x * self.weight
        return x * self.weight.view([-1] + [1] * (x.dim() - 2))

    def extra_repr(self) -> str:
        return ("eps=" + str(self.eps) + ", affine=" + str(self.weight is not None) + ", channels_last="
                + str(self.channels_last) + ", centred=" + str(self.centred))
