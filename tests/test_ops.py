"""Every op rule against hand-worked cases (PyTorch semantics), in 1D, 2D and 3D.

Each case is small enough to check on paper; the comment beside it shows the
arithmetic. Shapes exclude the batch.
"""

from __future__ import annotations

import pytest

import specdsl
from specdsl.ops import ALIASES, OPS, lookup

RANKS = {1: (3, 9), 2: (3, 9, 9), 3: (3, 9, 9, 9)}


def spatial(n: int, rank: int, c: int = 3) -> tuple[int, ...]:
    return (c, *(n,) * rank)


# ---------------------------------------------------------------- catalogue


def test_catalogue_has_every_op_the_issue_names() -> None:
    wanted = {
        "conv", "deconv", "maxpool", "avgpool", "gap", "gmp", "adaptive_avgpool", "adaptive_maxpool",
        "upsample", "bn", "layernorm", "instancenorm", "groupnorm", "lrn", "relu", "relu6", "leaky_relu",
        "elu", "gelu", "silu", "hardswish", "sigmoid", "tanh", "softplus", "softmax", "log_softmax",
        "dropout", "dropout1d", "dropout2d", "dropout3d", "flatten", "linear", "identity", "add",
        "concat", "mean",
    }
    assert wanted <= set(OPS)


@pytest.mark.parametrize(("alias", "op"), [
    ("conv_transpose", "deconv"), ("global_avgpool", "gap"), ("global_maxpool", "gmp"),
    ("batchnorm", "bn"), ("ln", "layernorm"), ("leakyrelu", "leaky_relu"), ("swish", "silu"),
    ("fc", "linear"), ("cat", "concat"),
])
def test_aliases_resolve(alias: str, op: str) -> None:
    assert ALIASES[alias] == op
    assert lookup(alias) is OPS[op]


def test_alias_in_a_spec_gives_the_same_figures(h) -> None:
    a = h.load("flatten", {"fc": 10})
    b = h.load("flatten", {"linear": 10})
    assert a.totals == b.totals
    assert a.rows()[-1][0].op == "linear"


# ---------------------------------------------------------------- conv


def test_conv_textbook_5x5_k3_p1_s2_gives_3x3(h) -> None:
    # floor((5 + 2·1 - 3) / 2) + 1 = 3
    f = h.last({"conv": {"out": 1, "k": 3, "pad": 1, "stride": 2}}, input=(1, 5, 5))
    assert f.shape == (1, 3, 3)
    assert f.params == 1 * 9 + 1


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_5_k3_p1_s2_in_every_rank(h, rank: int) -> None:
    f = h.last({"conv": {"out": 4, "k": 3, "pad": 1, "stride": 2}}, input=spatial(5, rank, c=2))
    assert f.shape == (4, *(3,) * rank)
    assert f.params == 2 * 4 * 3**rank + 4
    assert f.macs == 4 * 3**rank * 2 * 3**rank


def test_conv_lenet_first_layer_32x32x3_six_5x5_filters(h) -> None:
    # 32 - 5 + 1 = 28; params 6·(5·5·3) + 6 = 456; MACs 6·28·28·75
    f = h.last({"conv": {"out": 6, "k": 5}}, input=(3, 32, 32))
    assert f.shape == (6, 28, 28)
    assert f.params == 456
    assert f.macs == 6 * 28 * 28 * 75 == 352_800


def test_conv_100_filters_3x3x3_have_2800_params(h) -> None:
    f = h.last({"conv": {"out": 100, "k": 3}}, input=(3, 10, 10))
    assert f.params == 100 * (3 * 3 * 3) + 100 == 2_800
    assert h.last({"conv": {"out": 100, "k": 3, "bias": False}}, input=(3, 10, 10)).params == 2_700


def test_conv_3d_kernel_counts_every_axis(h) -> None:
    # nn.Conv3d(2, 4, 3): 4·2·27 + 4 = 220
    f = h.last({"conv": {"out": 4, "k": 3}}, input=(2, 5, 6, 7))
    assert f.shape == (4, 3, 4, 5)
    assert f.params == 220


def test_conv_1d(h) -> None:
    # nn.Conv1d(8, 16, 5, stride=2): floor((100 - 5) / 2) + 1 = 48; 16·8·5 + 16 = 656
    f = h.last({"conv": {"out": 16, "k": 5, "stride": 2}}, input=(8, 100))
    assert f.shape == (16, 48)
    assert f.params == 656


def test_conv_per_axis_kernel_stride_pad(h) -> None:
    # H: (10 + 2 - 3)//1 + 1 = 10;  W: (12 + 0 - 5)//2 + 1 = 4
    f = h.last({"conv": {"out": 2, "k": [3, 5], "stride": [1, 2], "pad": [1, 0]}}, input=(1, 10, 12))
    assert f.shape == (2, 10, 4)
    assert f.params == 2 * 15 + 2


def test_conv_per_axis_list_must_match_rank(h) -> None:
    errs = h.errors({"conv": {"out": 2, "k": [3, 3, 3]}}, input=(1, 10, 10))
    assert [e.code for e in errs] == ["E305"]
    assert "one value per spatial axis (2)" in errs[0].message


def test_conv_padding_valid_is_zero(h) -> None:
    f = h.last({"conv": {"out": 2, "k": 3, "pad": "valid"}}, input=(1, 10, 10))
    assert f.shape == (2, 8, 8)


