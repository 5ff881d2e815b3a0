"""timm's modules as the oracle of the zoo's timm models: built with pretrained=False (nothing is
downloaded), with statistics and scales drawn at random so that a batch norm, bias or gain that
specdsl ignores or misplaces changes the outputs, and timm's own MAC count from torch's FLOP counter."""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch.utils.flop_counter import FlopCounterMode


def reference(name: str, scaled: tuple[str, ...] = ("running_var", "bn1.weight")) -> Any:
    """timm's ``name`` in eval mode: biases and running means drawn from [-0.2, 0.2], and the tensors
    whose keys end in one of ``scaled`` from [0.5, 1.5] (a scale of 1 would hide a missing one)."""
    torch.manual_seed(0)
    module = timm.create_model(name, pretrained=False).eval()
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if key.endswith(("running_mean", "bias")):
                value.uniform_(-0.2, 0.2)
            elif key.endswith(scaled):
                value.uniform_(0.5, 1.5)
    return module


def timm_macs(module: Any, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of convolutions and matrix products (torch's FLOP counter / 2: bias
    excluded; a blurpool is a depthwise conv2d to it)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.zeros(1, *shape))
    return int(counter.get_total_flops()) // 2
