"""Oracles for condconv (timm's CondConv2d, EfficientNet-CondConv): specdsl's figures (shape, params, MACs
as PyTorch's flop counter counts them) and its lowering against timm's own module with the same weights, the
NumPy reference and the emitted source against to_torch, the saved tensors against autograd's hooks, the
located errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backend_agreement import assert_backends_agree  # noqa: E402
from test_train_memory import assert_exact  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import specdsl  # noqa: E402
from specdsl.backends.torch.fx import to_torch  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

CC = """model cc
input [8, 7, 7]
layers {
    adaptive_avgpool(1) -> flatten -> linear(4) as routing_fn -> sigmoid as r
    [@input, @r] -> condconv(16, k=1) as conv_pw
    bn as bn
    relu as act
    [@act, @r] -> condconv(16, k=3, stride=2, pad=1, groups=16, bias=true) as conv_dw
    [@conv_dw, @r] -> condconv(6, k=[3, 1], pad=[1, 0], dilation=2, groups=2) as conv_pwl
}
"""


class _Timm(torch.nn.Module):
    """The same layers from timm's CondConv2d (names as the spec's)."""

    def __init__(self) -> None:
        super().__init__()
        from timm.layers import CondConv2d

        self.routing_fn = torch.nn.Linear(8, 4)
        self.conv_pw = CondConv2d(8, 16, 1, num_experts=4)
        self.bn = torch.nn.BatchNorm2d(16)
        self.conv_dw = CondConv2d(16, 16, 3, stride=2, padding=1, groups=16, bias=True, num_experts=4)
        self.conv_pwl = CondConv2d(16, 6, (3, 1), padding=(1, 0), dilation=2, groups=2, num_experts=4)

    def forward(self, x: Any) -> Any:
        r = torch.sigmoid(self.routing_fn(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)))
        y = torch.relu(self.bn(self.conv_pw(x, r)))
        return self.conv_pwl(self.conv_dw(y, r), r)


def _macs(module: Any, x: Any) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    return int(counter.get_total_flops()) // 2 // x.shape[0]


def test_figures_and_outputs_equal_timms_condconv() -> None:
    pytest.importorskip("timm")
    torch.manual_seed(0)
    model = specdsl.load(CC, warn=False)
    ours, theirs = to_torch(model).eval(), _Timm().eval()
    for m in theirs.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 8, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    assert model.totals.params == sum(p.numel() for p in theirs.parameters())
    assert model.totals.macs == _macs(theirs, x) == _macs(ours, x)
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]


def test_numpy_and_emitted_source_match_to_torch() -> None:
    model = specdsl.load(CC, warn=False)
    assert_backends_agree(model, np.random.default_rng(0).standard_normal((2, 8, 7, 7)), rtol=1e-10, atol=1e-10)


def test_saved_bytes_equal_autograd() -> None:
    assert_exact(specdsl.load(CC, warn=False))


def test_errors() -> None:
    with pytest.raises(SpecError, match="E312"):  # routing that is not [E]
        specdsl.load(CC.replace("[@input, @r] -> condconv(16, k=1)", "[@input, @input] -> condconv(16, k=1)"))
    with pytest.raises(SpecError, match="E303"):  # groups must divide the channels
        specdsl.load(CC.replace("groups=2)", "groups=4)"))
