"""Loading checkpoints: by name (the zoo's names are torchvision's), by position when asked; transfer
learning; frozen layers; safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from test_torchvision_keys import converted  # noqa: E402

import specdsl  # noqa: E402
from specdsl import zoo  # noqa: E402
from specdsl.backends.torch.checkpoint import read_checkpoint, save_checkpoint  # noqa: E402
from specdsl.backends.torch.fx import to_torch  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402

REFERENCE = json.loads((Path(__file__).parent / "reference" / "torchvision_cnns.json").read_text())["models"]
ZOO_IN_REFERENCE = [name for name in zoo.names() if name in REFERENCE]


def torchvision_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict in torchvision's layout (keys, shapes, order) with random values."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in REFERENCE[name]["state_dict"]:
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7, dtype=torch.int64)
        else:
            out[key] = torch.rand(shape, generator=gen) + 0.5
    return out


def head10() -> specdsl.Model:
    """resnet18 with a 10-class head: the resnet family's `classes` parameter."""
    return specdsl.load("resnet18", params={"classes": 10})


@pytest.mark.parametrize("name", ZOO_IN_REFERENCE)
def test_torchvision_checkpoints_load_into_every_zoo_model(name: str, tmp_path: Path) -> None:
    """By name, strictly, as .pth and as .safetensors (whose keys come sorted); the models not
    converted yet (test_torchvision_keys.NOT_YET_CONVERTED) by position, as asked."""
    from safetensors.torch import save_file

    state = torchvision_state(name)
    torch.save(state, tmp_path / "tv.pth")
    save_file(dict(sorted(state.items())), tmp_path / "tv.safetensors")
    how = "name" if converted(name) else "position"
    for file in ("tv.pth", "tv.safetensors") if how == "name" else ("tv.pth",):
        module = to_torch(name, weights=tmp_path / file, match=how)
        assert module.load_report.complete and module.load_report.mode == how
        loaded = module.state_dict()
        for (key, ours), (theirs_key, theirs) in zip(loaded.items(), state.items(), strict=True):
            assert key == theirs_key or how == "position"
            assert torch.equal(ours.to(theirs.dtype), theirs)


class _Shaped:
    """Stands for a checkpoint tensor: matching reads only shapes."""

    def __init__(self, shape: list[int]) -> None:
        self.shape = tuple(shape)


@pytest.mark.parametrize("name", [n for n in zoo.all_names() if n in REFERENCE])
def test_torchvision_checkpoints_match_every_zoo_variant(name: str) -> None:
    """Every zoo model of torchvision's (variants included) takes a torchvision checkpoint one to one:
    by name where converted, else by position."""
    from specdsl.backends.torch.checkpoint import spec_slots
    from specdsl.backends.weights_match import match

    model = specdsl.load(name, warn=False)
    with torch.device("meta"):
        module = to_torch(model)
    tensors = {key: _Shaped(shape) for key, shape in REFERENCE[name]["state_dict"]}
    report = match(spec_slots(module, model), tensors, transfer=False,
                   mode="name" if converted(name) else "position")
    assert report.complete and [c for _, c, _ in report.loaded] == list(tensors)


@pytest.mark.parametrize(("name", "head"), [("resnet18", "fc"), ("vgg11", "classifier.6"),
                                            ("efficientnet_b0", "classifier.1")])
def test_a_10_class_head_loads_every_backbone_tensor(name: str, head: str, tmp_path: Path) -> None:
    torch.save(torchvision_state(name), tmp_path / "tv.pth")
    # params= as specdsl.load takes them: the families' class count.
    report = to_torch(name, params={"classes": 10}, weights=tmp_path / "tv.pth", transfer=True,
                      match="name" if converted(name) else "position").load_report
    assert len(report.loaded) == len(REFERENCE[name]["state_dict"]) - 2
    assert [k for k, _ in report.unused] == [f"{head}.weight", f"{head}.bias"]


def test_safetensors_round_trip_keeps_module_order_and_outputs(tmp_path: Path) -> None:
    net = to_torch("resnet18", seed=0).eval()
    save_checkpoint(net, tmp_path / "r.safetensors")
    again = to_torch("resnet18", seed=1, weights=tmp_path / "r.safetensors").eval()
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(net(x), again(x))
    assert list(read_checkpoint(tmp_path / "r.safetensors")) == list(net.state_dict())


