"""Property tests (hypothesis): the shape rules against closed forms, receptive fields,
and "the same model written differently gives the same figures"."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from conftest import spec_text
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import specdsl
from specdsl.errors import SpecError
from specdsl.frontend.yaml import load_yaml

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])




def outcome(*layers, input):
    """(model, None) or (None, [error codes])."""
    try:
        return specdsl.load(spec_text(*layers, input=input), warn=False), None  # warnings: model.warnings
    except SpecError as exc:
        return None, [d.code for d in exc.errors]


def conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def torch_pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """ATen's pooling_output_shape, written out."""
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


# ---------------------------------------------------------------- conv and pooling vs closed forms

rank_st = st.integers(1, 3)


@SETTINGS
@given(rank=rank_st, n=st.integers(1, 40), k=st.integers(1, 9), s=st.integers(1, 4), p=st.integers(0, 4),
       d=st.integers(1, 3), c_in=st.integers(1, 4), c_out=st.integers(1, 5), bias=st.booleans())
def test_conv_matches_the_closed_form(rank, n, k, s, p, d, c_in, c_out, bias) -> None:
    inp = (c_in, *(n,) * rank)
    model, codes = outcome({"conv": {"out": c_out, "k": k, "stride": s, "pad": p, "dilation": d, "bias": bias}},
                           input=inp)
    expected = conv_out(n, k, s, p, d)
    if expected < 1:
        assert codes == ["E304"]
        return
    assert codes is None
    f = model.rows()[-1][1]
    assert f.shape == (c_out, *(expected,) * rank)
    assert f.params == c_out * c_in * k**rank + (c_out if bias else 0)
    assert f.macs == c_out * expected**rank * c_in * k**rank
    a = f.rf[0]
    assert (a.size, a.stride, a.pad) == (d * (k - 1) + 1, s, p)


@SETTINGS
@given(rank=rank_st, n=st.integers(1, 30), k=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 4),
       d=st.integers(1, 3), ceil_mode=st.booleans(), op=st.sampled_from(["maxpool", "avgpool"]))
def test_pooling_matches_pytorch(rank, n, k, s, p, d, ceil_mode, op) -> None:
    args = {"k": k, "stride": s, "pad": p, "ceil_mode": ceil_mode}
    if op == "maxpool":
        args["dilation"] = d
    else:
        d = 1
    model, codes = outcome({op: args}, input=(2, *(n,) * rank))
    expected = torch_pool_out(n, k, s, p, d, ceil_mode)
    if p > k // 2:
        assert codes == ["E307"]
    elif op == "avgpool" and rank == 3 and n < k:
        assert codes == ["E304"]  # nn.AvgPool3d's own rule
    elif expected < 1:
        assert codes == ["E304"]
    else:
        assert codes is None, codes
        assert model.rows()[-1][1].shape == (2, *(expected,) * rank)


@SETTINGS
@given(n=st.integers(1, 20), k=st.integers(1, 6), s=st.integers(1, 4), p=st.integers(0, 3),
       op=st.integers(0, 3), d=st.integers(1, 3), rank=rank_st)
def test_deconv_matches_the_closed_form(n, k, s, p, op, d, rank) -> None:
    model, codes = outcome({"deconv": {"out": 2, "k": k, "stride": s, "pad": p, "output_padding": op,
                                       "dilation": d}}, input=(3, *(n,) * rank))
    expected = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
    if op >= max(s, d):
        assert codes == ["E310"]
    elif expected < 1:
        assert codes == ["E301"]
    else:
        assert codes is None
        f = model.rows()[-1][1]
        assert f.shape == (2, *(expected,) * rank)
        assert f.params == 3 * 2 * k**rank + 2