@pytest.mark.parametrize(("k", "dilation", "before", "after"), [
    (3, 1, 1, 1), (5, 1, 2, 2), (4, 1, 1, 2), (2, 1, 0, 1), (3, 2, 2, 2), (4, 3, 4, 5), (1, 1, 0, 0),
])
def test_conv_padding_same_keeps_size_and_puts_the_odd_unit_after(h, k, dilation, before, after) -> None:
    # PyTorch: total d(k-1), left = total // 2, the rest on the right
    f = h.last({"conv": {"out": 2, "k": k, "dilation": dilation, "pad": "same"}}, input=(1, 11, 10))
    assert f.shape == (2, 11, 10)
    assert f.attrs.padding == (before, before)
    assert f.attrs.padding_after == (after, after)


def test_conv_padding_same_at_stride_2_is_refused(h) -> None:
    errs = h.errors({"conv": {"out": 2, "k": 3, "stride": 2, "pad": "same"}}, input=(1, 8, 8))
    assert [e.code for e in errs] == ["E308"]


def test_conv_dilation(h) -> None:
    # effective kernel 2·(3-1)+1 = 5: 10 - 5 + 1 = 6
    f = h.last({"conv": {"out": 2, "k": 3, "dilation": 2}}, input=(1, 10, 10))
    assert f.shape == (2, 6, 6)
    assert f.params == 2 * 9 + 2  # dilation adds no weights
    assert f.rf[0].size == 5


def test_conv_groups(h) -> None:
    # nn.Conv2d(64, 128, 3, groups=4): 64/4 · 128 · 9 + 128
    f = h.last({"conv": {"out": 128, "k": 3, "pad": 1, "groups": 4}}, input=(64, 8, 8))
    assert f.params == 16 * 128 * 9 + 128 == 18_560
    assert f.macs == 128 * 8 * 8 * 16 * 9


def test_conv_depthwise(h) -> None:
    # MobileNet depthwise 3×3 on 32 channels: 32·1·9 + 32 = 320
    f = h.last({"conv": {"out": 32, "k": 3, "pad": 1, "groups": "depthwise", "bias": True}}, input=(32, 14, 14))
    assert f.attrs.groups == 32
    assert f.params == 320
    assert f.macs == 32 * 14 * 14 * 9


def test_conv_depthwise_multiplier(h) -> None:
    f = h.last({"conv": {"out": 64, "k": 3, "groups": "depthwise", "bias": False}}, input=(32, 5, 5))
    assert f.params == 64 * 1 * 9


@pytest.mark.parametrize(("groups", "c_in", "out", "needle"), [
    (3, 64, 64, "groups=3, in_channels=64"),
    (4, 8, 6, "groups=4, out=6"),
])
def test_conv_groups_must_divide_channels(h, groups, c_in, out, needle) -> None:
    errs = h.errors({"conv": {"out": out, "k": 1, "groups": groups}}, input=(c_in, 4, 4))
    assert [e.code for e in errs] == ["E303"]
    assert needle in errs[0].message


def test_conv_kernel_larger_than_padded_input(h) -> None:
    errs = h.errors({"conv": {"out": 2, "k": 5, "pad": 1}}, input=(1, 2, 2))
    assert [e.code for e in errs] == ["E304"]
    assert "effective kernel 5 (k=5) > H=2 + padding 2 = 4" in errs[0].message


def test_conv_kernel_equal_to_padded_input_is_fine(h) -> None:
    assert h.last({"conv": {"out": 2, "k": 4, "pad": 1}}, input=(1, 2, 2)).shape == (2, 1, 1)


def test_conv_declared_in_channels_checked(h) -> None:
    assert h.last({"conv": {"out": 2, "k": 1, "in": 3}}, input=(3, 4, 4)).shape == (2, 4, 4)
    errs = h.errors({"conv": {"out": 2, "k": 1, "in": 4}}, input=(3, 4, 4))
    assert [e.code for e in errs] == ["E302"]
    assert "declares in=4 but receives 3" in errs[0].message


def test_conv_needs_spatial_axes(h) -> None:
    assert h.codes({"conv": {"out": 2, "k": 1}}, input=(10,)) == ["E306"]


@pytest.mark.parametrize(("mode", "pad", "n", "ok"), [
    ("reflect", 2, 3, True), ("reflect", 3, 3, False),
    ("replicate", 5, 3, True),
    ("circular", 3, 3, True), ("circular", 4, 3, False),
])
def test_conv_padding_mode_limits(h, mode, pad, n, ok) -> None:
    layer = {"conv": {"out": 2, "k": 1, "pad": pad, "padding_mode": mode}}
    if ok:
        assert h.last(layer, input=(1, n)).shape == (2, n + 2 * pad)
    else:
        assert h.codes(layer, input=(1, n)) == ["E309"]


def test_conv_receptive_field_step(h) -> None:
    # r = 1 + (3-1)·1 = 3; j = 2; P = 1
    f = h.last({"conv": {"out": 2, "k": 3, "stride": 2, "pad": 1}}, input=(1, 9, 9))
    assert [(a.size, a.stride, a.pad) for a in f.rf] == [(3, 2, 1), (3, 2, 1)]