def test_numpy_backend_loads_the_same_checkpoints(tmp_path: Path) -> None:
    model = specdsl.load("lenet5")
    net = to_torch(model, seed=0).eval()
    torch.save(net.state_dict(), tmp_path / "l.pth")
    save_checkpoint(net, tmp_path / "l.safetensors")
    x = torch.randn(2, 1, 32, 32)
    expected = net(x).detach().numpy()
    for file in ("l.pth", "l.safetensors"):
        got = specdsl.to_numpy(model, weights=tmp_path / file, dtype="float32")(x.numpy())
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_new_head_loads_the_backbone_and_reports_the_rest(tmp_path: Path) -> None:
    torch.save(torchvision_state("resnet18"), tmp_path / "tv.pth")
    with pytest.raises(SpecError) as info:
        to_torch(head10(), weights=tmp_path / "tv.pth")
    errors = info.value.errors
    assert [e.code for e in errors] == ["E503", "E503"]
    assert "'fc.weight' has shape [1000, 512]" in errors[0].message and "[10, 512]" in errors[0].message
    lines = (Path(__file__).parents[1] / "specs" / "resnet.cnn").read_text().splitlines()
    assert errors[0].loc is not None and "as fc" in lines[errors[0].loc.line - 1]  # the spec line of `fc`
    assert "transfer" in (errors[-1].hint or "")
    module = to_torch(head10(), weights=tmp_path / "tv.pth", transfer=True)
    report = module.load_report
    assert len(report.loaded) == len(REFERENCE["resnet18"]["state_dict"]) - 2
    assert [s.shape for s in report.new] == [(10, 512), (10,)]
    assert [k for k, _ in report.unused] == ["fc.weight", "fc.bias"]
    assert "re-initialised (not in the checkpoint, or shaped differently)" in report.table()
    assert "skipped checkpoint tensors: 2" in report.table() and "matched by name" in report.table()


def test_missing_and_unexpected_tensors_are_named(tmp_path: Path) -> None:
    state = torchvision_state("resnet18")
    state["extra.weight"] = state.pop("layer2.0.downsample.0.weight")
    torch.save(state, tmp_path / "tv.pth")
    with pytest.raises(SpecError) as info:
        to_torch("resnet18", weights=tmp_path / "tv.pth")
    messages = [e.message for e in info.value.errors]
    assert "no tensor 'layer2.0.downsample.0.weight' [128, 64, 1, 1]" in messages[0]
    assert "layer2[0].downsample[0]" in messages[0] and info.value.errors[0].loc is not None
    assert "'extra.weight' [128, 64, 1, 1] is not one of the spec's" in messages[1]


def test_a_checkpoint_with_other_names_loads_by_position_only_when_asked(tmp_path: Path) -> None:
    net = to_torch("resnet18", seed=0)
    renamed = {f"backbone.{k}": v for k, v in net.state_dict().items()}
    torch.save(renamed, tmp_path / "other.pth")
    with pytest.raises(SpecError, match="no checkpoint tensor name is one of the spec's"):
        to_torch("resnet18", weights=tmp_path / "other.pth")
    module = to_torch("resnet18", seed=1, weights=tmp_path / "other.pth", match="position")
    assert module.load_report.mode == "position" and "by position" in module.load_report.table()
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), net.state_dict().values()))


def test_an_ambiguous_change_is_refused_not_guessed(tmp_path: Path) -> None:
    text = "model a\ninput [4, 8, 8]\nlayers {\n    conv(4, 3, pad=1) -> bn -> conv(4, 3, pad=1) -> bn\n}\n"
    torch.save(to_torch(text, seed=0).state_dict(), tmp_path / "a.pth")
    # One conv removed: by position, either of the two checkpoint convs could be the one that is left.
    fewer = text.replace(" -> conv(4, 3, pad=1) -> bn\n", "\n")
    with pytest.raises(SpecError, match="more than one way"):
        to_torch(fewer, weights=tmp_path / "a.pth", transfer=True, match="position")
    # By name there is no doubt: the first two layers keep their names.
    report = to_torch(fewer, weights=tmp_path / "a.pth", transfer=True).load_report
    assert [k for k, _, _ in report.loaded][:2] == ["0.weight", "0.bias"] and not report.new


def test_freeze_until_a_node_trains_only_what_follows(tmp_path: Path) -> None:
    torch.save(torchvision_state("resnet18"), tmp_path / "tv.pth")
    module = to_torch(head10(), weights=tmp_path / "tv.pth", transfer=True, freeze_until="layer4").train()
    before = {k: v.clone() for k, v in module.named_parameters()}
    stats = {k: v.clone() for k, v in module.named_buffers()}
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(module(torch.randn(2, 3, 64, 64)), torch.tensor([1, 3]))
    loss.backward()
    optimizer.step()
    changed = {k for k, v in module.named_parameters() if not torch.equal(v, before[k])}
    assert changed == {"fc.weight", "fc.bias"}
    # The frozen backbone's batch norms stay in eval mode: their statistics do not move in train().
    assert all(torch.equal(v, stats[k]) for k, v in module.named_buffers())
    assert module.training and not module.get_submodule("layer4.1.bn2").training


