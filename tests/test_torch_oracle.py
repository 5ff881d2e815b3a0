"""Differential tests: specdsl's static figures against PyTorch at run time.

For every op that PyTorch has (1D/2D/3D where that applies), hypothesis draws
arguments and an input shape; the layer is checked by specdsl (through
``specdsl.load`` on YAML text, or the op rule itself for merges) and built
directly as the ``torch.nn`` layer it stands for. Then:

1. PyTorch accepts the config  <=>  specdsl reports no error;
2. when both accept: specdsl's output shape equals the runtime shape (batch 2),
   trainable parameters equal ``sum(p.numel() for p in layer.parameters())`` and
   buffers equal ``sum(b.numel() for b in layer.buffers())``;
3. conv, transposed conv and linear: specdsl's MACs equal
   ``FlopCounterMode`` total flops / 2 at batch 1.

A layer is run in training mode (a fresh module's mode). A runtime output with
an empty axis counts as PyTorch rejecting the config.

Where specdsl is stricter than PyTorch on purpose, the test asserts that
specdsl rejects and does not consult PyTorch: the batch axis is not an operand
(``softmax``/``flatten``/``concat`` over dim 0), ``mean`` does not
broadcast and ``add``/``mul`` broadcast only between inputs of equal rank, a
declared ``in:`` must match, and layers that need spatial axes
refuse inputs PyTorch would read as *unbatched* (e.g. ``Conv1d`` on ``(N, F)``).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from conftest import spec_text  # noqa: E402
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import InvalidArgument  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import specdsl  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402
from specdsl.ops import OPS  # noqa: E402
from specdsl.ops.rule import RuleContext, RuleViolation  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

# SPECDSL_ORACLE_SCALE=20 runs twenty times the examples (for a deeper search, not for CI).
SCALE = int(os.environ.get("SPECDSL_ORACLE_SCALE", "1"))
SETTINGS = settings(
    max_examples=100 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FEW = settings(SETTINGS, max_examples=40 * SCALE)

MAX_SIDE = {0: 1, 1: 9, 2: 7, 3: 5}


# --------------------------------------------------------------------------- specdsl side


@dataclass
class Figures:
    shape: tuple[int, ...]
    trainable: int = 0
    buffers: int = 0
    macs: int = 0


def one_layer_text(in_shape: Sequence[int], op: str, args: dict[str, Any]) -> str:
    args = {k: v for k, v in args.items() if v is not None}
    return spec_text({op: args} if args else op, input=in_shape)


def via_spec(in_shape: Sequence[int], op: str, args: dict[str, Any]) -> Figures | SpecError:
    """One layer through the whole pipeline: YAML -> schema -> graph -> analysis."""
    text = one_layer_text(in_shape, op, args)
    try:
        model = specdsl.load(text, warn=False)  # random layers: their warnings are not what is compared
    except SpecError as exc:
        return exc
    _node, fig = model.rows()[-1]
    assert fig.shape is not None, text
    return Figures(tuple(fig.shape), fig.trainable, fig.buffers, fig.macs)


def via_rule(op: str, args: dict[str, Any], in_shapes: Sequence[tuple[int, ...]]) -> Figures | RuleViolation:
    """The op rule called directly (used for multi-input merges)."""
    rule = OPS[op]
    parsed = rule.args.model_validate(args)
    try:
        inferred = rule.infer(parsed, in_shapes, RuleContext())
    except RuleViolation as exc:
        return exc
    weights = rule.weights(inferred.attrs)
    trainable = sum(w.numel for w in weights if w.role == "parameter")
    buffers = sum(w.numel for w in weights if w.role == "buffer")
    return Figures(inferred.shape, trainable, buffers, rule.macs(inferred.attrs, in_shapes, inferred.shape))


# --------------------------------------------------------------------------- PyTorch side


@dataclass
class Runtime:
    shape: tuple[int, ...] | None = None
    trainable: int = 0
    buffers: int = 0
    error: BaseException | None = None
    layer: Any = None


def via_torch(make: Callable[[], Any], in_shapes: Sequence[Sequence[int]], batch: int = 2) -> Runtime:
    """Build the layer and run it on batch-2 inputs; any exception means PyTorch rejects."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            layer = make()
            xs = [torch.randn(batch, *s) for s in in_shapes]
            with torch.no_grad():
                y = layer(*xs)
        except Exception as exc:
            return Runtime(error=exc)
    if y.numel() == 0:
        return Runtime(error=RuntimeError(f"empty output {tuple(y.shape)}"))
    if isinstance(layer, nn.Module):
        trainable = sum(p.numel() for p in layer.parameters())
        buffers = sum(b.numel() for b in layer.buffers())
    else:
        trainable = buffers = 0
    return Runtime(tuple(y.shape), trainable, buffers, layer=layer)


