"""The bundled zoo against the figures torchvision (and the papers) publish."""

from __future__ import annotations

import pytest

import specdsl
from specdsl import zoo
from specdsl.errors import SpecError

CLASSICS = ["lenet5", "alexnet", "vgg16", "vgg16_bn"]


@pytest.fixture(scope="module")
def models() -> dict[str, specdsl.Model]:
    return {name: specdsl.load(name) for name in CLASSICS}


@pytest.mark.parametrize(("name", "params"), [
    ("lenet5", 61_706),
    ("alexnet", 61_100_840),
    ("vgg16", 138_357_544),
    ("vgg16_bn", 138_365_992),
])
def test_params(models, name: str, params: int) -> None:
    t = models[name].totals
    assert t.params == params
    assert t.trainable == params
    assert t.frozen == 0


@pytest.mark.parametrize(("name", "macs"), [
    ("alexnet", 714_188_480),
    ("vgg16", 15_470_264_320),
    ("vgg16_bn", 15_470_264_320),  # batch norm adds no MACs
    ("lenet5", 416_520),
])
def test_macs_and_flops(models, name: str, macs: int) -> None:
    t = models[name].totals
    assert t.macs == macs
    assert t.flops == 2 * macs


def test_lenet5_layer_by_layer(models) -> None:
    m = models["lenet5"]
    assert m.shape("c1") == (6, 28, 28)
    assert m.shape("c3") == (16, 10, 10)
    assert m.shape("s4") == (16, 5, 5)
    assert m.shape("c5") == (120, 1, 1)
    params = [f.params for _, f in m.rows() if f.params]
    # C1 6·25+6, C3 16·150+16, C5 120·400+120, F6 84·120+84, output 10·84+10
    assert params == [156, 2_416, 48_120, 10_164, 850]
    rf = m.node("c5")[1].rf
    assert (rf[0].size, rf[0].stride, rf[0].pad) == (32, 4, 0)


def test_lenet5_output_is_ten_logits(models) -> None:
    assert models["lenet5"].rows()[-1][1].shape == (10,)


@pytest.mark.parametrize(("name", "shape", "size", "stride", "pad"), [
    ("alexnet", (256, 6, 6), 195, 32, 66),
    ("vgg16", (512, 7, 7), 212, 32, 90),
    ("vgg16_bn", (512, 7, 7), 212, 32, 90),
])
def test_receptive_field_at_features(models, name, shape, size, stride, pad) -> None:
    node, fig = models[name].node("features")
    assert node.name == "features"
    assert fig.shape == shape
    assert len(fig.rf) == 2
    for axis in fig.rf:
        assert (axis.size, axis.stride, axis.pad) == (size, stride, pad)


def test_vgg16_bn_buffers(models) -> None:
    # 13 BN layers over 4,224 channels: 2·4224 running stats + 13 num_batches_tracked
    t = models["vgg16_bn"].totals
    assert t.buffers == 2 * 4_224 + 13 == 8_461
    assert t.params - models["vgg16"].totals.params == 2 * 4_224


def test_classics_have_no_warnings(models) -> None:
    for m in models.values():
        assert m.diagnostics == []


def test_classifier_heads(models) -> None:
    for name in ("alexnet", "vgg16", "vgg16_bn"):
        assert models[name].rows()[-1][1].shape == (1000,)


def test_input_override_keeps_params_of_adaptive_models() -> None:
    m = specdsl.load("alexnet", input=(3, 299, 299), warn=False)
    assert [d.code for d in m.warnings] == ["W301", "W301"]  # 299 leaves a row unread at two poolings
    assert m.graph.input_shape == (3, 299, 299)
    assert m.shape("features") == (256, 8, 8)
    assert m.totals.params == 61_100_840
    assert m.totals.macs > 714_188_480


def test_input_override_too_small_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load("vgg16", input=(3, 16, 16))
    assert {d.code for d in info.value.errors} == {"E304"}