def test_layers_marked_frozen_keep_their_norm_statistics() -> None:
    text = "model f\ninput [3, 8, 8]\nlayers {\n    conv(4, 3) -> bn -> conv(4, 3) -> bn(frozen=true)\n}\n"
    module = to_torch(text, seed=0).train()
    before = {k: v.clone() for k, v in module.named_buffers()}
    module(torch.randn(4, 3, 8, 8))
    moved = {k for k, v in module.named_buffers() if not torch.equal(v, before[k])}
    assert moved == {"1.running_mean", "1.running_var", "1.num_batches_tracked"}


def test_freeze_until_an_unknown_name_suggests_one() -> None:
    with pytest.raises(SpecError, match="did you mean 'layer4'"):
        to_torch("resnet18", freeze_until="layer_4")


class _Payload:
    def __reduce__(self):  # runs os.system when unpickled without weights_only
        return (os.system, ("touch " + os.environ["SPECDSL_SENTINEL"],))


def test_a_pickle_payload_runs_no_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = tmp_path / "pwned"
    monkeypatch.setenv("SPECDSL_SENTINEL", str(sentinel))
    torch.save({"layers.0.weight": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(SpecError, match="cannot be read safely"):
        to_torch("lenet5", weights=tmp_path / "evil.pth")
    assert not sentinel.exists()


@pytest.mark.parametrize(("content", "snippet"), [
    (lambda p: torch.save([torch.zeros(3)], p), "holds no state_dict"),
    (lambda p: p.write_bytes(b"PK\x03\x04 truncated"), "can be read safely"),
    (lambda p: torch.save({"w": torch.tensor([float("nan")])}, p), "NaN or infinite"),
    (lambda p: torch.save({"w": torch.zeros(4)}, p), "no checkpoint tensor name is one of the spec's"),
])
def test_bad_checkpoints_are_spec_errors(tmp_path: Path, content, snippet: str) -> None:
    path = tmp_path / "bad.pth"
    content(path)
    with pytest.raises(SpecError, match=snippet):
        to_torch("lenet5", weights=path)


def test_a_checkpoint_far_larger_than_the_spec_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.pth"
    torch.save({"w": torch.zeros(30_000_000)}, path)  # 120 MB for a 62k-parameter LeNet
    with pytest.raises(SpecError, match="far more than this spec's tensors need"):
        to_torch("lenet5", weights=path)


def test_run_fine_tunes_only_the_unfrozen_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from specdsl.cli.main import main

    torch.save(torchvision_state("resnet18"), tmp_path / "tv.pth")
    argv = ["run", "resnet18", "--param", "classes=10", "--weights", str(tmp_path / "tv.pth"), "--transfer",
            "--freeze-until", "layer4", "--train", "--steps", "1", "--batch", "2", "--input", "3,32,32",
            "--threads", "1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "training changed 2 of 62 parameter tensors; 60 frozen, 0 of those changed" in captured.out
    assert "kept 120 tensors, matched by name" in captured.err and "re-initialised (not in" in captured.err


def test_diff_takes_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from specdsl.cli.main import main

    save_checkpoint(to_torch("lenet5", seed=3), tmp_path / "l.safetensors")
    assert main(["diff", "lenet5", "--weights", str(tmp_path / "l.safetensors")]) == 0
    assert "agree" in capsys.readouterr().out


def test_build_writes_the_weights_beside_the_source_and_the_source_loads_them(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from specdsl.backends.torch.emit import load_emitted
    from specdsl.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["export", "lenet5", "-o", "ck.safetensors", "--seed", "5"]) == 0
    assert main(["build", "lenet5", "-o", "lenet.py", "--weights", "ck.safetensors", "--verify"]) == 0
    assert (tmp_path / "lenet.safetensors").exists()
    emitted = load_emitted((tmp_path / "lenet.py").read_text())()
    emitted.load_weights(str(tmp_path / "lenet.safetensors"))
    reference = to_torch("lenet5", weights=tmp_path / "ck.safetensors").eval()
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(emitted.eval()(x), reference(x))
    assert main(["build", "lenet5", "--weights", "ck.safetensors"]) == 2  # no -o: nowhere to put the weights


def test_the_emitted_load_weights_finds_its_file_beside_the_module(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from specdsl.cli.main import main

    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["export", "lenet5", "-o", "ck.safetensors", "--seed", "5"]) == 0
    assert main(["build", "lenet5", "-o", "out/lenet.py", "--weights", "ck.safetensors"]) == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # not where the weights are
    spec = importlib.util.spec_from_file_location("emitted_lenet", tmp_path / "out" / "lenet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Lenet5()
    net.load_weights()
    reference = to_torch("lenet5", weights=tmp_path / "ck.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), reference.state_dict().values()))


@pytest.mark.parametrize("line", [
    "from safetensors.torch import load", "from safetensors.torch import load_file as f", "import safetensors",
    "from safetensors import safe_open",
])
def test_the_safety_allowlist_takes_only_load_file_from_safetensors(line: str) -> None:
    from specdsl.backends.torch.safety import problems

    assert problems(f"import torch\n{line}\n")
    assert not problems("import torch\nfrom safetensors.torch import load_file\n")
