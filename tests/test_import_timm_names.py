"""Import of modules that return several tensors (issue 25): they keep their names as blocks with `outputs`.

timm's HRNet modules take and return a list of tensors, one per resolution, and run in stages
(`nn.Sequential`s of modules); DPN's dual-path blocks return (residual, dense) and sit, named
`conv2_1`, `conv2_2`, ..., in an `nn.Sequential` built from an OrderedDict. Flattening such a module
into its container gave names no spec can write (`features.conv2_1.c1x1_w_s1`, `stage2.0.branches.0`).
Now each becomes a block declaring its outputs, read as `@conv2_1.0`, `@conv2_1.1`, and a stage of them
the named repeat `[@x, @y] -> module x(n) as stage2`, as the zoo's hand-written HRNet reads. The round
trip (weights by name, keys in order, counts, outputs) is the oracle; small stand-ins run without timm,
and the smallest timm members where timm is installed.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import specdsl  # noqa: E402
from specdsl.backends.torch.capture_import import from_torch  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # a shared machine: several threads per small op only contend


def _round_trips(module: nn.Module, shape: tuple[int, ...], name: str) -> str:
    imported = from_torch(module.eval(), shape, name=name)
    rt = imported.round_trip
    assert rt is not None and rt.ok and rt.max_rel_error <= 1e-5, rt
    assert rt.params == sum(p.numel() for p in module.parameters())
    assert list(specdsl.to_torch(imported.text).state_dict()) == list(module.state_dict())
    return imported.text


class Fuse(nn.Module):
    """An HRNet module in miniature: a list of two resolutions in, two out, branches in a ModuleList."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)])
        self.up = nn.Sequential(nn.Conv2d(c, c, 1), nn.Upsample(scale_factor=2.0))
        self.act = nn.ReLU()

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        a, b = self.branches[0](xs[0]), self.branches[1](xs[1])
        return [self.act(a + self.up(b)), b]


class Multi(nn.Module):
    def __init__(self, c: int = 8, modules: int = 2) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.transition = nn.ModuleList([nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 3, stride=2, padding=1)])
        self.stage2 = nn.Sequential(*(Fuse(c) for _ in range(modules)))
        self.head = nn.Conv2d(c, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        ys = self.stage2([t(x) for t in self.transition])
        return self.head(ys[0] + nn.functional.interpolate(ys[1], scale_factor=2.0))


@pytest.mark.parametrize("modules", [1, 3])
def test_a_stage_of_modules_with_several_outputs_is_a_named_repeat(modules: int) -> None:
    text = _round_trips(Multi(modules=modules), (3, 16, 16), "multi")
    assert re.search(r"^block fuse\(\) inputs\(x, y\) \{", text, re.M), text
    # Returned as [act, b]: the order the next module reads them in, where there is one; else the
    # order they are computed in (b first).
    outputs = "[@act, @branches.1]" if modules > 1 else "[@branches.1, @act]"
    assert f"    outputs {outputs}\n" in text, text
    # One module is still a container of copies (stage2.0): an indexed repeat of one.
    count = "x(1, j)" if modules == 1 else f"x{modules}"
    assert f"[@transition.0, @transition.1] -> fuse {count} as stage2" in text, text
    assert "@stage2.0" in text and "@stage2.1" in text


class Dual(nn.Module):
    """A DPN dual-path block in miniature: (residual, dense) out, a tensor or that pair in."""

    def __init__(self, cin: int, c: int) -> None:
        super().__init__()
        self.c = c
        self.conv = nn.Conv2d(cin, 2 * c, 1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x_in = torch.cat(x, dim=1) if isinstance(x, tuple) else x
        y = self.conv(x_in)
        return self.act(y[:, :self.c]), torch.cat([x_in, y[:, self.c:]], dim=1)


class Join(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.bn(torch.cat(x, dim=1))


class DualNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv1_1", nn.Conv2d(3, 8, 3, padding=1)), ("conv2_1", Dual(8, 4)), ("conv2_2", Dual(16, 4)),
            ("conv5_bn_ac", Join(24))]))
        self.classifier = nn.Conv2d(24, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def test_named_modules_with_several_outputs_keep_their_names() -> None:
    text = _round_trips(DualNet(), (3, 8, 8), "dual")
    assert "outputs [" in text
    assert re.search(r"\[@conv2_1\.0, @conv2_1\.1\] -> \w+.* as conv2_2", text), text
    assert re.search(r"\[@conv2_2\.0, @conv2_2\.1\] -> \w+ as conv5_bn_ac", text), text
    assert "} as features" in text


@pytest.mark.parametrize("name", ["dpn48b", "hrnet_w18_small"])
def test_timm_dpn_and_hrnet_import_exactly(name: str) -> None:
    timm = pytest.importorskip("timm")
    text = _round_trips(timm.create_model(name, pretrained=False), (3, 32, 32), name)
    if name.startswith("hrnet"):  # read as the zoo's hand-written hrnet.cnn
        for part in ("as branches.1", "as fuse_layers.1.0", "outputs [", "as stage2", "@stage4.3 ->"):
            assert part in text, part
    else:
        assert "as conv2_1" in text and "[@conv2_1.0, @conv2_1.1] ->" in text
