"""An independent PyTorch oracle for conv's ws and pad=same_tf, written from timm's definitions
(timm.layers.std_conv, timm.layers.padding) with plain torch ops, not through specdsl's helper
modules: TensorFlow's SAME padding is F.pad by max((ceil(n/s) - 1)s + d(k-1) + 1 - n, 0) split with
the odd pixel after; the standardised weight is (w - mean) / sqrt(var + eps) per output channel
(biased variance), times gain · gamma / sqrt(fan_in) with a gain."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


class ReferenceConv(torch.nn.Module):
    def __init__(self, conv: torch.nn.Module, args: dict[str, Any]) -> None:
        super().__init__()
        self.conv = conv
        self.same_tf = args.get("pad") == "same_tf"
        self.ws = bool(args.get("ws"))
        self.eps = float(args.get("eps", 1e-6))
        self.gamma = float(args.get("gamma", 1.0))
        if args.get("gain"):
            self.gain = torch.nn.Parameter(torch.ones(conv.weight.shape[0], *(1,) * (conv.weight.dim() - 1),
                                                      dtype=conv.weight.dtype))
        else:
            self.gain = None

    def load(self, weights: dict[str, torch.Tensor]) -> ReferenceConv:
        with torch.no_grad():
            self.conv.weight.copy_(weights["weight"])
            if "bias" in weights:
                self.conv.bias.copy_(weights["bias"])
            if self.gain is not None:
                self.gain.copy_(weights["gain"])
        return self

    def weight(self) -> torch.Tensor:
        w = self.conv.weight
        if not self.ws:
            return w
        rows = w.reshape(w.shape[0], -1)
        mean = rows.mean(dim=1, keepdim=True)
        var = ((rows - mean) ** 2).mean(dim=1, keepdim=True)
        out = (rows - mean) / torch.sqrt(var + self.eps)
        if self.gain is not None:
            out = out * self.gain.reshape(-1, 1) * (self.gamma / math.sqrt(rows.shape[1]))
        return out.reshape(w.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        padding: Any = c.padding
        if self.same_tf:
            widths: list[int] = []
            for n, k, s, d in zip(x.shape[2:], c.kernel_size, c.stride, c.dilation, strict=True):
                total = max((math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0)
                widths = [total // 2, total - total // 2, *widths]
            x = F.pad(x, widths)
            padding = 0
        conv = [F.conv1d, F.conv2d, F.conv3d][x.dim() - 3]
        if c.padding_mode != "zeros" or padding == "same":
            return c._conv_forward(x, self.weight(), c.bias)
        return conv(x, self.weight(), c.bias, c.stride, padding, c.dilation, c.groups)


def reference_conv(conv_cls: Any, in_channels: int, args: dict[str, Any], common: dict[str, Any],
                   kernel: Any, padding: Any) -> ReferenceConv:
    """``conv_cls`` (nn.Conv1d/2d/3d) built without padding for same_tf, wrapped in the oracle."""
    conv = conv_cls(in_channels, args["out"], kernel, padding=0 if args.get("pad") == "same_tf" else padding,
                    padding_mode=args.get("padding_mode", "zeros"), **common)
    return ReferenceConv(conv, args)
