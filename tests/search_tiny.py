"""A tiny CNN family and a few-step training run on synthetic data, for the search tests (imported by
Ray's worker processes too, so it lives in a module of its own)."""

from __future__ import annotations

from typing import Any

TINY = """\
model tiny(c=4, k=3, depth=1)
input [1, 8, 8]
block cr(c: int, k: int) {
    conv(c, k=k, pad=k // 2) -> relu
}
layers {
    cr(c, k=k) x(depth)
    gap -> linear(2)
}
"""


def train(module: Any, candidate: Any) -> float:
    """Twenty Adam steps on 64 random images labelled by the sign of their mean; the accuracy after."""
    import torch

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, *candidate.input_shape, generator=generator)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    module.train()
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(x), y)
        loss.backward()
        optimizer.step()
    module.eval()
    with torch.no_grad():
        return float((module(x).argmax(1) == y).float().mean())
