"""Static == dynamic: run the PyTorch module and compare it with the static analysis.

Checks every node's runtime shape against its static shape, every node's
parameter and buffer counts, and conv/linear MACs against
``torch.utils.flop_counter`` (its FLOPs / 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import fx
from torch.utils.flop_counter import FlopCounterMode

from specdsl.api import Model
from specdsl.backends.torch.fx import capture, example_input, param_counts, to_torch


@dataclass(frozen=True)
class Mismatch:
    path: str
    what: str
    static: Any
    runtime: Any

    def __str__(self) -> str:
        return f"{self.path}: {self.what} is {self.static} statically but {self.runtime} at run time"


@dataclass
class Verification:
    nodes: int
    mismatches: list[Mismatch]
    runtime_macs: int
    static_macs: int

    @property
    def ok(self) -> bool:
        return not self.mismatches


def verify(model: Model, module: fx.GraphModule | None = None, *, batch: int = 2,
           device: str | torch.device = "cpu") -> Verification:
    module = module if module is not None else to_torch(model, seed=0)
    module = module.to(device).eval()
    mismatches: list[Mismatch] = []
    figures = model.analysis.figures
    with torch.no_grad():
        acts = capture(module, model, example_input(model, batch, device=device))
    for node in model.graph.nodes:
        static = figures[node.index].shape
        runtime = tuple(acts[node.index].shape)
        if runtime != (batch, *(static or ())):
            mismatches.append(Mismatch(node.path, "output shape", (batch, *(static or ())), runtime))
    counts = param_counts(module, model)
    for node in model.graph.nodes:
        fig = figures[node.index]
        params, buffers = counts[node.index]
        if params != fig.params:
            mismatches.append(Mismatch(node.path, "parameter count", fig.params, params))
        if buffers != fig.buffers:
            mismatches.append(Mismatch(node.path, "buffer count", fig.buffers, buffers))
    total = sum(p.numel() for p in module.parameters())
    if total != model.totals.params:
        mismatches.append(Mismatch("<model>", "parameter total", model.totals.params, total))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(example_input(model, 1, device=device))
    runtime_macs = counter.get_total_flops() // 2
    if runtime_macs != model.totals.macs:
        mismatches.append(Mismatch("<model>", "MACs (conv + linear)", model.totals.macs, runtime_macs))
    return Verification(len(model.graph.nodes), mismatches, runtime_macs, model.totals.macs)