@SETTINGS
@given(n=st.integers(1, 40), k=st.integers(1, 8), d=st.integers(1, 3))
def test_same_padding_keeps_the_size(n, k, d) -> None:
    model, codes = outcome({"conv": {"out": 1, "k": k, "dilation": d, "pad": "same"}}, input=(1, n))
    assert codes is None
    f = model.rows()[-1][1]
    assert f.shape == (1, n)
    assert f.attrs.padding[0] + f.attrs.padding_after[0] == d * (k - 1)
    assert 0 <= f.attrs.padding_after[0] - f.attrs.padding[0] <= 1


@SETTINGS
@given(n=st.integers(1, 60), k=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 3))
def test_w301_exactly_when_real_pixels_are_left_over(n, k, s, p) -> None:
    assume(n + 2 * p >= k)
    model, _ = outcome({"conv": {"out": 1, "k": k, "stride": s, "pad": p}}, input=(1, n))
    dropped = (n + 2 * p - k) % s - p
    warned = [w for w in model.warnings if w.code == "W301"]
    if dropped > 0 and k >= s:
        assert len(warned) == 1
        assert warned[0].message.startswith(f"{dropped} input position(s)")
    else:
        assert warned == []


# ---------------------------------------------------------------- receptive fields


@SETTINGS
@given(ks=st.lists(st.integers(1, 7), min_size=1, max_size=6), dilated=st.booleans())
def test_stacked_stride1_convs_rf(ks, dilated) -> None:
    ds = [(i % 3) + 1 if dilated else 1 for i in range(len(ks))]
    layers = [{"conv": {"out": 2, "k": k, "dilation": d, "pad": "same"}} for k, d in zip(ks, ds)]
    model, codes = outcome(*layers, input=(1, 16, 16))
    assert codes is None
    rf = model.rows()[-1][1].rf
    assert rf[0].size == rf[1].size == 1 + sum(d * (k - 1) for k, d in zip(ks, ds))
    assert rf[0].stride == 1


