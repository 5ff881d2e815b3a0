"""The modules specdsl needs beyond ``torch.nn``, written once for both PyTorch outputs.

``to_torch`` imports these classes; ``specdsl build`` copies their source text, class by
class, into the file it emits (see ``helper_source.py``), so the two cannot drift apart.
That file imports only torch and must pass the allowlist in ``safety.py``: the classes
here use nothing but torch, builtins and each other, and no f-strings.
"""

from __future__ import annotations

import torch
from torch import nn

# The modern vocabulary's modules live beside these; to_torch finds every helper class here.
from specdsl.backends.torch.modules_conv import CondConv2d, ConvSameTF, StdConv  # noqa: F401
from specdsl.backends.torch.modules_evo import EvoNorm, FilterResponseNorm  # noqa: F401
from specdsl.backends.torch.modules_modern import (  # noqa: F401
    BlurPool2d,
    ChannelNorm,
    GlobalResponseNorm,
    LocallyConnected,
    Permute,
    Reshape,
    RmsNorm,
    Squeeze,
    StochasticDepth,
    Unsqueeze,
)


class GlobalPool(nn.Module):
    """Global average or max pooling over every spatial axis: [N, C] (or [N, C, 1, ...] with keepdims)."""

    def __init__(self, rank: int, kind: str, keepdims: bool) -> None:
        super().__init__()
        self.dims = tuple(range(2, 2 + rank))
        self.kind = kind
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "avg":
            return x.mean(dim=self.dims, keepdim=self.keepdims)
        return x.amax(dim=self.dims, keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return "kind=" + str(self.kind) + ", keepdims=" + str(self.keepdims)


class UpsampleTo(nn.Module):
    """Interpolates its first input to the spatial size of its second (a two-input upsample),
    read at run time, so a segmentation head follows whatever input the model is given."""

    # align_corners: True, False or None (PyTorch's default; the only value nearest modes take). Not
    # annotated: `bool | None` is an expression the emitted file's allowlist (safety.py) does not admit.
    def __init__(self, mode: str, align_corners=None) -> None:
        super().__init__()
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, size=ref.shape[2:], mode=self.mode,
                                               align_corners=self.align_corners)

    def extra_repr(self) -> str:
        return "mode=" + self.mode + ", align_corners=" + str(self.align_corners)


class CenterCrop(nn.Module):
    """Cuts the centre of its first input at the spatial size of its second (the original U-Net's
    crop of a skip connection); an odd pixel left over is cut from the far end."""

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        for axis in range(2, x.dim()):
            size = ref.shape[axis]
            x = x.narrow(axis, (x.shape[axis] - size) // 2, size)
        return x


class FractalPath:
    """Which fractal column a training batch uses under global drop-path (shared by all joins)."""

    column: int | None

    def __init__(self) -> None:
        self.column = None


class Join(nn.Module):
    """FractalNet's join: the mean of its inputs; drop-path while training.

    Local drop-path drops each input with probability ``drop_local`` (keeping at
    least one); under global drop-path (chosen per batch by the model with
    probability ``drop_global``) only the input from the sampled column passes.
    """

    def __init__(self, drop_local: float, drop_global: float, columns: tuple[int, ...], path: FractalPath) -> None:
        super().__init__()
        self.drop_local = drop_local
        self.drop_global = drop_global
        self.columns = tuple(columns)
        self.path = path

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or (self.drop_local == 0 and self.path.column is None):
            return torch.stack(inputs).mean(dim=0)
        if self.path.column is not None:
            if self.path.column in self.columns:
                return inputs[self.columns.index(self.path.column)]
            return torch.stack(inputs).mean(dim=0)
        keep = torch.rand(len(inputs)) >= self.drop_local
        if not bool(keep.any()):
            keep[int(torch.randint(len(inputs), ()))] = True
        kept = [x for x, k in zip(inputs, keep.tolist(), strict=True) if k]
        return torch.stack(kept).mean(dim=0)

    def extra_repr(self) -> str:
        return ("drop_local=" + str(self.drop_local) + ", drop_global=" + str(self.drop_global)
                + ", columns=" + str(self.columns))


def reset_computed_buffers(module: nn.Module) -> nn.Module:
    """Recompute the non-persistent buffers that helper modules derive from their arguments (BlurPool2d's
    filter) after a build on the meta device left them empty; every module that has such buffers says so
    with a ``reset_buffers`` method. Returns the module."""
    for m in module.modules():
        reset = getattr(m, "reset_buffers", None)
        if callable(reset):
            reset()
    return module
