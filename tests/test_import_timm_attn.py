"""Import of timm's split attention (ResNeSt's SplitAttn + RadixSoftmax), selective kernels (SKNet's
SelectiveKernel + SelectiveKernelAttn) and CondConv (EfficientNet-CondConv's CondConv2d): torch.stack,
Tensor.sum over the branch axis and the radix transpose become stack, sum and permute, CondConv2d
condconv, and the spec round-trips exactly (keys, params, buffers, MACs, outputs). The smallest models
of each family, at small inputs."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from torch import nn  # noqa: E402

from specdsl.backends.torch.capture_import import from_torch  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class _Wrapped(nn.Module):
    """One timm layer as a model of its own (its keys under `layer.`)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def _imported(module: nn.Module, shape: tuple[int, ...]) -> str:
    """The spec text; from_torch has compared keys in order, counts and outputs (1e-5 relative)."""
    result = from_torch(module.eval(), shape)
    assert result.round_trip is not None and result.round_trip.ok, result.round_trip
    return result.text


@pytest.mark.parametrize(("radix", "groups"), [(2, 1), (4, 2)])
def test_split_attention_radix_and_cardinality(radix: int, groups: int) -> None:
    from timm.layers import SplitAttn

    torch.manual_seed(0)
    layer = SplitAttn(16, 16, radix=radix, groups=groups, norm_layer=nn.BatchNorm2d)
    text = _imported(_Wrapped(layer), (16, 6, 6))
    assert "sum(1)" in text and f"reshape([{radix}, 16, 6, 6])" in text
    if radix > 1 and groups > 1:
        assert "permute([0, 2, 1, 3])" in text  # RadixSoftmax's transpose(1, 2)


def test_selective_kernel_stacks_its_paths() -> None:
    from timm.layers import SelectiveKernel

    torch.manual_seed(0)
    text = _imported(_Wrapped(SelectiveKernel(16, 16)), (16, 6, 6))
    assert "stack" in text and "sum(1)" in text


class _Forms(nn.Module):
    """The call forms the readers take: torch.stack at a negative dim, Tensor.sum over a tuple with
    keepdim, torch.transpose as a function, torch.sum at a negative dim (written as its axis from 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.stack([x, torch.relu(x)], dim=-1)
        b = torch.transpose(a.sum((1, 4), keepdim=True), 2, 3)
        return torch.sum(b, dim=-1) + x


def test_each_call_form_reads_back() -> None:
    text = _imported(_Forms(), (4, 6, 6))
    for form in ("stack(4)", "sum([1, 4], keepdims=true)", "permute([0, 1, 3, 2, 4])", "sum(4)"):
        assert form in text, (form, text)


@pytest.mark.parametrize("name", ["skresnet18", "resnest14d"])
def test_the_smallest_models_round_trip(name: str) -> None:
    module = timm.create_model(name, pretrained=False, num_classes=10)
    result = from_torch(module.eval(), (3, 32, 32), name=name)
    rt = result.round_trip
    assert rt is not None and rt.ok and rt.params == sum(p.numel() for p in module.parameters())
    keys = list(module.state_dict())
    assert "layer1.0.conv1.attn.fc_reduce.weight" in keys or "layer1.0.conv2.fc1.weight" in keys


def test_condconv_efficientnet_round_trips() -> None:
    """EfficientNet-CondConv: timm's CondConv2d, called with (x, routing), becomes condconv; timm registers
    each block's routing_fn after the convs it feeds, so its keys come in another order (same names)."""
    module = timm.create_model("efficientnet_cc_b0_4e", pretrained=False, num_classes=10)
    result = from_torch(module.eval(), (3, 32, 32), key_order=False)
    rt = result.round_trip
    assert rt is not None and rt.ok and rt.order is not None
    assert "condconv(" in result.text and rt.params == sum(p.numel() for p in module.parameters())
