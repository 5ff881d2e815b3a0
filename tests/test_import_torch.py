"""Import from PyTorch (`specdsl import`, specdsl.from_torch): the capture, the import table and the round trip.

The oracle is PyTorch itself: each lifted node's arguments, built back into a module by specdsl's own
lowering, must print as the original module does (``repr``), and an imported model, rebuilt by
``to_torch``, must take the original's state_dict by name (keys in order) and give its outputs.
What cannot be mapped is reported, every node with its module path and source line, and nothing is
written. These tests need torch alone; torchvision's 78 models are tests/test_import_torchvision.py's.
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from specdsl.backends.torch.capture_import import from_torch  # noqa: E402
from specdsl.backends.torch.capture_lift import lift_module  # noqa: E402
from specdsl.backends.torch.imports import IMPORTS  # noqa: E402
from specdsl.cli.main import main  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402
from specdsl.ops import OPS  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # a shared machine: several threads per small op only contend


def test_every_op_has_an_import_entry_or_says_why_not() -> None:
    assert IMPORTS.coverage(OPS) is None, IMPORTS.coverage(OPS)
    for op, entry in IMPORTS.items():
        recognises = entry.modules or entry.functions or entry.methods
        assert (entry.read is not None and recognises) or (entry.read is None and entry.refusal
                                                           and not recognises), op


class Basic(nn.Module):
    def __init__(self, c: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c if stride == 1 else c // 2, c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.down = nn.Conv2d(c // 2, c, 1, stride=stride) if stride != 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class Net(nn.Module):
    """A user's model: residual blocks, a functional head, a view as flatten."""

    def __init__(self, width: float = 1.0, classes: int = 10) -> None:
        super().__init__()
        c = int(16 * width)
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(Basic(c), Basic(c))
        self.layer2 = nn.Sequential(Basic(2 * c, stride=2), Basic(2 * c))
        self.fc = nn.Linear(2 * c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.view(x.size(0), -1))


def test_a_user_model_round_trips_exactly() -> None:
    module = Net(width=0.5)
    imported = from_torch(module, (3, 16, 16), name="net")
    rt = imported.round_trip
    assert rt.ok and rt.max_rel_error <= 1e-5
    assert rt.params == sum(p.numel() for p in module.parameters()) == imported.model.totals.params
    built = __import__("specdsl").to_torch(imported.text)
    assert list(built.state_dict()) == list(module.state_dict())
    assert "layer1" in imported.text and "model net" in imported.text



class Block(nn.Module):
    """A class whose name, made a block's, would be the DSL's keyword `block` (timm names its units so)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


def test_a_class_named_like_a_keyword_gives_a_block_that_parses() -> None:
    module = nn.Sequential(Block(4), Block(4), Block(4))
    imported = from_torch(module, (4, 8, 8), name="net")
    assert imported.round_trip.ok
    assert re.search(r"^block block_block\(", imported.text, re.M), imported.text
    assert list(__import__("specdsl").to_torch(imported.text).state_dict()) == list(module.state_dict())

class Zoo(nn.Module):
    """One module of many kinds, for the table's readers."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, (3, 5), stride=(1, 2), padding=(1, 2), dilation=1, groups=1, bias=False)
        self.c2 = nn.Conv2d(8, 8, 3, padding="same", groups=8, padding_mode="reflect")
        self.bn = nn.BatchNorm2d(8, eps=1e-3, momentum=0.01)
        self.gn = nn.GroupNorm(2, 8, eps=1e-6)
        self.act = nn.LeakyReLU(0.2)
        self.hs = nn.Hardswish()
        self.gelu = nn.GELU(approximate="tanh")
        self.mp = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.ap = nn.AvgPool2d(2, count_include_pad=False)
        self.up = nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False)
        self.dc = nn.ConvTranspose2d(12, 4, 4, stride=2, padding=1, output_padding=1)
        self.pad = nn.ReflectionPad2d((1, 1, 2, 2))
        self.ps = nn.PixelShuffle(2)
        self.shuffle = nn.ChannelShuffle(2)
        self.drop = nn.Dropout2d(0.1)
        self.pool = nn.AdaptiveMaxPool2d((2, 3))
        self.prelu = nn.PReLU(1)
        self.fc = nn.Linear(6, 5, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn(self.c1(x)))
        y = self.gelu(self.hs(self.gn(self.c2(y))))
        a, b = torch.chunk(y, 2, dim=1)
        y = torch.cat([torch.sigmoid(a) * b, self.shuffle(y)], dim=1)
        y = self.up(self.ap(self.mp(y)))
        y = self.ps(self.dc(self.pad(y)))
        z = self.prelu(self.drop(y))
        parts = z.split([1], dim=1)
        return self.fc(self.pool(parts[0]).flatten(1)).softmax(-1)