def test_batch_scales_memory_not_params() -> None:
    one = specdsl.load("vgg16").totals
    eight = specdsl.load("vgg16", batch=8).totals
    assert eight.params == one.params and eight.macs == one.macs
    assert eight.activation_bytes == 8 * one.activation_bytes
    assert eight.input_bytes == 8 * one.input_bytes == 8 * 3 * 224 * 224 * 4
    assert eight.param_bytes == one.param_bytes == 138_357_544 * 4


def test_zoo_lists_the_classics() -> None:
    assert set(CLASSICS) <= set(zoo.all_names())  # vgg16 and vgg16_bn are variants of vgg.cnn
    assert zoo.names() == sorted(zoo.names())
    assert zoo.find("vgg16") is None and zoo.find_variant("vgg16")[2] == "vgg16"
    assert zoo.find("no_such_model") is None
    label, text = zoo.find("lenet5")
    assert label.startswith("<zoo>/lenet5.")
    assert label.endswith(zoo.SPEC_SUFFIXES)
    assert "lenet5" in text


def test_unknown_zoo_name_suggests_the_closest() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load("vggg16")
    (diag,) = info.value.diagnostics
    assert diag.code == "E100"
    assert diag.message == "no such file or zoo model: vggg16"
    assert diag.hint == "did you mean 'vgg16'?"


# The zoo's only warnings: SqueezeNet's stems are torchvision's, which leave the last row and column of a
# 224 x 224 input unread (W301 is right; the published architecture is kept).
KNOWN_WARNINGS = {"squeezenet": ["W301"], "squeezenet1_0": ["W301"], "squeezenet1_1": ["W301"],
                  # timm's avg_down shortcut (a 2x2 average pool) sees windows centred half a step away from the
                  # strided 3x3 conv's in each downsampling block (W320 is right; timm's architecture is kept).
                  **{name: ["W320"] * 3 for name in ("ecaresnet", "ecaresnet26t", "ecaresnet50t")},
                  # NF-ResNets' DownsampleAvg shortcut is the same 2x2 average pool (timm's nf_resnet26/50).
                  **{name: ["W320"] * 3 for name in ("nf_resnet", "nf_resnet26", "nf_resnet50")}}


@pytest.mark.parametrize("name", zoo.all_names())
def test_every_zoo_model_checks_cleanly(name: str) -> None:
    m = specdsl.load(name, warn=False)  # the warnings are asserted here, not left to the test run's output
    assert m.name
    assert not any(d.is_error for d in m.diagnostics)
    assert [d.code for d in m.warnings] == KNOWN_WARNINGS.get(name, [])
    assert m.totals.params > 0
    assert all(f.shape is not None for _, f in m.rows())


def test_load_accepts_a_path(tmp_path) -> None:
    label, text = zoo.find("lenet5")
    path = tmp_path / ("lenet." + label.rsplit(".", 1)[1])
    path.write_text(text)
    m = specdsl.load(path)
    assert m.file == str(path)
    assert m.totals.params == 61_706
    assert specdsl.load(str(path)).totals.params == 61_706
    assert specdsl.load(text).totals.params == 61_706


def test_lenet5_memory_figures(models) -> None:
    t = models["lenet5"].totals
    # every node's output but the input: 2·4704 + 1176 + 2·1600 + 400 + 3·120 + 2·84 + 10
    assert t.activation_elements == 14_722
    assert t.activation_bytes == 4 * 14_722
    # peak at the first relu: conv output and relu output live together (the input is freed)
    assert t.peak_bytes == 4 * (4_704 + 4_704)
    assert t.param_bytes == 4 * 61_706
    assert t.input_bytes == 4 * 32 * 32


def test_buffer_bytes_count_num_batches_tracked_as_int64(models) -> None:
    assert models["vgg16_bn"].totals.buffer_bytes == 2 * 4_224 * 4 + 13 * 8