def torch_macs(layer: nn.Module, in_shape: Sequence[int]) -> int:
    x = torch.randn(1, *in_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            layer(x)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


def _note(what: str) -> None:
    """Label the example for ``--hypothesis-show-statistics`` (a no-op outside @given)."""
    try:
        event(what)
    except InvalidArgument:
        pass


def agree(spec: Figures | Exception, rt: Runtime, what: str, *, macs_of: Sequence[int] | None = None) -> None:
    """The oracle: accept/reject agree; shape, params, buffers (and MACs) agree."""
    _note(f"PyTorch rejects: {str(rt.error)[:60]}" if rt.error is not None else "PyTorch accepts")
    if rt.error is not None:
        assert isinstance(spec, (SpecError, RuleViolation)), (
            f"PyTorch rejects {what} ({type(rt.error).__name__}: {rt.error}) "
            f"but specdsl accepts it with output {spec.shape}"
        )
        return
    assert not isinstance(spec, Exception), (
        f"PyTorch accepts {what} (output {rt.shape}) but specdsl rejects it:\n{spec}"
    )
    assert rt.shape is not None
    assert spec.shape == rt.shape[1:], f"shape of {what}: specdsl {spec.shape}, PyTorch {rt.shape[1:]}"
    assert spec.trainable == rt.trainable, f"params of {what}: specdsl {spec.trainable}, PyTorch {rt.trainable}"
    assert spec.buffers == rt.buffers, f"buffers of {what}: specdsl {spec.buffers}, PyTorch {rt.buffers}"
    if macs_of is not None:
        expected = torch_macs(rt.layer, macs_of)
        assert spec.macs == expected, f"MACs of {what}: specdsl {spec.macs}, FlopCounterMode/2 {expected}"


def rejects(spec: Figures | Exception, what: str) -> None:
    _note("refused by design")
    assert isinstance(spec, (SpecError, RuleViolation)), f"specdsl should reject {what}; got {spec}"


# --------------------------------------------------------------------------- strategies


@st.composite
def shapes(draw: Any, ranks: Sequence[int] = (1, 2, 3), max_c: int = 6) -> tuple[int, ...]:
    rank = draw(st.sampled_from(list(ranks)))
    c = draw(st.integers(1, max_c))
    side = MAX_SIDE[rank]
    return (c, *(draw(st.integers(1, side)) for _ in range(rank)))


@st.composite
def per_axis(draw: Any, rank: int, lo: int, hi: int, bad_lengths: bool = False) -> int | list[int]:
    """An int, or a list with one value per spatial axis (rarely, with bad_lengths, the wrong count)."""
    form = draw(st.integers(0, 9 if bad_lengths else 8))
    if form <= 4:
        return draw(st.integers(lo, hi))
    n = rank if form <= 8 else draw(st.sampled_from([m for m in (1, 2, 3) if m != rank]))
    return draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))