def _one_layer_module(op: str, args: dict, in_shape: tuple[int, ...]) -> nn.Module:
    """The op with these arguments, lowered by specdsl alone (a one-layer spec through to_torch)."""
    import specdsl
    from specdsl.render.printer import to_dsl

    text = to_dsl({"model": "one", "input": list(in_shape), "layers": [{op: args} if args else op]})
    return specdsl.to_torch(specdsl.load(text, warn=False))  # a lone layer may leave input unread (W301)


def _same_axes(text: str) -> str:
    """``(2.0, 2.0)`` as ``2.0``: PyTorch prints a per-axis value as it was given."""
    return re.sub(r"\((-?[\d.]+)(?:, \1)+\)", r"\1", text)


def test_each_lifted_module_is_the_module_it_came_from() -> None:
    module = Zoo().eval()
    graph = lift_module(module, (3, 12, 20))
    assert not graph.unmapped
    named = dict(module.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    def keep(name: str):  # the input shape each module sees
        return lambda m, i, o: shapes.setdefault(name, tuple(i[0].shape[1:])) and None

    hooks = [m.register_forward_hook(keep(n)) for n, m in named.items() if n]
    module(torch.randn(2, 3, 12, 20))
    for h in hooks:
        h.remove()
    modules = [n for n in graph.nodes if n.is_module]
    assert {n.path for n in modules} == {n for n in named if n}  # paths are named_modules paths
    for node in modules:
        rebuilt = _one_layer_module(node.op, node.args, shapes[node.path])
        (child,) = [m for n, m in rebuilt.named_modules() if n and not list(m.children())]
        assert _same_axes(repr(child)) == _same_axes(repr(named[node.path])), node


def test_functions_and_methods_lift_to_their_ops() -> None:
    graph = lift_module(Zoo(), (3, 12, 20))
    ops = [n.op for n in graph.nodes[1:] if not n.is_module]
    assert ops == ["chunk", "part", "sigmoid", "part", "mul", "concat", "split", "part", "flatten", "softmax"]
    softmax = graph.nodes[-1]
    assert softmax.args == {} and softmax.origin == "Tensor.softmax"  # dim=-1 is the features: 1, the default


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if x.sum() > 0:  # the branch
            x = x * 2
        return x


class ShapeBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 8:  # a branch on a shape takes its value at the traced input
            x = F.max_pool2d(x, 2)
        return self.conv(x).flatten(1)


class Unmappable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.inner = nn.Sequential(nn.Conv2d(4, 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cumsum(self.conv(x), dim=1)
        return torch.erf(self.inner(x))


def _line_of(cls: type, text: str) -> int:
    lines, start = inspect.getsourcelines(cls)
    return start + next(i for i, line in enumerate(lines) if text in line)


def test_control_flow_on_values_is_refused_with_its_line() -> None:
    with pytest.raises(SpecError) as caught:
        from_torch(DataDependent(), (3, 8, 8))
    (diag,) = caught.value.diagnostics
    assert diag.code == "E510" and "data-dependent" in diag.message
    assert diag.loc is not None and diag.loc.line == _line_of(DataDependent, "# the branch")
    assert diag.loc.file.endswith("test_import_torch.py")


def test_a_branch_on_a_shape_takes_its_value() -> None:
    graph = lift_module(ShapeBranch(), (3, 16, 16))
    assert [n.op for n in graph.nodes] == ["input", "maxpool", "conv", "flatten"]
    assert [n.op for n in lift_module(ShapeBranch(), (3, 8, 8)).nodes] == ["input", "conv", "flatten"]


def test_every_unmapped_node_is_listed_with_path_op_and_line() -> None:
    with pytest.raises(SpecError) as caught:
        from_torch(Unmappable(), (3, 8, 8))
    diags = caught.value.diagnostics
    assert [d.code for d in diags] == ["E510", "E510"]
    assert "torch.cumsum" in diags[0].message and "torch.erf" in diags[1].message
    assert diags[0].loc is not None and diags[0].loc.line == _line_of(Unmappable, "torch.cumsum(")
    assert diags[1].loc is not None and diags[1].loc.line == _line_of(Unmappable, "torch.erf(")


# -- the command ---------------------------------------------------------------------------

MODEL_FILE = '''
import torch
from torch import nn


class Small(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.classifier = nn.Linear(width, 4)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


class Bad(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.erf(self.conv(x))
'''


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "mymodel.py"
    path.write_text(textwrap.dedent(MODEL_FILE), encoding="utf-8")
    return path


def test_cli_imports_a_users_file(model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, weights = tmp_path / "small.cnn", tmp_path / "small.safetensors"
    code = main(["import", f"{model_file}:Small", "--args", json.dumps({"width": 6}), "--input", "3,8,8",
                 "-o", str(out), "--weights-out", str(weights)])
    assert code == 0, capsys.readouterr().err
    assert "round trip exact" in capsys.readouterr().err
    assert main(["check", str(out)]) == 0
    from safetensors.numpy import load_file

    import specdsl

    module = specdsl.to_torch(str(out), weights=str(weights))
    assert set(load_file(str(weights))) == set(module.state_dict())


def test_cli_writes_nothing_when_a_node_is_unmapped(model_file: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bad.cnn"
    assert main(["import", f"{model_file}:Bad", "--input", "3,8,8", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "E510" in err and "torch.erf" in err and "mymodel.py:22" in err
    assert not out.exists()


def test_cli_usage_errors(model_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", f"{model_file}:Small"]) == 2  # no --input for a user's class
    assert "--input" in capsys.readouterr().err
    assert main(["import", f"{model_file}:Small", "--input", "3,8,8", "-o", str(model_file)]) == 2
    assert "refusing to write over" in capsys.readouterr().err
    assert main(["import", f"{model_file}:Small", "--args", "[1]", "--input", "3,8,8"]) == 2
    assert main(["import", "nothing_here"]) == 2


def test_cli_names_the_install_line_of_a_missing_package(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    try:
        import timm  # noqa: F401
        pytest.skip("timm is installed")
    except ImportError:
        pass
    assert main(["import", "timm:resnet18", "-o", "x.cnn"]) == 1
    assert "pip install timm" in capsys.readouterr().err


def test_cli_partial_writes_todos_and_check_fails(model_file: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bad.cnn"
    assert main(["import", f"{model_file}:Bad", "--input", "3,8,8", "-o", str(out), "--partial"]) == 1
    text = out.read_text(encoding="utf-8")
    assert "# TODO(import): torch.erf" in text and "mymodel.py:22" in text and "as conv" in text
    capsys.readouterr()
    assert main(["check", str(out)]) == 1
    assert "E204" in capsys.readouterr().err


class Slices(nn.Module):
    """A channel range (ghostnet's out[:, :c]), Python's sum() (0 + a + b) and x * 1."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = sum([self.a(x), self.b(x)]) * 1
        return torch.cat([y[:, 2:6], y[:, :8]], dim=1), y[..., :4, :]


def test_slices_and_neutral_terms_lift_exactly() -> None:
    graph = lift_module(Slices(), (3, 6, 4))
    ops = [n.op for n in graph.nodes]
    assert ops == ["input", "conv", "conv", "add", "split", "part", "concat", "split", "part"], ops
    assert graph.nodes[4].args == {"sizes": [2, 4, 2]} and graph.nodes[5].args == {"index": 1}
    assert graph.nodes[7].args == {"sizes": [4, 2], "dim": 2} and graph.nodes[8].args == {"index": 0}
    assert from_torch(OneSlice(), (3, 6, 4)).round_trip.ok


class OneSlice(Slices):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = sum([self.a(x), self.b(x)])
        return torch.cat([y[:, 2:6], y], dim=1)