@SETTINGS
@given(cfg=st.lists(st.tuples(st.integers(1, 7), st.integers(1, 3)), min_size=1, max_size=5))
def test_rf_follows_araujo(cfg) -> None:
    layers = [{"conv": {"out": 1, "k": k, "stride": s, "pad": k // 2}} for k, s in cfg]
    model, codes = outcome(*layers, input=(1, 4096))
    assert codes is None
    size, jump, pad = 1, 1, 0
    for k, s in cfg:
        size += (k - 1) * jump
        pad += (k // 2) * jump
        jump *= s
    a = model.rows()[-1][1].rf[0]
    assert (a.size, a.stride, a.pad) == (size, jump, pad)
    sizes = [f.rf[0].size for _, f in model.rows()]
    assert sizes == sorted(sizes)


# ---------------------------------------------------------------- the same model written differently


@st.composite
def chains(draw):
    """A valid conv net as a list of (shorthand form, mapping form) layer pairs, plus its input."""
    c = draw(st.integers(1, 4))
    n = draw(st.integers(4, 24))
    inp = (c, n, n)
    pairs = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "relu", "bn", "maxpool", "dropout", "leaky_relu", "groupnorm"]))
        if kind == "conv":
            k = draw(st.sampled_from([1, 3, 5]))
            s = draw(st.integers(1, 2))
            out = draw(st.integers(1, 8))
            args = {"out": out, "k": k, "stride": s, "pad": k // 2}
            pairs.append(({"conv": args}, {"conv": dict(reversed(args.items()))}))
            c, n = out, (n + 2 * (k // 2) - k) // s + 1
        elif kind == "maxpool" and n >= 2:
            pairs.append(({"maxpool": 2}, {"maxpool": {"k": 2, "stride": 2}}))
            n //= 2
        elif kind == "dropout":
            p = draw(st.sampled_from([0.0, 0.1, 0.5]))
            pairs.append(({"dropout": p}, {"dropout": {"p": p}}))
        elif kind == "leaky_relu":
            pairs.append(({"leaky_relu": 0.2}, {"leaky_relu": {"slope": 0.2}}))
        elif kind == "groupnorm":
            pairs.append(({"groupnorm": 1}, {"groupnorm": {"groups": 1, "eps": 1e-5}}))
        elif kind in ("relu", "bn"):
            pairs.append((kind, {kind: None}))
    head = draw(st.sampled_from(["flatten", "gap"]))
    classes = draw(st.integers(1, 12))
    pairs.append((head, {head: {}}))
    pairs.append(({"linear": classes}, {"linear": {"out": classes}}))
    return inp, pairs


def figures(model: specdsl.Model):
    return model.totals, [(f.shape, f.params, f.buffers, f.macs, f.rf) for _, f in model.rows()]


@SETTINGS
@given(chains())
def test_shorthand_and_mapping_forms_agree(chain) -> None:
    inp, pairs = chain
    short = specdsl.load(spec_text(*[a for a, _ in pairs], input=inp), warn=False)
    full = specdsl.load(spec_text(*[b for _, b in pairs], input=inp), warn=False)
    assert figures(short) == figures(full)


@FEW
@given(chains())
def test_block_and_flow_yaml_agree(chain) -> None:
    inp, pairs = chain
    data = {"model": "p", "input": list(inp), "layers": [b for _, b in pairs]}
    block = yaml.safe_dump(data, default_flow_style=False, sort_keys=False)
    flow = json.dumps(data, indent=None)
    assert "{" not in block.split("layers:")[1].replace("{}", "")
    assert figures(specdsl.load(block, warn=False)) == figures(specdsl.load(flow + "\n", warn=False))


@FEW
@given(chains())
def test_yaml_and_dsl_agree(chain) -> None:
    printer = pytest.importorskip("specdsl.render.printer")
    inp, pairs = chain
    text = spec_text(*[a for a, _ in pairs], input=inp)
    data, _ = load_yaml(text)
    dsl = printer.to_dsl(data)
    assert figures(specdsl.load(dsl, warn=False)) == figures(specdsl.load(text, warn=False))


@FEW
@given(chain=chains(), times=st.integers(1, 4))
def test_repeat_equals_writing_copies(chain, times) -> None:
    inp, _ = chain
    body = {"conv": {"out": inp[0], "k": 3, "pad": 1}}
    repeated = specdsl.load(spec_text({**body, "repeat": times}, "gap", input=inp), warn=False)
    copies = specdsl.load(spec_text(*[body] * times, "gap", input=inp), warn=False)
    assert figures(repeated) == figures(copies)


@FEW
@given(chains())
def test_freezing_everything_moves_all_params(chain) -> None:
    inp, pairs = chain
    layers = [b for _, b in pairs]
    frozen = [{**layer, "frozen": True} if isinstance(layer, dict) else {layer: None, "frozen": True}
              for layer in layers]
    t = specdsl.load(spec_text(*layers, input=inp), warn=False).totals
    f = specdsl.load(spec_text(*frozen, input=inp), warn=False).totals
    assert (f.frozen, f.trainable, f.params, f.buffers, f.macs) == (t.params, 0, t.params, t.buffers, t.macs)


@FEW
@given(ks=st.lists(st.sampled_from([1, 3, 5]), min_size=1, max_size=4), n=st.integers(2, 12))
def test_same_convs_macs_scale_with_area_and_params_do_not(ks, n) -> None:
    layers = [{"conv": {"out": 3, "k": k, "pad": "same"}} for k in ks]
    small = specdsl.load(spec_text(*layers, input=(3, n, n)), warn=False).totals
    big = specdsl.load(spec_text(*layers, input=(3, 2 * n, 2 * n)), warn=False).totals
    assert big.params == small.params
    assert big.macs == 4 * small.macs


# ---------------------------------------------------------------- the front end never crashes


safe_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


@SETTINGS
@given(safe_text)
def test_quoted_strings_round_trip(s) -> None:
    assert load_yaml(f"v: {json.dumps(s, ensure_ascii=False)}\n")[0] == {"v": s}


@SETTINGS
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                       st.integers(-10**6, 10**6), min_size=1, max_size=8))
def test_locations_slice_out_the_value(d) -> None:
    text = "".join(f"{k}: {v}\n" for k, v in d.items())
    data, smap = load_yaml(text)
    assert data == d
    lines = text.splitlines()
    for k, v in d.items():
        loc = smap.values[(k,)]
        assert lines[loc.line - 1][loc.col - 1:loc.end_col - 1] == str(v)
        key = smap.keys[(k,)]
        assert (key.line, key.col) == (loc.line, 1)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(-2, 2, allow_nan=False),
                    st.sampled_from(["same", "valid", "relu", "input", "x", "c * 2", "", "depthwise", "zeros"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["out", "k", "stride", "pad", "p", "in", "name", "inputs", "groups", "dim",
                                     "scale", "size", "mode", "shape", "relu", "conv", "repeat", "frozen"]),
                    inner, max_size=4)), max_leaves=12)
