"""The zoo's res2net50_26w_4s and hrnet_w18_small against timm (pretrained=False), issue 26.

Res2Net needs lists of modules (timm registers `convs.0-2` before `bns.0-2` while conv i + 1 reads
bn i's output); HRNet needs blocks with several inputs and outputs (its modules) and nested lists
(`fuse_layers.i.j`, with timm's nn.Identity members left out), and its larger members stages of
several modules. Each must equal timm's module:
parameters, buffers, MACs, state_dict keys in order and shapes, and outputs after loading timm's
state_dict by name. Runs where timm is installed (/work/tvenv, the lock's torchvision/timm pair).
timm's module is built once per model and process (the tests only read it); its MACs are counted on
a copy on the meta device (shapes only: hooks see the same outputs, no convolution runs).
"""

from __future__ import annotations

import functools

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

import specdsl  # noqa: E402

# hrnet_w18_small_v2: stages of several modules (`x(m, j) as stage3`, each feeding its outputs on).
MODELS = ("res2net50_26w_4s", "hrnet_w18_small", "hrnet_w18_small_v2")
SIZE = 64  # small inputs keep the forward cheap; every stride still divides it


@functools.cache
def _timm(name: str):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    # Running statistics away from 0 / 1, so loading them by name is what makes the outputs agree.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


def _macs(name: str, size: int) -> int:
    """Multiply-accumulates of convs and linears, bias excluded (the zoo's convention), by hooks."""
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False).eval()
    total = 0

    def hook(module, inputs, output):  # type: ignore[no-untyped-def]
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output[0].numel() * k
        elif isinstance(module, torch.nn.Linear):
            total += output[0].numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size, device="meta"))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("name", MODELS)
def test_figures_and_keys_equal_timms(name: str) -> None:
    ref = _timm(name)
    m = specdsl.load(name, input=(3, SIZE, SIZE))
    assert m.totals.params == sum(p.numel() for p in ref.parameters())
    assert m.totals.buffers == sum(b.numel() for b in ref.buffers())
    assert m.totals.macs == _macs(name, SIZE)
    net = specdsl.to_torch(m)
    ours, theirs = net.state_dict(), ref.state_dict()
    assert list(ours) == list(theirs)  # the same keys in the same order
    assert [tuple(t.shape) for t in ours.values()] == [tuple(t.shape) for t in theirs.values()]


@pytest.mark.parametrize("name", MODELS)
def test_outputs_equal_timms_after_loading_its_state_dict(name: str) -> None:
    ref = _timm(name)
    net = specdsl.to_torch(specdsl.load(name, input=(3, SIZE, SIZE))).eval()
    net.load_state_dict(ref.state_dict())  # strict: by name
    torch.manual_seed(1)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        got, want = net(x), ref(x)
    assert got.shape == want.shape
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-5


def test_the_full_size_figures() -> None:
    """At timm's 224 x 224, the figures the README's zoo table gives."""
    res2net, hrnet = specdsl.load("res2net50_26w_4s"), specdsl.load("hrnet_w18_small")
    assert (res2net.totals.params, res2net.totals.macs) == (25_699_120, 4_255_166_464)
    assert (hrnet.totals.params, hrnet.totals.macs) == (13_187_464, 1_601_508_352)
