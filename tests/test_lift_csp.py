"""Import of a cross-stage split (CSPNet): a container whose input is one part of a split made by its parent.

timm's CrossStage splits its tensor (`xs, xb = x.split(...)`), runs its `blocks` on `xb` and
concatenates `xs` back. Inside `blocks` the part is the container's input, read twice where a
residual adds it back; recovery named it there by its split, which lives only in the parent's
scope (a KeyError, an internal error, for every timm csp* model). The oracle is PyTorch: the
import round-trips exactly (keys, counts, outputs).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from specdsl.backends.torch.capture_import import from_torch  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # a shared machine: several threads per small op only contend


class Residual(nn.Module):
    """Reads its input twice: through the conv, and added back."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.conv(x))


class CrossStage(nn.Module):
    """A split whose part 1 goes through a child container that reads it at two nodes."""

    def __init__(self, c: int, chunk: bool = False) -> None:
        super().__init__()
        self.chunk = chunk
        self.conv_exp = nn.Conv2d(c, 2 * c, 1)
        self.blocks = nn.Sequential(Residual(c), Residual(c))
        self.conv_transition = nn.Conv2d(2 * c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_exp(x)
        xs, xb = x.chunk(2, dim=1) if self.chunk else x.split(x.shape[1] // 2, dim=1)
        return self.conv_transition(torch.cat([xs, self.blocks(xb)], dim=1))


@pytest.mark.parametrize("chunk", [False, True])
def test_a_part_that_is_a_containers_input_round_trips(chunk: bool) -> None:
    module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), CrossStage(8, chunk=chunk), CrossStage(8, chunk=chunk))
    imported = from_torch(module, (3, 8, 8), name="csp")
    assert imported.round_trip.ok and imported.round_trip.max_rel_error <= 1e-5
    assert "@split.1 ->" in imported.text or "@chunk.1 ->" in imported.text, imported.text


def test_timm_cspresnet50_round_trips() -> None:
    timm = pytest.importorskip("timm")
    module = timm.create_model("cspresnet50", pretrained=False).eval()
    imported = from_torch(module, (3, 32, 32), name="cspresnet50")
    rt = imported.round_trip
    # verify compares the state_dict keys in order, the parameter, buffer and MAC counts and the outputs
    assert rt.ok and rt.order is None and rt.max_rel_error <= 1e-5
    assert rt.params == sum(p.numel() for p in module.parameters())
