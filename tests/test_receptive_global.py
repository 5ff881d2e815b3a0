"""The local receptive field beside global context (specdsl.passes.receptive), against PyTorch.

The oracle: the gradient of one output unit with respect to the input. With every global pool's
output detached, the gradient flows only through the local paths, so its support is the local
field; with them attached it covers the whole input (the "+ global" flag).
"""

from __future__ import annotations

from typing import Any

import pytest

import specdsl
from specdsl.passes.receptive import GatedRF, local_field, sees_global

torch = pytest.importorskip("torch")

# An SE network: two stages of conv -> SE gate, a strided conv between, then a residual around an SE body.
SPEC = """\
model se_net
input [3, 41, 41]
layers {
    conv(8, k=3, pad=1) -> silu -> se(channels=8, squeeze=2, act=silu)
    conv(8, k=3, stride=2, pad=1) -> silu -> se(channels=8, squeeze=2, act=silu)
    conv(8, k=5, pad=2) as last
}
"""


def _support(module: Any, detach_global: bool) -> tuple[int, int]:
    """Rows and columns of the input that the centre unit of the output depends on."""
    if detach_global:
        for m in module.modules():
            if type(m).__name__ == "GlobalPool":
                m.register_forward_hook(lambda mod, args, out: out.detach())
    x = torch.randn(1, 3, 41, 41, dtype=torch.float64, requires_grad=True)
    y = module.double()(x)
    y = y[0] if isinstance(y, tuple) else y
    h, w = y.shape[-2:]
    y[0, :, h // 2, w // 2].sum().backward()
    nz = x.grad[0].abs().sum(0).nonzero()
    return int(nz[:, 0].max() - nz[:, 0].min() + 1), int(nz[:, 1].max() - nz[:, 1].min() + 1)


def test_local_field_is_the_gradient_support_without_the_gates() -> None:
    m = specdsl.load(SPEC)
    rf = m.rows()[-1][1].rf
    assert isinstance(rf, GatedRF) and sees_global(rf)
    local = local_field(rf)
    assert local is not None
    torch.manual_seed(0)
    module = specdsl.to_torch(m, seed=0)
    module.eval()
    assert _support(module, detach_global=False) == (41, 41)  # through the gates: everything
    module = specdsl.to_torch(m, seed=0)
    module.eval()
    assert _support(module, detach_global=True) == (local[0].size, local[1].size)


def test_classifier_head_after_the_gates_is_whole_input_only() -> None:
    m = specdsl.load(SPEC.replace("conv(8, k=5, pad=2) as last", "conv(8, k=5, pad=2) as last -> gap(keepdims=true)"))
    rf = m.rows()[-1][1].rf
    assert sees_global(rf) and local_field(rf) is None and not isinstance(rf, GatedRF)
