"""A node whose tensor is a parameter of its container named by the node (TensorSpec.of_container,
layer_scale): torchvision's CNBlock.layer_scale is `features.1.0.layer_scale`, no `.weight`.

Every backend keys it by the node's module path: to_torch (a Parameter on the parent, read with
get_attr), the emitted source (`self.<name> = nn.Parameter(...)` / `register_parameter`), NumPy and
ONNX weights, checkpoint loading and freeze_until; a container's own parameters come first in its
state_dict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import specdsl  # noqa: E402
from specdsl.backends.numpy import NumpyModel  # noqa: E402
from specdsl.backends.numpy.weights import weight_shapes  # noqa: E402
from specdsl.backends.torch.emit import check_emitted, emit, load_emitted  # noqa: E402
from specdsl.backends.torch.fx import param_counts, to_torch  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402

# At the model's top level (quoted name, positional), inside a named stage (named, and as the only layer
# of a stage), and inside a block class (positional).
SPEC = """model own
input [4, 6, 6]

block scaled(c: int) {
    conv(c, k=1) -> layer_scale(0.75) -> relu
}

layers {
    conv(4, k=3, pad=1) as conv1
    layer_scale(0.5) as "scale-1"
    stage { conv(4, k=1) -> layer_scale(1e-6) as ls -> relu } as s
    stage { layer_scale(2.0) } as only
    scaled(4) as b1
    scaled(4) as b2
    layer_scale(0.25, frozen=true)
}
"""

KEYS = ["scale-1", "6", "conv1.weight", "conv1.bias", "s.ls", "s.0.weight", "s.0.bias", "only.0",
        "b1.1", "b1.0.weight", "b1.0.bias", "b2.1", "b2.0.weight", "b2.0.bias"]


def test_its_key_is_the_node_path_and_leads_its_container() -> None:
    model = specdsl.load(SPEC)
    module = to_torch(model)
    assert list(module.state_dict()) == KEYS
    assert list(weight_shapes(model)) == KEYS  # the NumPy backend's keys and order
    assert module.get_parameter("s.ls").shape == (4, 1, 1)
    assert torch.all(module.get_parameter("s.ls") == torch.tensor(1e-6))  # ones * init, as torchvision's
    assert torch.all(module.get_parameter("b1.1") == 0.75)
    assert not module.get_parameter("6").requires_grad  # frozen=true
    counts = param_counts(module, model)
    ls = next(n for n in model.graph.nodes if n.name == "ls")
    assert counts[ls.index] == (4, 0)
    assert model.totals.params == sum(p.numel() for p in module.parameters())


def test_the_emitted_source_registers_it_on_its_container() -> None:
    model = specdsl.load(SPEC)
    source = emit(model)
    assert "self.register_parameter('scale-1', nn.Parameter(torch.full((4, 1, 1), 0.5)))" in source
    assert "self.s.register_parameter('ls', nn.Parameter(torch.full((4, 1, 1), 1e-06)))" in source
    assert "self.register_parameter('1', nn.Parameter(torch.full((c, 1, 1), 0.75)))" in source
    assert "* self.get_parameter('s.ls')" in source and "* self.get_parameter('1')" in source
    assert check_emitted(model, source) == []  # same state_dict, in order, and outputs


def test_an_identifier_name_is_an_attribute_of_the_block_class() -> None:
    model = specdsl.load("convnext_tiny")
    source = emit(model)
    assert "self.layer_scale = nn.Parameter(torch.full((w, 1, 1), 1e-06))" in source
    assert "h1 = h1 * self.layer_scale" in source


def test_numpy_and_torch_agree_under_the_same_keys() -> None:
    model = specdsl.load(SPEC)
    module = to_torch(model, seed=1).eval().double()
    weights = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 6))
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(NumpyModel(model, weights)(x), expected, rtol=1e-12, atol=1e-12)


def test_onnx_initializers_carry_the_node_path() -> None:
    pytest.importorskip("onnx")
    from specdsl.backends.onnx.export import to_onnx

    proto = to_onnx(specdsl.load(SPEC))
    names = {init.name for init in proto.graph.initializer}
    assert {"scale-1", "s.ls", "only.0", "b1.1", "6"} <= names


def test_a_checkpoint_loads_it_by_name_and_a_missing_one_is_named(tmp_path: Path) -> None:
    model = specdsl.load(SPEC)
    state = to_torch(model, seed=3).state_dict()
    torch.save(state, tmp_path / "ok.pth")
    loaded = to_torch(model, weights=tmp_path / "ok.pth")
    assert torch.equal(loaded.get_parameter("s.ls"), state["s.ls"])
    del state["s.ls"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(SpecError) as info:
        to_torch(model, weights=tmp_path / "missing.pth")
    error = info.value.errors[0]
    assert "no tensor 's.ls' [4, 1, 1]" in error.message and "s.ls" in error.message and error.loc is not None
    assert error.loc.line == 11


def test_freeze_until_freezes_it_by_its_key() -> None:
    module = to_torch(SPEC, freeze_until="ls")
    frozen = [k for k, p in module.named_parameters() if not p.requires_grad]
    assert frozen == ["scale-1", "6", "conv1.weight", "conv1.bias", "s.ls", "s.0.weight", "s.0.bias"]


def test_frozen_layers_emit_through_the_safety_allowlist() -> None:
    model = specdsl.load("model f\ninput [3, 8, 8]\nlayers {\n    conv(4, k=3, frozen=true) as conv1\n"
                         "    layer_scale(0.5, frozen=true) as ls\n}\n")
    source = emit(model)
    assert "for p in self.conv1.parameters():" in source and "for p in [self.ls]:" in source
    assert check_emitted(model, source) == []
    emitted = load_emitted(source)()
    assert [k for k, p in emitted.named_parameters() if not p.requires_grad] == ["ls", "conv1.weight", "conv1.bias"]