def clamp_pad(draw: Any, pad: int | list[int], k: int | list[int]) -> int | list[int]:
    """Mostly keep pooling padding within PyTorch's pad <= k // 2, so most draws are valid."""
    if not draw(st.integers(0, 3)):
        return pad
    if isinstance(pad, int):
        return min(pad, (k if isinstance(k, int) else min(k)) // 2)
    ks = [k] * len(pad) if isinstance(k, int) else k
    return [min(p, q // 2) for p, q in zip(pad, ks)] + pad[len(ks):]


def conv_groups(draw: Any, c: int) -> tuple[int | str, int]:
    """(spec value, PyTorch groups): mostly a divisor of the input channels."""
    groups = draw(st.sampled_from(["one", "divisor", "divisor", "depthwise", "any"]))
    if groups == "one":
        return 1, 1
    if groups == "depthwise":
        return "depthwise", c
    if groups == "divisor":
        g = draw(st.sampled_from([d for d in range(1, c + 1) if c % d == 0]))
        return g, g
    g = draw(st.integers(1, 4))
    return g, g


def tup(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def declared_in(draw: Any, actual: int) -> int | None:
    """The optional `in:` check: absent, right, or (rarely) wrong."""
    return draw(st.sampled_from([None, None, actual, actual + 1]))


CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
DECONV = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
ADAPTIVE = {
    "adaptive_avgpool": {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d},
    "adaptive_maxpool": {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d},
}
BATCHNORM = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
INSTANCENORM = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
DROPOUT_ND = {"dropout1d": (1, nn.Dropout1d), "dropout2d": (2, nn.Dropout2d), "dropout3d": (3, nn.Dropout3d)}


# --------------------------------------------------------------------------- convolution


@SETTINGS
@given(st.data())
def test_conv(data: Any) -> None:
    x = data.draw(shapes())
    rank, c = len(x) - 1, x[0]
    groups, g = conv_groups(data.draw, c)
    args = {
        "out": g * data.draw(st.integers(1, 3)) if data.draw(st.integers(0, 4)) else data.draw(st.integers(1, 8)),
        "k": data.draw(per_axis(rank, 1, 4, bad_lengths=True)),
        "stride": data.draw(st.one_of(st.just(1), per_axis(rank, 1, 3))),
        "pad": data.draw(st.one_of(per_axis(rank, 0, 3), st.sampled_from(["same", "valid"]))),
        "dilation": data.draw(per_axis(rank, 1, 3)),
        "groups": groups,
        "bias": data.draw(st.booleans()),
        "padding_mode": data.draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"])),
        "in": declared_in(data.draw, c),
    }
    spec = via_spec(x, "conv", args)
    what = one_layer_text(x, "conv", args)
    if args["in"] not in (None, c):
        return rejects(spec, what)
    rt = via_torch(lambda: CONV[rank](
        c, args["out"], tup(args["k"]), stride=tup(args["stride"]), padding=tup(args["pad"]),
        dilation=tup(args["dilation"]), groups=g, bias=args["bias"], padding_mode=args["padding_mode"],
    ), [x])
    agree(spec, rt, what, macs_of=x)


@SETTINGS
@given(st.data())
def test_deconv(data: Any) -> None:
    x = data.draw(shapes())
    rank, c = len(x) - 1, x[0]
    groups, g = conv_groups(data.draw, c)
    args = {
        "out": g * data.draw(st.integers(1, 3)) if data.draw(st.integers(0, 4)) else data.draw(st.integers(1, 8)),
        "k": data.draw(per_axis(rank, 1, 4, bad_lengths=True)),
        "stride": data.draw(per_axis(rank, 1, 3)),
        "pad": data.draw(per_axis(rank, 0, 3)),
        "output_padding": data.draw(per_axis(rank, 0, 2)),
        "dilation": data.draw(per_axis(rank, 1, 3)),
        "groups": groups,
        "bias": data.draw(st.booleans()),
        "in": declared_in(data.draw, c),
    }
    spec = via_spec(x, "deconv", args)
    what = one_layer_text(x, "deconv", args)
    if args["in"] not in (None, c):
        return rejects(spec, what)
    rt = via_torch(lambda: DECONV[rank](
        c, args["out"], tup(args["k"]), stride=tup(args["stride"]), padding=tup(args["pad"]),
        output_padding=tup(args["output_padding"]), groups=g, bias=args["bias"], dilation=tup(args["dilation"]),
    ), [x])
    agree(spec, rt, what, macs_of=x)


@SETTINGS
@given(st.data())
def test_linear(data: Any) -> None:
    x = data.draw(shapes(ranks=(0, 1, 2, 3)))
    features = x[-1]
    args = {"out": data.draw(st.integers(1, 8)), "bias": data.draw(st.booleans()),
            "in": declared_in(data.draw, features)}
    spec = via_spec(x, "linear", args)
    what = one_layer_text(x, "linear", args)
    if args["in"] not in (None, features):
        return rejects(spec, what)
    rt = via_torch(lambda: nn.Linear(features, args["out"], bias=args["bias"]), [x])
    agree(spec, rt, what, macs_of=x)


# --------------------------------------------------------------------------- pooling


@SETTINGS
@given(st.data())
def test_maxpool(data: Any) -> None:
    x = data.draw(shapes())
    rank = len(x) - 1
    k = data.draw(per_axis(rank, 1, 4))
    args = {
        "k": k,
        "stride": data.draw(st.one_of(st.none(), per_axis(rank, 1, 3))),
        "pad": clamp_pad(data.draw, data.draw(per_axis(rank, 0, 2)), k),
        "dilation": data.draw(per_axis(rank, 1, 3)),
        "ceil_mode": data.draw(st.booleans()),
    }
    spec = via_spec(x, "maxpool", args)
    rt = via_torch(lambda: MAXPOOL[rank](
        tup(args["k"]), stride=tup(args["stride"]), padding=tup(args["pad"]),
        dilation=tup(args["dilation"]), ceil_mode=args["ceil_mode"],
    ), [x])
    agree(spec, rt, one_layer_text(x, "maxpool", args))


@SETTINGS
@given(st.data())
def test_avgpool(data: Any) -> None:
    x = data.draw(shapes())
    rank = len(x) - 1
    k = data.draw(per_axis(rank, 1, 4))
    args = {
        "k": k,
        "stride": data.draw(st.one_of(st.none(), per_axis(rank, 1, 3))),
        "pad": clamp_pad(data.draw, data.draw(per_axis(rank, 0, 2)), k),
        "ceil_mode": data.draw(st.booleans()),
        "count_include_pad": data.draw(st.booleans()),
    }
    spec = via_spec(x, "avgpool", args)
    rt = via_torch(lambda: AVGPOOL[rank](
        tup(args["k"]), stride=tup(args["stride"]), padding=tup(args["pad"]),
        ceil_mode=args["ceil_mode"], count_include_pad=args["count_include_pad"],
    ), [x])
    agree(spec, rt, one_layer_text(x, "avgpool", args))


@FEW
@given(st.data(), st.sampled_from(["adaptive_avgpool", "adaptive_maxpool"]))
def test_adaptive_pool(data: Any, op: str) -> None:
    x = data.draw(shapes())
    rank = len(x) - 1
    args = {"out": data.draw(per_axis(rank, 1, 6, bad_lengths=True))}
    spec = via_spec(x, op, args)
    rt = via_torch(lambda: ADAPTIVE[op][rank](tup(args["out"])), [x])
    agree(spec, rt, one_layer_text(x, op, args))


@FEW
@given(shapes(), st.sampled_from(["gap", "gmp"]), st.booleans())
def test_global_pool(x: tuple[int, ...], op: str, keepdims: bool) -> None:
    dims = tuple(range(2, len(x) + 1))

    def pool(t: Any) -> Any:
        return t.mean(dim=dims, keepdim=keepdims) if op == "gap" else t.amax(dim=dims, keepdim=keepdims)

    spec = via_spec(x, op, {"keepdims": keepdims})
    agree(spec, via_torch(lambda: pool, [x]), one_layer_text(x, op, {"keepdims": keepdims}))


# --------------------------------------------------------------------------- resizing


SCALES = [0.1, 0.3, 1 / 3, 0.5, 0.7, 0.75, 1.0, 1.1, 1.25, 1.5, 2, 2.0, 2.5, 3]
MODES = {"nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear"}


@SETTINGS
@given(st.data())
def test_upsample(data: Any) -> None:
    x = data.draw(shapes(ranks=(0, 1, 2, 3)))
    rank = len(x) - 1
    n = max(rank, 1)
    which = data.draw(st.sampled_from(["scale"] * 4 + ["size"] * 4 + ["both", "neither"]))
    scale = size = None
    if which in ("scale", "both"):
        scale = data.draw(st.one_of(
            st.sampled_from(SCALES),
            st.lists(st.sampled_from(SCALES), min_size=n, max_size=n),
        ))
    if which in ("size", "both"):
        size = data.draw(per_axis(n, 1, 8))
    fitting = {0: ["nearest"], 1: ["linear"], 2: ["bilinear", "bicubic"], 3: ["trilinear"]}[rank]
    mode = data.draw(st.sampled_from(
        ["nearest", "nearest-exact", *fitting * 2] if data.draw(st.integers(0, 3)) else sorted(MODES)))
    align = data.draw(st.sampled_from([None, None, None, True, False]))
    args = {"scale": scale, "size": size, "mode": mode, "align_corners": align}
    spec = via_spec(x, "upsample", args)
    rt = via_torch(lambda: nn.Upsample(size=tup(size), scale_factor=tup(scale), mode=mode, align_corners=align), [x])
    agree(spec, rt, one_layer_text(x, "upsample", args))


@SETTINGS
@given(st.data())
def test_flatten(data: Any) -> None:
    x = data.draw(shapes(ranks=(0, 1, 2, 3)))
    ndim = len(x) + 1
    start = data.draw(st.integers(-ndim - 1, ndim))
    end = data.draw(st.integers(-ndim - 1, ndim))
    args = {"start_dim": start, "end_dim": end}
    spec = via_spec(x, "flatten", args)
    what = one_layer_text(x, "flatten", args)
    if 0 in (start % ndim if -ndim <= start < ndim else None, end % ndim if -ndim <= end < ndim else None):
        return rejects(spec, what)  # folding the batch axis: refused by design
    agree(spec, via_torch(lambda: nn.Flatten(start, end), [x]), what)


# --------------------------------------------------------------------------- normalisation


@SETTINGS
@given(st.data())
def test_batchnorm(data: Any) -> None:
    x = data.draw(shapes(ranks=(0, 1, 2, 3)))
    c = x[0]
    args = {"affine": data.draw(st.booleans()), "track_running_stats": data.draw(st.booleans()),
            "in": declared_in(data.draw, c)}
    spec = via_spec(x, "bn", args)
    what = one_layer_text(x, "bn", args)
    if args["in"] not in (None, c):
        return rejects(spec, what)
    rt = via_torch(lambda: BATCHNORM[len(x) - 1](
        c, affine=args["affine"], track_running_stats=args["track_running_stats"]), [x])
    agree(spec, rt, what)


@SETTINGS
@given(st.data())
def test_instancenorm(data: Any) -> None:
    x = data.draw(shapes())
    c = x[0]
    args = {"affine": data.draw(st.booleans()), "track_running_stats": data.draw(st.booleans()),
            "in": declared_in(data.draw, c)}
    spec = via_spec(x, "instancenorm", args)
    what = one_layer_text(x, "instancenorm", args)
    if args["in"] not in (None, c):
        return rejects(spec, what)
    rt = via_torch(lambda: INSTANCENORM[len(x) - 1](
        c, affine=args["affine"], track_running_stats=args["track_running_stats"]), [x])
    agree(spec, rt, what)


@SETTINGS
@given(st.data())
def test_layernorm(data: Any) -> None:
    x = data.draw(shapes(ranks=(0, 1, 2, 3)))
    shape = None
    if data.draw(st.booleans()):
        n = data.draw(st.integers(0, len(x)))
        # Mostly the true trailing axes, sometimes a wrong value.
        shape = [d if data.draw(st.integers(0, 5)) else data.draw(st.integers(1, 8)) for d in x[len(x) - n:]]
    args = {"shape": shape, "elementwise_affine": data.draw(st.booleans()), "bias": data.draw(st.booleans())}
    spec = via_spec(x, "layernorm", args)
    rt = via_torch(lambda: nn.LayerNorm(
        tuple(x) if shape is None else tuple(shape),
        elementwise_affine=args["elementwise_affine"], bias=args["bias"]), [x])
    agree(spec, rt, one_layer_text(x, "layernorm", args))


@SETTINGS
@given(st.data())
def test_groupnorm(data: Any) -> None:
    x = data.draw(shapes(ranks=(0, 1, 2, 3)))
    args = {"groups": data.draw(st.integers(1, 6)), "affine": data.draw(st.booleans())}
    spec = via_spec(x, "groupnorm", args)
    rt = via_torch(lambda: nn.GroupNorm(args["groups"], x[0], affine=args["affine"]), [x])
    agree(spec, rt, one_layer_text(x, "groupnorm", args))


@FEW
@given(shapes(ranks=(0, 1, 2, 3)), st.integers(1, 5))
def test_lrn(x: tuple[int, ...], size: int) -> None:
    spec = via_spec(x, "lrn", {"size": size})
    agree(spec, via_torch(lambda: nn.LocalResponseNorm(size), [x]), one_layer_text(x, "lrn", {"size": size}))


# --------------------------------------------------------------------------- activations, dropout


ACTIVATIONS: dict[str, tuple[Any, Callable[[dict[str, Any]], nn.Module]]] = {
    "relu": (st.just({}), lambda a: nn.ReLU()),
    "relu6": (st.just({}), lambda a: nn.ReLU6()),
    "leaky_relu": (st.fixed_dictionaries({"slope": st.sampled_from([0.01, 0.2])}),
                   lambda a: nn.LeakyReLU(a["slope"])),
    "elu": (st.fixed_dictionaries({"alpha": st.sampled_from([1.0, 0.5])}), lambda a: nn.ELU(a["alpha"])),
    "hardtanh": (st.fixed_dictionaries({"min_val": st.sampled_from([-1.0, -2.0]),
                                        "max_val": st.sampled_from([1.0, 0.5])}),
                 lambda a: nn.Hardtanh(a["min_val"], a["max_val"])),
    "gelu": (st.fixed_dictionaries({"approximate": st.sampled_from(["none", "tanh"])}),
             lambda a: nn.GELU(approximate=a["approximate"])),
    "silu": (st.just({}), lambda a: nn.SiLU()),
    "hardswish": (st.just({}), lambda a: nn.Hardswish()),
    "hardsigmoid": (st.just({}), lambda a: nn.Hardsigmoid()),
    "mish": (st.just({}), lambda a: nn.Mish()),
    "selu": (st.just({}), lambda a: nn.SELU()),
    "prelu": (st.fixed_dictionaries({"init": st.sampled_from([0.25, -0.1])}), lambda a: nn.PReLU(init=a["init"])),
    "sigmoid": (st.just({}), lambda a: nn.Sigmoid()),
    "tanh": (st.just({}), lambda a: nn.Tanh()),
    "softplus": (st.fixed_dictionaries({"beta": st.sampled_from([1.0, 2.0]), "threshold": st.just(20.0)}),
                 lambda a: nn.Softplus(a["beta"], a["threshold"])),
    "dropout": (st.fixed_dictionaries({"p": st.sampled_from([0.0, 0.1, 0.5, 1.0])}), lambda a: nn.Dropout(a["p"])),
    "identity": (st.just({}), lambda a: nn.Identity()),
}


@pytest.mark.parametrize("op", sorted(ACTIVATIONS))
@settings(SETTINGS, max_examples=10 * SCALE)
@given(data=st.data())
def test_activation(op: str, data: Any) -> None:
    args_st, make = ACTIVATIONS[op]
    x = data.draw(shapes(ranks=(0, 1, 2, 3)))
    args = data.draw(args_st)
    spec = via_spec(x, op, args)
    agree(spec, via_torch(lambda: make(args), [x]), one_layer_text(x, op, args))


@settings(SETTINGS, max_examples=60 * SCALE)
@given(shapes(ranks=(0, 1, 2, 3)), st.sampled_from(["softmax", "log_softmax"]), st.data())
def test_softmax(x: tuple[int, ...], op: str, data: Any) -> None:
    ndim = len(x) + 1
    dim = data.draw(st.integers(-ndim - 1, ndim))
    spec = via_spec(x, op, {"dim": dim})
    what = one_layer_text(x, op, {"dim": dim})
    if dim in (0, -ndim):
        return rejects(spec, what)  # softmax over the batch: refused by design
    layer = nn.Softmax if op == "softmax" else nn.LogSoftmax
    agree(spec, via_torch(lambda: layer(dim), [x]), what)


@settings(SETTINGS, max_examples=50 * SCALE)
@given(shapes(ranks=(0, 1, 2, 3)), st.sampled_from(sorted(DROPOUT_ND)), st.sampled_from([0.0, 0.5]))
def test_channel_dropout(x: tuple[int, ...], op: str, p: float) -> None:
    rank, layer = DROPOUT_ND[op]
    spec = via_spec(x, op, {"p": p})
    what = one_layer_text(x, op, {"p": p})
    if len(x) - 1 != rank:
        # PyTorch reads (N, C, L) as an unbatched 2D input for Dropout2d, and so on: refused by design.
        return rejects(spec, what)
    agree(spec, via_torch(lambda: layer(p), [x]), what)


# --------------------------------------------------------------------------- merges


@st.composite
def shape_pairs(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    a = draw(shapes(ranks=(0, 1, 2, 3)))
    kind = draw(st.sampled_from(["same", "one_axis", "one_axis", "any"]))
    if kind == "same":
        return a, a
    if kind == "one_axis":
        axis = draw(st.integers(0, len(a) - 1))
        b = list(a)
        b[axis] = draw(st.integers(1, 6))
        return a, tuple(b)
    return a, draw(shapes(ranks=(0, 1, 2, 3)))


@settings(SETTINGS, max_examples=100 * SCALE)
@given(shape_pairs(), st.data())
def test_concat(pair: tuple[tuple[int, ...], tuple[int, ...]], data: Any) -> None:
    a, b = pair
    ndim = len(a) + 1
    dim = data.draw(st.integers(-ndim - 1, ndim))
    spec: Figures | Exception
    try:
        spec = via_rule("concat", {"dim": dim}, [a, b])
    except IndexError as exc:  # a crash is not a diagnosis
        pytest.fail(f"concat rule crashed on {a}, {b}, dim={dim}: {exc!r}")
    what = f"concat(dim={dim}) of {list(a)} and {list(b)}"
    if dim in (0, -ndim):
        return rejects(spec, what)  # concatenating batches: refused by design
    agree(spec, via_torch(lambda: lambda s, t: torch.cat([s, t], dim), [a, b]), what)


@settings(SETTINGS, max_examples=50 * SCALE)
@given(shape_pairs(), st.sampled_from(["add", "mul", "mean"]))
def test_add_mul_mean(pair: tuple[tuple[int, ...], tuple[int, ...]], op: str) -> None:
    a, b = pair
    spec = via_rule(op, {}, [a, b])
    what = f"{op} of {list(a)} and {list(b)}"
    if op == "mean" and a != b and len(a) == len(b) and all(p == q or 1 in (p, q) for p, q in zip(a, b)):
        return rejects(spec, what)  # mean (a fractal join) does not broadcast, by design
    if len(a) != len(b):
        # The batch axis comes first, so PyTorch would line it up against a feature axis: refused by design.
        return rejects(spec, what)

    def merge(s: Any, t: Any) -> Any:
        if op == "mean":
            return torch.stack([s, t]).mean(0)
        return s + t if op == "add" else s * t

    agree(spec, via_torch(lambda: merge, [a, b]), what)
    assert via_rule(op, {}, [a, a, a]).shape == a


@settings(SETTINGS, max_examples=50 * SCALE)
@given(shapes(ranks=(1, 2, 3)), shapes(ranks=(1, 2, 3)), st.booleans())
def test_upsample_to_another_input(x: tuple[int, ...], ref: tuple[int, ...], bilinear: bool) -> None:
    rank = len(x) - 1
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[rank] if bilinear else "nearest"
    args = {"mode": mode, "align_corners": False} if bilinear else {"mode": mode}
    spec = via_rule("upsample", args, [x, ref])
    what = f"upsample({args}) of {list(x)} to {list(ref)}"
    if len(ref) != len(x):
        return rejects(spec, what)

    def resize(s: Any, t: Any) -> Any:
        return nn.functional.interpolate(s, size=t.shape[2:], **args)

    agree(spec, via_torch(lambda: resize, [x, ref]), what)


@settings(SETTINGS, max_examples=50 * SCALE)
@given(shapes(ranks=(1, 2, 3)), shapes(ranks=(1, 2, 3)))
def test_crop(x: tuple[int, ...], ref: tuple[int, ...]) -> None:
    spec = via_rule("crop", {}, [x, ref])
    what = f"crop of {list(x)} to {list(ref)}"
    if len(ref) != len(x):
        return rejects(spec, what)

    def centre(s: Any, t: Any) -> Any:
        # The original U-Net's crop, written with slices; a negative margin is PyTorch refusing.
        index = [slice(None), slice(None)]
        for n, m in zip(s.shape[2:], t.shape[2:]):
            if m > n:
                raise ValueError("crop larger than its input")
            index.append(slice((n - m) // 2, (n - m) // 2 + m))
        return s[tuple(index)]

    agree(spec, via_torch(lambda: centre, [x, ref]), what)


# --------------------------------------------------------------------------- rank checks


SPATIAL_ONLY = ["conv", "deconv", "maxpool", "avgpool", "gap", "gmp", "adaptive_avgpool", "adaptive_maxpool",
                "instancenorm", "lrn", "upsample", "dropout1d"]
NEEDED = {"conv": {"out": 4, "k": 1}, "deconv": {"out": 4, "k": 1}, "maxpool": {"k": 1}, "avgpool": {"k": 1},
          "adaptive_avgpool": {"out": 1}, "adaptive_maxpool": {"out": 1}, "lrn": {"size": 2},
          "upsample": {"scale": 2.0}}


@pytest.mark.parametrize("op", SPATIAL_ONLY)
def test_spatial_ops_refuse_feature_vectors(op: str) -> None:
    """[F] batched is (N, F), which PyTorch's 1D layers would read as one unbatched (C, L) sample."""
    rejects(via_spec((6,), op, NEEDED.get(op, {})), f"{op} on [6]")


def test_window_arithmetic_matches_pytorch_on_resnet_stem() -> None:
    """A fixed sanity case: the ResNet stem, end to end."""
    text = ("model: t\ninput: [3, 224, 224]\nlayers:\n"
            "  - conv: {out: 64, k: 7, stride: 2, pad: 3, bias: false}\n  - bn\n  - relu\n"
            "  - maxpool: {k: 3, stride: 2, pad: 1}\n")
    model = specdsl.load(text)
    net = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    assert model.rows()[-1][1].shape == tuple(net(torch.zeros(1, 3, 224, 224)).shape[1:])
    assert model.totals.params == sum(p.numel() for p in net.parameters())
    assert model.totals.buffers == sum(b.numel() for b in net.buffers())
    assert model.totals.macs == 118_013_952
    assert math.prod(model.rows()[-1][1].shape) == 64 * 56 * 56