def test_stacked_stride1_convs_rf_is_one_plus_sum_of_k_minus_one(h) -> None:
    ks = [3, 5, 7, 1, 3]
    m = h.load(*[{"conv": {"out": 2, "k": k, "pad": k // 2}} for k in ks], input=(1, 32, 32))
    rf = m.rows()[-1][1].rf
    assert rf[0].size == rf[1].size == 1 + sum(k - 1 for k in ks) == 15
    assert rf[0].stride == 1


def test_rf_grows_by_jump_after_a_stride(h) -> None:
    # conv3 s2 (r=3, j=2) then conv3: r = 3 + 2·2 = 7, j = 2
    m = h.load({"conv": {"out": 2, "k": 3, "stride": 2, "pad": 1}}, {"conv": {"out": 2, "k": 3, "pad": 1}},
               input=(1, 16, 16))
    assert (m.rows()[-1][1].rf[0].size, m.rows()[-1][1].rf[0].stride) == (7, 2)


def test_frozen_layer_params_move_to_frozen(h) -> None:
    m = h.load({"conv": {"out": 6, "k": 5}, "frozen": True}, {"conv": {"out": 4, "k": 1}}, "bn",
               input=(3, 32, 32))
    t = m.totals
    assert t.frozen == 456
    assert t.trainable == 4 * 6 + 4 + 2 * 4
    assert t.params == t.frozen + t.trainable
    first = m.rows()[1][1]
    assert (first.frozen, first.trainable, first.params) == (456, 0, 456)


def test_frozen_bn_keeps_its_buffers(h) -> None:
    f = h.last({"bn": None, "frozen": True}, input=(8, 4, 4))
    assert (f.trainable, f.frozen, f.buffers) == (0, 16, 17)


# ---------------------------------------------------------------- W301: dropped pixels


def test_w301_when_real_pixels_are_never_read(h) -> None:
    # (6 - 3) mod 2 = 1 trailing position unread, no padding to absorb it
    m = h.load({"conv": {"out": 1, "k": 3, "stride": 2}}, input=(1, 6))
    assert [w.code for w in m.warnings] == ["W301"]
    assert "1 input position(s) at the end of L are never read" in m.warnings[0].message


def test_w301_not_when_only_padding_is_dropped(h) -> None:
    # (6 + 2 - 3) mod 2 = 1 unread position, and it is the right padding
    assert h.warning_codes({"conv": {"out": 1, "k": 3, "stride": 2, "pad": 1}}, input=(1, 6)) == []


def test_w301_counts_only_real_pixels(h) -> None:
    # k=5, s=4, p=1: (7 + 2 - 5) mod 4 = 0 -> nothing; (8 + 2 - 5) mod 4 = 1 -> only the right padding;
    # (10 + 2 - 5) mod 4 = 3 -> one padding position and 2 real ones
    layer = {"conv": {"out": 1, "k": 5, "stride": 4, "pad": 1}}
    assert h.warning_codes(layer, input=(1, 7)) == []
    assert h.warning_codes(layer, input=(1, 8)) == []
    m = h.load(layer, input=(1, 10))
    assert [w.code for w in m.warnings] == ["W301"]
    assert m.warnings[0].message.startswith("2 input position(s) at the end of L are never read")
    assert "only 1 of those are padding" in m.warnings[0].message


def test_no_w301_when_the_window_is_narrower_than_the_stride(h) -> None:
    # k < s samples with gaps by design (e.g. a strided 1×1 projection); the tail is not special
    assert h.warning_codes({"conv": {"out": 1, "k": 1, "stride": 2}}, input=(1, 8)) == []
    assert h.warning_codes({"conv": {"out": 1, "k": 3, "stride": 4}}, input=(1, 12)) == []


def test_w301_for_pooling_odd_input(h) -> None:
    m = h.load({"maxpool": 2}, input=(1, 7, 8))
    assert [w.code for w in m.warnings] == ["W301"]
    assert "end of H" in m.warnings[0].message


def test_no_w301_in_ceil_mode(h) -> None:
    assert h.warning_codes({"maxpool": {"k": 2, "ceil_mode": True}}, input=(1, 7, 7)) == []


def test_w301_is_a_warning_not_an_error(h) -> None:
    m = h.load({"conv": {"out": 1, "k": 3, "stride": 2}}, input=(1, 6))
    assert m.rows()[-1][1].shape == (1, 2)
    assert not any(d.is_error for d in m.diagnostics)


# ---------------------------------------------------------------- deconv


def test_deconv_dcgan_doubles(h) -> None:
    # (4-1)·2 - 2·1 + (4-1) + 1 = 8;  params 16·8·16 + 8
    f = h.last({"deconv": {"out": 8, "k": 4, "stride": 2, "pad": 1}}, input=(16, 4, 4))
    assert f.shape == (8, 8, 8)
    assert f.params == 16 * 8 * 16 + 8
    # every input element scatters into out·k·k outputs
    assert f.macs == 16 * 4 * 4 * 8 * 16


def test_deconv_output_padding(h) -> None:
    # (4-1)·2 - 2 + 2 + 1 + 1 = 8 (vs 7 without output_padding)
    f = h.last({"deconv": {"out": 8, "k": 3, "stride": 2, "pad": 1, "output_padding": 1}}, input=(16, 4, 4))
    assert f.shape == (8, 8, 8)
    assert h.last({"deconv": {"out": 8, "k": 3, "stride": 2, "pad": 1}}, input=(16, 4, 4)).shape == (8, 7, 7)


def test_deconv_output_padding_must_be_below_stride_or_dilation(h) -> None:
    assert h.codes({"deconv": {"out": 8, "k": 3, "stride": 2, "output_padding": 2}}, input=(16, 4, 4)) == ["E310"]
    # dilation 3 allows output_padding 2 even at stride 1
    f = h.last({"deconv": {"out": 8, "k": 3, "dilation": 3, "output_padding": 2}}, input=(16, 4))
    assert f.shape == (8, (4 - 1) + 3 * 2 + 2 + 1)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_deconv_in_every_rank(h, rank: int) -> None:
    f = h.last({"deconv": {"out": 2, "k": 2, "stride": 2}}, input=spatial(3, rank, c=4))
    assert f.shape == (2, *(6,) * rank)
    assert f.params == 4 * 2 * 2**rank + 2


def test_deconv_groups(h) -> None:
    # ConvTranspose2d(8, 4, 3, groups=2): weight [8, 2, 3, 3]
    f = h.last({"deconv": {"out": 4, "k": 3, "groups": 2, "bias": False}}, input=(8, 5, 5))
    assert f.params == 8 * 2 * 9
    assert h.codes({"deconv": {"out": 4, "k": 3, "groups": 3}}, input=(8, 5, 5)) == ["E303"]


def test_deconv_non_positive_output(h) -> None:
    # (1-1)·1 - 2·1 + 0 + 0 + 1 = -1
    assert h.codes({"deconv": {"out": 2, "k": 1, "pad": 1}}, input=(1, 1)) == ["E301"]


def test_deconv_alias(h) -> None:
    assert h.last({"conv_transpose": {"out": 2, "k": 2, "stride": 2}}, input=(1, 3)).shape == (2, 6)


# ---------------------------------------------------------------- max / avg pooling


def test_maxpool_textbook_4x4_k2_s2(h) -> None:
    f = h.last({"maxpool": {"k": 2, "stride": 2}}, input=(1, 4, 4))
    assert f.shape == (1, 2, 2)
    assert f.params == 0 and f.macs == 0


def test_maxpool_stride_defaults_to_kernel(h) -> None:
    assert h.last({"maxpool": 2}, input=(5, 4, 4)).shape == (5, 2, 2)
    assert h.last({"maxpool": {"k": 3}}, input=(5, 9, 9)).shape == (5, 3, 3)


def test_pool_shorthand_is_k_then_stride(h) -> None:
    assert h.last({"maxpool": [3]}, input=(1, 9)).shape == (1, 3)


@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_pool_in_every_rank(h, op: str, rank: int) -> None:
    f = h.last({op: {"k": 3, "stride": 2, "pad": 1}}, input=spatial(9, rank))
    assert f.shape == (3, *(5,) * rank)


def test_maxpool_alexnet_overlapping(h) -> None:
    # 55 -> floor((55 - 3)/2) + 1 = 27
    assert h.last({"maxpool": {"k": 3, "stride": 2}}, input=(64, 55, 55)).shape == (64, 27, 27)


def test_maxpool_ceil_mode_googlenet(h) -> None:
    # torchvision GoogLeNet: MaxPool2d(3, 2, ceil_mode=True) on 112 gives 56 (floor mode: 55)
    assert h.last({"maxpool": {"k": 3, "stride": 2, "ceil_mode": True}}, input=(64, 112, 112)).shape == (64, 56, 56)
    assert h.last({"maxpool": {"k": 3, "stride": 2}}, input=(64, 112, 112)).shape == (64, 55, 55)


def test_ceil_mode_last_window_must_start_inside_input_or_left_pad(h) -> None:
    # n=5, k=2, s=2, p=1: ceil((5+2-2)/2) + 1 = 4, but the 4th window would start at 6 >= 5 + 1
    # (entirely in the right padding), so PyTorch drops it: 3.
    f = h.last({"maxpool": {"k": 2, "stride": 2, "pad": 1, "ceil_mode": True}}, input=(1, 5))
    assert f.shape == (1, 3)
    # n=5, k=2, s=2, p=0: ceil(3/2) + 1 = 3, last window starts at 4 < 5: kept.
    assert h.last({"maxpool": {"k": 2, "stride": 2, "ceil_mode": True}}, input=(1, 5)).shape == (1, 3)
    assert h.last({"maxpool": {"k": 2, "stride": 2}}, input=(1, 5)).shape == (1, 2)


def test_ceil_mode_window_may_overhang_a_small_input(h) -> None:
    # nn.MaxPool2d(2, ceil_mode=True) on 1×1 gives 1×1 in PyTorch
    assert h.last({"maxpool": {"k": 2, "ceil_mode": True}}, input=(4, 1, 1)).shape == (4, 1, 1)
    assert h.last({"avgpool": {"k": 3, "stride": 2, "ceil_mode": True}}, input=(4, 2)).shape == (4, 1)
    # ...but not when no window fits at all: (3 - 6 + 1)/2 -> 0 outputs
    assert h.codes({"maxpool": {"k": 6, "stride": 2, "ceil_mode": True}}, input=(1, 3, 3)) == ["E304"]


def test_ceil_mode_avgpool_same_rule(h) -> None:
    assert h.last({"avgpool": {"k": 2, "stride": 2, "pad": 1, "ceil_mode": True}}, input=(1, 5)).shape == (1, 3)


def test_pool_padding_at_most_half_the_kernel(h) -> None:
    assert h.last({"maxpool": {"k": 3, "stride": 1, "pad": 1}}, input=(1, 5, 5)).shape == (1, 5, 5)
    errs = h.errors({"maxpool": {"k": 3, "pad": 2}}, input=(1, 9, 9))
    assert [e.code for e in errs] == ["E307"]
    # PyTorch compares with the kernel, not the dilated one
    assert h.codes({"maxpool": {"k": 2, "dilation": 3, "pad": 2}}, input=(1, 9)) == ["E307"]
    assert h.codes({"avgpool": {"k": 4, "pad": 3}}, input=(1, 9)) == ["E307"]


def test_maxpool_dilation(h) -> None:
    # effective window 2·(3-1)+1 = 5: 10 - 5 + 1 = 6
    f = h.last({"maxpool": {"k": 3, "stride": 1, "dilation": 2}}, input=(1, 10))
    assert f.shape == (1, 6)
    assert f.rf[0].size == 5


def test_avgpool_has_no_dilation(h) -> None:
    assert h.codes({"avgpool": {"k": 3, "dilation": 2}}, input=(1, 10)) == ["E201"]


def test_avgpool_3d_needs_input_at_least_the_kernel(h) -> None:
    # nn.AvgPool3d checks the unpadded input against the kernel; 1D and 2D do not
    assert h.codes({"avgpool": {"k": 3, "stride": 1, "pad": 1}}, input=(1, 2, 5, 5)) == ["E304"]
    assert h.last({"avgpool": {"k": 3, "stride": 1, "pad": 1}}, input=(1, 2, 5)).shape == (1, 2, 5)
    assert h.last({"avgpool": {"k": 3, "stride": 1, "pad": 1}}, input=(1, 3, 5, 5)).shape == (1, 3, 5, 5)


def test_pool_kernel_larger_than_input(h) -> None:
    assert h.codes({"maxpool": 4}, input=(1, 3, 3)) == ["E304"]


def test_pool_receptive_field(h) -> None:
    # conv3 p1 (r 3, j 1, P 1) -> maxpool 2/2 (r 4, j 2, P 1) -> conv3 p1 (r 8, j 2, P 3)
    m = h.load({"conv": {"out": 2, "k": 3, "pad": 1}}, {"maxpool": 2}, {"conv": {"out": 2, "k": 3, "pad": 1}},
               input=(1, 8, 8))
    assert [(a.size, a.stride, a.pad) for a in (f.rf[0] for _, f in m.rows()[1:])] == [
        (3, 1, 1), (4, 2, 1), (8, 2, 3)]


# ---------------------------------------------------------------- global and adaptive pooling


@pytest.mark.parametrize("op", ["gap", "gmp", "global_avgpool", "global_maxpool"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_global_pool(h, op: str, rank: int) -> None:
    f = h.last(op, input=spatial(5, rank, c=7))
    assert f.shape == (7,)
    assert f.rf is None
    assert h.last({op: {"keepdims": True}}, input=spatial(5, rank, c=7)).shape == (7, *(1,) * rank)


def test_global_pool_needs_spatial_axes(h) -> None:
    assert h.codes("gap", input=(10,)) == ["E306"]


@pytest.mark.parametrize("op", ["adaptive_avgpool", "adaptive_maxpool"])
def test_adaptive_pool(h, op: str) -> None:
    assert h.last({op: 7}, input=(512, 14, 14)).shape == (512, 7, 7)
    assert h.last({op: {"out": [2, 3]}}, input=(1, 5, 7)).shape == (1, 2, 3)
    assert h.last({op: 4}, input=(2, 9)).shape == (2, 4)
    assert h.last({op: [1, 2, 3]}, input=(2, 4, 4, 4)).shape == (2, 1, 2, 3)
    # upsampling by adaptive pooling is legal in PyTorch (bins overlap)
    assert h.last({op: 6}, input=(2, 3, 3)).shape == (2, 6, 6)
    assert h.last({op: 1}, input=(2, 3, 3)).params == 0


def test_adaptive_pool_per_axis_count(h) -> None:
    assert h.codes({"adaptive_avgpool": [2, 2, 2]}, input=(1, 4, 4)) == ["E305"]


def test_adaptive_pool_rf_exact_when_even(h) -> None:
    # 14 -> 7: a plain 2/2 pool: r 2, j 2, P 0
    f = h.last({"adaptive_avgpool": 7}, input=(1, 14, 14))
    assert [(a.size, a.stride, a.pad) for a in f.rf] == [(2, 2, 0)] * 2
    assert h.last({"adaptive_avgpool": 4}, input=(1, 9, 9)).rf is None


# ---------------------------------------------------------------- upsample


@pytest.mark.parametrize(("layer", "inp", "out"), [
    ({"upsample": 2}, (3, 5, 7), (3, 10, 14)),
    ({"upsample": {"scale": 1.5}}, (3, 5, 5), (3, 7, 7)),   # floor(7.5)
    ({"upsample": {"scale": 0.5}}, (3, 5), (3, 2)),
    ({"upsample": {"scale": [2, 3]}}, (3, 4, 4), (3, 8, 12)),
    ({"upsample": {"size": 9}}, (3, 4, 4), (3, 9, 9)),
    ({"upsample": {"size": [5, 6, 7]}}, (3, 2, 2, 2), (3, 5, 6, 7)),
    ({"upsample": {"scale": 2, "mode": "linear", "align_corners": True}}, (3, 4), (3, 8)),
    ({"upsample": {"scale": 2, "mode": "bilinear"}}, (3, 4, 4), (3, 8, 8)),
    ({"upsample": {"scale": 2, "mode": "bicubic"}}, (3, 4, 4), (3, 8, 8)),
    ({"upsample": {"scale": 2, "mode": "trilinear"}}, (3, 2, 2, 2), (3, 4, 4, 4)),
    ({"upsample": {"scale": 2, "mode": "nearest-exact"}}, (3, 2), (3, 4)),
])
def test_upsample(h, layer, inp, out) -> None:
    f = h.last(layer, input=inp)
    assert f.shape == out
    assert f.params == 0


@pytest.mark.parametrize(("layer", "inp", "code"), [
    ({"upsample": {"scale": 2, "size": 4}}, (3, 4, 4), "E313"),
    ("upsample", (3, 4, 4), "E313"),
    ({"upsample": {"scale": 2, "mode": "bilinear"}}, (3, 4), "E306"),
    ({"upsample": {"scale": 2, "mode": "trilinear"}}, (3, 4, 4), "E306"),
    ({"upsample": {"scale": 2, "align_corners": True}}, (3, 4, 4), "E319"),
    ({"upsample": {"scale": [2, 2, 2]}}, (3, 4, 4), "E305"),
    ({"upsample": {"size": [2, 2, 2]}}, (3, 4, 4), "E305"),
    ({"upsample": {"scale": 0.1}}, (3, 4, 4), "E301"),
    ({"upsample": 2}, (3,), "E306"),
])
def test_upsample_errors(h, layer, inp, code) -> None:
    assert h.codes(layer, input=inp) == [code]


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize("inp", [(16,), (16, 9), (16, 9, 9), (16, 3, 9, 9)])
def test_batchnorm_params_and_buffers(h, inp) -> None:
    # gamma, beta: 2C parameters; running_mean, running_var, num_batches_tracked: 2C + 1 buffers
    f = h.last("bn", input=inp)
    assert f.shape == inp
    assert (f.params, f.buffers) == (32, 33)


def test_batchnorm_options(h) -> None:
    assert (h.last({"bn": {"affine": False}}, input=(8, 4, 4)).params,
            h.last({"bn": {"affine": False}}, input=(8, 4, 4)).buffers) == (0, 17)
    assert h.last({"bn": {"track_running_stats": False}}, input=(8, 4, 4)).buffers == 0
    assert h.last({"batchnorm": {"momentum": None, "eps": 0.001}}, input=(8, 4, 4)).params == 16


def test_batchnorm_declared_channels(h) -> None:
    assert h.last({"bn": {"in": 8}}, input=(8, 4, 4)).shape == (8, 4, 4)
    assert h.codes({"bn": {"in": 3}}, input=(8, 4, 4)) == ["E302"]


def test_batchnorm_totals_count_buffers_apart(h) -> None:
    t = h.load({"conv": {"out": 4, "k": 3, "bias": False}}, "bn", input=(3, 8, 8)).totals
    assert (t.params, t.buffers) == (4 * 27 + 8, 9)


@pytest.mark.parametrize("inp", [(6, 5), (6, 5, 5), (6, 2, 5, 5)])
def test_instancenorm(h, inp) -> None:
    f = h.last("instancenorm", input=inp)
    assert (f.shape, f.params, f.buffers) == (inp, 0, 0)
    f = h.last({"instancenorm": {"affine": True, "track_running_stats": True}}, input=inp)
    assert (f.params, f.buffers) == (12, 13)


def test_instancenorm_needs_spatial_axes(h) -> None:
    assert h.codes("instancenorm", input=(6,)) == ["E306"]


def test_layernorm(h) -> None:
    # default: the whole sample [C, H, W]
    assert h.last("layernorm", input=(4, 3, 3)).params == 2 * 36
    assert h.last({"layernorm": [3]}, input=(4, 3, 3)).params == 6
    assert h.last({"layernorm": {"shape": [3, 3], "bias": False}}, input=(4, 3, 3)).params == 9
    assert h.last({"ln": {"elementwise_affine": False}}, input=(4, 3, 3)).params == 0
    assert h.last({"layernorm": [768]}, input=(768,)).params == 1536
    assert h.last("layernorm", input=(4, 3, 3)).shape == (4, 3, 3)


def test_layernorm_shape_must_be_trailing_axes(h) -> None:
    assert h.codes({"layernorm": [4]}, input=(4, 3, 3)) == ["E302"]
    assert h.codes({"layernorm": [1, 4, 3, 3]}, input=(4, 3, 3)) == ["E302"]


@pytest.mark.parametrize("inp", [(64,), (64, 5), (64, 5, 5), (64, 2, 5, 5)])
def test_groupnorm(h, inp) -> None:
    f = h.last({"groupnorm": 32}, input=inp)
    assert (f.shape, f.params, f.buffers) == (inp, 128, 0)
    assert h.last({"groupnorm": {"groups": 8, "affine": False}}, input=inp).params == 0


def test_groupnorm_groups_divide_channels(h) -> None:
    errs = h.errors({"groupnorm": 3}, input=(64, 5, 5))
    assert [e.code for e in errs] == ["E303"]
    assert "groups=3, channels=64" in errs[0].message


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_lrn(h, rank: int) -> None:
    f = h.last({"lrn": {"size": 5, "alpha": 0.0001, "beta": 0.75, "k": 2}}, input=spatial(4, rank, c=96))
    assert (f.shape, f.params, f.buffers) == (spatial(4, rank, c=96), 0, 0)


def test_lrn_needs_spatial_axes(h) -> None:
    assert h.codes({"lrn": 5}, input=(96,)) == ["E306"]


# ---------------------------------------------------------------- activations, softmax, dropout, identity

ACTIVATIONS = [
    "relu", "relu6", "leaky_relu", {"leaky_relu": 0.2}, {"leakyrelu": {"slope": 0.1}}, "elu", {"elu": 0.5},
    "gelu", {"gelu": {"approximate": "tanh"}}, "silu", "swish", "hardswish", "sigmoid", "tanh", "softplus",
    {"softplus": {"beta": 2, "threshold": 10}}, "identity",
]


@pytest.mark.parametrize("layer", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("inp", [(10,), (3, 10), (3, 5, 5), (3, 2, 5, 5)])
def test_shape_preserving_ops(h, layer, inp) -> None:
    f = h.last(layer, input=inp)
    assert (f.shape, f.params, f.buffers, f.macs) == (inp, 0, 0, 0)
    if len(inp) == 1:
        assert f.rf is None
    else:
        assert [(a.size, a.stride, a.pad) for a in f.rf] == [(1, 1, 0)] * (len(inp) - 1)


def test_activation_rf_passes_through(h) -> None:
    m = h.load({"conv": {"out": 2, "k": 3}}, "relu", input=(1, 8, 8))
    assert m.rows()[-1][1].rf == m.rows()[-2][1].rf


def test_gelu_approximate_literal(h) -> None:
    errs = h.errors({"gelu": {"approximate": "tahn"}}, input=(3,))
    assert [e.code for e in errs] == ["E202"]
    assert errs[0].hint == "did you mean 'tanh'?"


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_dims(h, op: str) -> None:
    for dim in (1, 2, 3, -1, -3):
        assert h.last({op: dim}, input=(3, 4, 5)).shape == (3, 4, 5)
    assert h.last(op, input=(10,)).shape == (10,)
    for dim in (0, 4, -4):
        errs = h.errors({op: dim}, input=(3, 4, 5))
        assert [e.code for e in errs] == ["E311"]


@pytest.mark.parametrize(("op", "inp"), [
    ("dropout", (10,)), ("dropout", (3, 4, 4)), ("dropout1d", (3, 8)), ("dropout2d", (3, 8, 8)),
    ("dropout3d", (3, 4, 8, 8)),
])
def test_dropout(h, op, inp) -> None:
    f = h.last({op: 0.3}, input=inp)
    assert (f.shape, f.params) == (inp, 0)
    assert h.last(op, input=inp).attrs.p == 0.5


@pytest.mark.parametrize(("op", "inp"), [("dropout1d", (3, 8, 8)), ("dropout2d", (3, 8)), ("dropout3d", (3, 8, 8))])
def test_channel_dropout_rank(h, op, inp) -> None:
    assert h.codes({op: 0.3}, input=inp) == ["E306"]


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_probability_range(h, p) -> None:
    assert h.codes({"dropout": p}, input=(3,)) == ["E205"]


def test_dropout_p_bounds_inclusive(h) -> None:
    assert h.last({"dropout": 0}, input=(3,)).shape == (3,)
    assert h.last({"dropout": 1.0}, input=(3,)).shape == (3,)


# ---------------------------------------------------------------- flatten, linear


@pytest.mark.parametrize(("layer", "inp", "out"), [
    ("flatten", (16, 5, 5), (400,)),
    ("flatten", (7,), (7,)),
    ("flatten", (2, 3), (6,)),
    ("flatten", (2, 3, 4, 5), (120,)),
    ({"flatten": {"start_dim": 2}}, (16, 5, 5), (16, 25)),
    ({"flatten": {"start_dim": 1, "end_dim": 2}}, (16, 5, 5), (80, 5)),
    ({"flatten": {"start_dim": -2}}, (16, 5, 5), (16, 25)),
])
def test_flatten(h, layer, inp, out) -> None:
    f = h.last(layer, input=inp)
    assert (f.shape, f.rf) == (out, None)


@pytest.mark.parametrize("args", [{"start_dim": 0}, {"start_dim": 3, "end_dim": 2}, {"end_dim": 4}])
def test_flatten_bad_dims(h, args) -> None:
    assert h.codes({"flatten": args}, input=(16, 5, 5)) == ["E311"]


def test_linear(h) -> None:
    # LeNet F5: 400 -> 120: 400·120 + 120
    f = h.last({"linear": 120}, input=(400,))
    assert (f.shape, f.params, f.macs) == ((120,), 48_120, 48_000)
    assert h.last({"linear": {"out": 120, "bias": False}}, input=(400,)).params == 48_000


def test_linear_declared_features(h) -> None:
    assert h.last("flatten", {"linear": {"out": 10, "in": 400}}, input=(16, 5, 5)).shape == (10,)
    errs = h.errors("flatten", {"linear": {"out": 10, "in": 256}}, input=(16, 5, 5))
    assert [e.code for e in errs] == ["E302"]
    assert "feature mismatch: the layer declares in=256 but receives 400" in errs[0].message
    assert errs[0].hint == "set in: 400, or fix the layer that feeds it"


def test_linear_on_multi_dim_input_warns_w302(h) -> None:
    m = h.load({"linear": 10}, input=(3, 4, 5))
    f = m.rows()[-1][1]
    # nn.Linear acts on the last axis: [3, 4, 5] -> [3, 4, 10], weights 5·10 + 10
    assert (f.shape, f.params, f.macs) == ((3, 4, 10), 60, 3 * 4 * 10 * 5)
    assert [w.code for w in m.warnings] == ["W302"]


def test_linear_after_flatten_no_warning(h) -> None:
    assert h.warning_codes("flatten", {"linear": 10}, input=(3, 4, 5)) == []
    assert h.warning_codes("gap", {"linear": 10}, input=(3, 4, 5)) == []


def test_linear_shorthand_equals_mapping(h) -> None:
    assert h.load({"linear": 10}, input=(5,)).totals == h.load({"linear": {"out": 10}}, input=(5,)).totals


# ---------------------------------------------------------------- merges


def test_add(h) -> None:
    m = h.load({"conv": {"out": 3, "k": 3, "pad": 1}, "name": "a"}, {"add": None, "inputs": ["a", "input"]},
               input=(3, 8, 8))
    f = m.rows()[-1][1]
    assert (f.shape, f.params) == ((3, 8, 8), 0)
    assert m.rows()[-1][0].inputs == (1, 0)
    # the larger field of the two paths
    assert f.rf[0].size == 3


def test_add_three_inputs_and_mean(h) -> None:
    layers = [{"relu": None, "name": "a"}, {"tanh": None, "name": "b", "inputs": ["input"]}]
    assert h.last(*layers, {"add": None, "inputs": ["a", "b", "input"]}, input=(3, 4)).shape == (3, 4)
    assert h.last(*layers, {"mean": None, "inputs": ["a", "b"]}, input=(3, 4)).shape == (3, 4)


@pytest.mark.parametrize("op", ["add", "mean"])
def test_merge_needs_equal_shapes(h, op) -> None:
    errs = h.errors({"conv": {"out": 4, "k": 1}, "name": "a"}, {op: None, "inputs": ["a", "input"]},
                    input=(3, 8, 8))
    assert [e.code for e in errs] == ["E312"]
    assert "received [4, 8, 8] (input 1) and [3, 8, 8] (input 2): the channels differ" in errs[0].message


def test_merge_needs_two_inputs(h) -> None:
    assert h.codes({"add": None, "inputs": ["input"]}, input=(3, 4)) == ["E316"]
    assert h.codes("relu", "add", input=(3, 4)) == ["E316"]


def test_only_merges_take_several_inputs(h) -> None:
    assert h.codes({"relu": None, "inputs": ["input", "input"]}, input=(3, 4)) == ["E316"]


def test_concat(h) -> None:
    layers = [{"conv": {"out": 4, "k": 1}, "name": "a"}, {"conv": {"out": 6, "k": 3, "pad": 1}, "name": "b",
                                                           "inputs": ["input"]}]
    m = h.load(*layers, {"concat": None, "inputs": ["a", "b", "input"]}, input=(3, 8, 8))
    assert m.rows()[-1][1].shape == (13, 8, 8)
    assert h.last(*layers, {"cat": None, "inputs": ["a", "b"]}, input=(3, 8, 8)).shape == (10, 8, 8)


def test_concat_other_dims(h) -> None:
    assert h.last({"relu": None, "name": "a"}, {"concat": 2, "inputs": ["a", "input"]},
                  input=(3, 4, 5)).shape == (3, 8, 5)
    assert h.last({"relu": None, "name": "a"}, {"concat": -1, "inputs": ["a", "input"]},
                  input=(3, 4, 5)).shape == (3, 4, 10)


def test_concat_errors(h) -> None:
    errs = h.errors({"maxpool": 2, "name": "a"}, {"concat": None, "inputs": ["a", "input"]}, input=(3, 8, 8))
    assert [e.code for e in errs] == ["E312"]
    assert h.codes({"relu": None, "name": "a"}, {"concat": 0, "inputs": ["a", "input"]}, input=(3, 8)) == ["E311"]


def test_unknown_node_reference(h) -> None:
    errs = h.errors({"relu": None, "name": "alpha"}, {"add": None, "inputs": ["alpah", "input"]}, input=(3, 4))
    assert [e.code for e in errs] == ["E314"]
    assert errs[0].message == "unknown node 'alpah'"
    assert errs[0].hint == "did you mean 'alpha'?"


def test_forward_reference_is_explained(h) -> None:
    errs = h.errors({"add": None, "inputs": ["later", "input"]}, {"relu": None, "name": "later"}, input=(3, 4))
    assert errs[0].message == "unknown node 'later' (it is defined later or in another block; inputs must come earlier)"


def test_node_names_unique_and_not_reserved(h) -> None:
    assert h.codes({"relu": None, "name": "a"}, {"relu": None, "name": "a"}, input=(3,)) == ["E315"]
    assert h.codes({"relu": None, "name": "input"}, input=(3,)) == ["E380"]  # `input` means the model input


def test_misaligned_merge_warns_w320(h) -> None:
    # 'same' with an even kernel pads 0 before and 1 after: the centre moves by half a pixel
    m = h.load({"conv": {"out": 3, "k": 2, "pad": "same"}, "name": "a"}, {"add": None, "inputs": ["a", "input"]},
               input=(3, 8, 8))
    assert [w.code for w in m.warnings] == ["W320"]
    aligned = h.load({"conv": {"out": 3, "k": 3, "pad": 1}, "name": "a"}, {"add": None, "inputs": ["a", "input"]},
                     input=(3, 8, 8))
    assert aligned.warnings == []


def test_errors_downstream_of_a_failure_are_not_repeated(h) -> None:
    # the first conv fails; the second would fail too but is explained by the first
    assert h.codes({"conv": {"out": 2, "k": 9}}, {"conv": {"out": 2, "k": 9}}, input=(1, 4, 4)) == ["E304"]


def test_independent_errors_are_all_reported(h) -> None:
    codes = h.codes({"conv": {"out": 2, "k": 9}, "name": "a"}, {"groupnorm": 5, "inputs": ["input"]},
                    input=(4, 4, 4))
    assert codes == ["E304", "E303"]


def test_strict_false_returns_the_model_with_its_errors(spec) -> None:
    m = specdsl.load(spec({"conv": {"out": 2, "k": 9}}, "relu", input=(1, 4, 4)), strict=False)
    assert [d.code for d in m.diagnostics] == ["E304"]
    assert m.rows()[-1][1].failed
