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


def full_size_macs(name: str, shape: tuple[int, ...], module: Any) -> int:
    """``timm_macs`` of timm's ``name`` built on the meta device (shapes without values: the FLOP counter
    sees the same ops and runs no convolution); where timm's constructor needs values (nf_resnet's
    weight standardisation), of ``module``, the same model built for real."""
    try:
        with torch.device("meta"):
            module = timm.create_model(name, pretrained=False).eval()
    except NotImplementedError:  # "Cannot copy out of meta tensor"
        pass
    return timm_macs(module, shape)


def timm_macs(module: Any, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of convolutions and matrix products (torch's FLOP counter / 2: bias
    excluded; a blurpool is a depthwise conv2d to it)."""
    counter = FlopCounterMode(display=False)
    device = next(module.parameters()).device  # a module built on the meta device is counted there, free
    with counter, torch.no_grad():
        module(torch.zeros(1, *shape, device=device))
    return int(counter.get_total_flops()) // 2