ops = st.sampled_from(["conv", "deconv", "maxpool", "avgpool", "linear", "bn", "add", "concat", "flatten",
                       "upsample", "softmax", "dropout", "layernorm", "groupnorm", "adaptive_avgpool", "gap",
                       "residual", "dense", "inception", "stage", "transition", "fractal", "nope"])
layers_st = st.lists(st.one_of(ops, st.dictionaries(ops, values, min_size=1, max_size=2),
                               st.builds(lambda op, v, name: {op: v, "name": name}, ops, values,
                                         st.sampled_from(["a", "b", "input"]))), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=layers_st, inp=st.lists(st.integers(-1, 9), min_size=0, max_size=5))
def test_random_specs_give_a_model_or_a_spec_error(layers, inp) -> None:
    text = json.dumps({"model": "fuzz", "input": inp, "layers": layers}) + "\n"
    try:
        model = specdsl.load(text)
    except SpecError as exc:
        assert exc.diagnostics
        assert all(d.is_error or d.severity == "warning" for d in exc.diagnostics)
        exc.render(full=True)
        return
    assert all(f.shape is not None for _, f in model.rows())
    assert math.isfinite(model.totals.params)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.sampled_from(list("model: input[3,8]\n layers-relu{}conv'\"&*!#?|>%@`0x.e_")), max_size=80))
def test_random_text_gives_a_model_or_a_spec_error(text) -> None:
    try:
        specdsl.load("\n" + text + "\n")
    except SpecError as exc:
        exc.render(full=True)


@pytest.mark.parametrize("text", [
    "model: r\ninput: [4, 8]\nlayers:\n  - residual: {body: [gap]}\n",
    "model: r\ninput: [4]\nlayers:\n  - residual: {body: [{linear: 8}]}\n",
    "model: r\ninput: [4]\nlayers:\n  - residual: {body: [{linear: 8}], shortcut: projection}\n",
])
def test_residual_whose_body_changes_rank_is_a_spec_error(text: str) -> None:
    with pytest.raises(SpecError):
        specdsl.load(text)


def test_random_specs_draw_every_built_in_block() -> None:
    """A new block gets a drawer in tests/strategies.py, so the random-spec tests expand it."""
    from strategies import BUILTIN_DRAWERS

    from specdsl.blocks.registry import BLOCKS

    assert set(BUILTIN_DRAWERS) == set(BLOCKS), "add a drawer for each built-in block to BUILTIN_DRAWERS"


def test_random_specs_draw_every_single_input_op() -> None:
    """A new op gets a proposer in tests/strategies.py, so the differential tests draw it."""
    from strategies import PROPOSERS

    from specdsl.ops import OPS

    assert set(PROPOSERS) == {op for op, rule in OPS.items() if rule.min_inputs == 1}
