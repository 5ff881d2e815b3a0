"""Random specs for differential testing (hypothesis strategies).

Constraint-aware in the spirit of NNSmith (Liu et al., ASPLOS 2023): the
generator keeps the shape of the tensor it is building on and only proposes a
layer whose arguments fit that shape, so almost every draw is a valid model.
Primitive layers are checked with specdsl's own shape rules as they are drawn
(a rejected proposal is redrawn); a block (residual, dense, transition,
inception, fractal, stage, repeat or a user block) is drawn from the same
primitives and then sized by loading a one-layer spec. Rank 0 ([F]), 1D, 2D
and 3D inputs are all drawn; sizes stay small so a backend runs an example in
milliseconds.

``specs()`` gives the spec as plain data; ``spec_text(data)`` gives YAML text
(one JSON document, which is YAML). A draw that specdsl nevertheless rejects
(it happens: e.g. a residual whose body and projection disagree) is a fine
example too: the tests check that such specs never reach a backend.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from specdsl.errors import SpecError
from specdsl.ops import OPS
from specdsl.ops.rule import RuleContext, RuleViolation

Shape = tuple[int, ...]
Draw = Callable[[st.SearchStrategy[Any]], Any]

# From the op table, so every new op is drawn: activations that fit anywhere (no axis argument),
# and every single-input op.
ACTIVATIONS = tuple(op for op, rule in OPS.items()
                    if rule.family == "activation" and "dim" not in rule.args.model_fields)
# Multi-output ops and their parts need names (`@s.0`): the "split" block kind draws them.
SPLITTING = ("split", "chunk")
PRIMITIVES = tuple(op for op, rule in OPS.items() if rule.max_inputs == 1 and op not in (*SPLITTING, "part"))
# Draw weights: spatial ops often, the ones that end the spatial part (gap, gmp, flatten) rarely.
WEIGHTED = (
    *PRIMITIVES, "conv", "conv", "conv", "deconv", "maxpool", "avgpool", "adaptive_avgpool",
    "adaptive_maxpool", "upsample", "upsample", "upsample", "bn", "instancenorm", "groupnorm", "lrn",
    "dropout1d", "dropout2d", "dropout3d",
)
# Kinds of composite layer a random spec may draw: every built-in block (each has a drawer below,
# BUILTIN_DRAWERS, which tests/test_properties.py checks against specdsl's block registry) and the
# forms that are not blocks: repeats, user-defined blocks, skips, splits and forks (several outputs).
COMPOSITES = ("repeat", "user", "skip", "split", "cond", "fork")
MAX_SIDE = {0: 1, 1: 20, 2: 10, 3: 6}
MAX_ELEMENTS = 6000  # per sample, per activation: keeps each example fast
# Normalising very few values is ill-conditioned (a zero variance turns rounding into output), so
# every layernorm / groupnorm / instancenorm group, and batch statistics, see at least this many.
MIN_NORMALISED = 4
SKIP = object()


def spec_text(data: dict[str, Any]) -> str:
    """YAML text of a spec given as plain data (JSON is YAML)."""
    return json.dumps(data, indent=1) + "\n"


# ------------------------------------------------------------------ shapes of primitives


def infer(op: str, args: Any, shapes: list[Shape]) -> Shape | None:
    """specdsl's output shape for one primitive, or None where its rule refuses it."""
    rule = OPS[op]
    try:
        model = rule.args.model_validate({} if args is None else args)
        out = rule.infer(model, shapes, RuleContext()).shape
    except (RuleViolation, ValueError):
        return None
    if any(d <= 0 for d in out) or math.prod(out) > MAX_ELEMENTS:
        return None
    return out


def _axis_list(draw: Draw, rank: int, values: st.SearchStrategy[int]) -> int | list[int]:
    """One number for every axis, or (sometimes) one per axis."""
    if rank > 1 and draw(st.integers(0, 3)) == 0:
        return [draw(values) for _ in range(rank)]
    return draw(values)


def _each(v: int | list[int], rank: int) -> list[int]:
    return [v] * rank if isinstance(v, int) else list(v)


# How to draw arguments for each single-input op, given its input shape (None: no arguments,
# SKIP: this shape cannot take the op). Every such op in specdsl.ops.OPS needs an entry
# (tests/test_properties.py checks), so a new op is drawn by the random-spec tests from day one.


def _none(draw: Draw, shape: Shape, op: str) -> Any:
    return None


def _conv(draw: Draw, shape: Shape, op: str) -> Any:
    rank = len(shape) - 1
    sides = shape[1:]
    small = min(sides) if sides else 1
    cin = shape[0]
    groups: Any = draw(st.sampled_from([g for g in range(1, cin + 1) if cin % g == 0]))
    out = groups * draw(st.integers(1, max(1, 6 // groups)))
    if groups == cin and out == cin and draw(st.booleans()):
        groups = "depthwise"
    k = _axis_list(draw, rank, st.integers(1, min(5, small + 2)))
    dilation = draw(st.sampled_from([1, 1, 1, 2]))
    args: dict[str, Any] = {"out": out, "k": k}
    if draw(st.integers(0, 4)) == 0:
        args["pad"] = "same"
    else:
        args["stride"] = _axis_list(draw, rank, st.sampled_from([1, 1, 2, 3]))
        args["pad"] = draw(st.one_of(st.just("valid"), st.integers(0, 2), st.just("same_tf"),
                                     st.just([max(0, (d - 1) // 2) for d in _each(k, rank)])))
    if dilation != 1:
        args["dilation"] = dilation
    if groups != 1:
        args["groups"] = groups
    if draw(st.booleans()):
        args["bias"] = False
    if draw(st.integers(0, 3)) == 0:  # weight standardisation (timm's StdConv2d, ScaledStdConv2d)
        args["ws"] = True
        if draw(st.booleans()):
            args.update(gain=True, gamma=draw(st.sampled_from([1.0, 1.7])))
        if draw(st.booleans()):
            args["eps"] = 1e-5
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    if mode != "zeros" and not args.get("ws") and args["pad"] != "same_tf":
        args["padding_mode"] = mode
    return args


def _deconv(draw: Draw, shape: Shape, op: str) -> Any:
    rank = len(shape) - 1
    cin = shape[0]
    groups = draw(st.sampled_from([g for g in range(1, cin + 1) if cin % g == 0]))
    stride = draw(st.integers(1, 3))
    dilation = draw(st.sampled_from([1, 1, 2]))
    args = {"out": groups * draw(st.integers(1, max(1, 4 // groups))),
            "k": _axis_list(draw, rank, st.integers(1, 4)), "stride": stride, "pad": draw(st.integers(0, 1))}
    if dilation != 1:
        args["dilation"] = dilation
    if draw(st.booleans()):
        args["output_padding"] = draw(st.integers(0, max(stride, dilation) - 1))
    if groups != 1:
        args["groups"] = groups
    if draw(st.booleans()):
        args["bias"] = False
    return args


def _window_pool(draw: Draw, shape: Shape, op: str) -> Any:
    rank = len(shape) - 1
    sides = shape[1:]
    small = min(sides) if sides else 1
    k = draw(st.integers(1, min(4, small + 1)))
    args = {"k": _axis_list(draw, rank, st.just(k)) if draw(st.booleans()) else k}
    if draw(st.booleans()):
        args["stride"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        args["pad"] = draw(st.integers(0, k // 2))
    if draw(st.booleans()):
        args["ceil_mode"] = True
    if op == "maxpool" and draw(st.integers(0, 3)) == 0:
        args["dilation"] = 2
    if op == "avgpool" and draw(st.booleans()):
        args["count_include_pad"] = False
    return args


def _global_pool(draw: Draw, shape: Shape, op: str) -> Any:
    return {"keepdims": True} if draw(st.booleans()) else None


def _adaptive_pool(draw: Draw, shape: Shape, op: str) -> Any:
    rank = len(shape) - 1
    sides = shape[1:]
    small = min(sides) if sides else 1
    return {"out": _axis_list(draw, rank, st.integers(1, small + 2))}


def _upsample(draw: Draw, shape: Shape, op: str) -> Any:
    rank = len(shape) - 1
    sides = shape[1:]
    modes = ["nearest", "nearest-exact", {1: "linear", 2: "bilinear", 3: "trilinear"}[rank]]
    if rank == 2:
        modes.append("bicubic")
    mode = draw(st.sampled_from(modes))
    args = {"mode": mode}
    if draw(st.booleans()):
        args["scale"] = draw(st.sampled_from([2.0, 1.5, 0.5, 2.5, 3.0, 1.7, 0.75, 1.3]))
        if rank > 1 and draw(st.integers(0, 2)) == 0:
            args["scale"] = [draw(st.sampled_from([1.0, 2.0, 1.5, 0.6])) for _ in range(rank)]
    else:
        args["size"] = _axis_list(draw, rank, st.integers(1, 2 * max(sides) + 1))
    if mode not in ("nearest", "nearest-exact") and draw(st.booleans()):
        args["align_corners"] = draw(st.booleans())
    return args


def _bn(draw: Draw, shape: Shape, op: str) -> Any:
    sides = shape[1:]
    args = {}
    if draw(st.integers(0, 3)) == 0:
        args["affine"] = False
    if math.prod(sides) >= 2 and draw(st.integers(0, 4)) == 0:
        args["track_running_stats"] = False  # batch statistics over >= 4 values (batch 2)
    if draw(st.booleans()):
        args["eps"] = 1e-3
    return args or None


def _instancenorm(draw: Draw, shape: Shape, op: str) -> Any:
    sides = shape[1:]
    if math.prod(sides) < MIN_NORMALISED:
        return SKIP
    args = {}
    if draw(st.booleans()):
        args["affine"] = True
    if draw(st.booleans()):
        args["track_running_stats"] = True
    return args or None


def _layernorm(draw: Draw, shape: Shape, op: str) -> Any:
    args = {}
    normalised = list(shape)
    if draw(st.booleans()):
        normalised = args["shape"] = list(shape[draw(st.integers(0, len(shape) - 1)):])
        if len(normalised) == 1 and draw(st.booleans()):
            args["shape"] = normalised[0]  # nn.LayerNorm(96): an int is the last axis
    if math.prod(normalised) < MIN_NORMALISED:
        return SKIP
    if draw(st.integers(0, 3)) == 0:
        args["elementwise_affine"] = False
    elif draw(st.integers(0, 3)) == 0:
        args["bias"] = False
    return args or None


def _groupnorm(draw: Draw, shape: Shape, op: str) -> Any:
    size = math.prod(shape)
    fit = [g for g in range(1, shape[0] + 1) if shape[0] % g == 0 and size // g >= MIN_NORMALISED]
    if not fit:
        return SKIP
    args = {"groups": draw(st.sampled_from(fit))}
    if draw(st.integers(0, 3)) == 0:
        args["affine"] = False
    return args


def _lrn(draw: Draw, shape: Shape, op: str) -> Any:
    return {"size": draw(st.integers(1, 5)), "alpha": draw(st.sampled_from([1e-4, 0.01, 0.5])),
            "beta": draw(st.sampled_from([0.75, 0.5, 1.0])), "k": draw(st.sampled_from([1.0, 2.0]))}


def _leaky_relu(draw: Draw, shape: Shape, op: str) -> Any:
    return {"slope": draw(st.sampled_from([0.01, 0.2, -0.5]))} if draw(st.booleans()) else None


def _elu(draw: Draw, shape: Shape, op: str) -> Any:
    return {"alpha": draw(st.sampled_from([1.0, 0.5, 2.0]))} if draw(st.booleans()) else None


def _hardtanh(draw: Draw, shape: Shape, op: str) -> Any:
    low = draw(st.sampled_from([-1.0, -2.0, 0.0, 0.5]))
    return {"min_val": low, "max_val": low + draw(st.sampled_from([0.5, 1.0, 3.0]))} if draw(st.booleans()) else None


def _gelu(draw: Draw, shape: Shape, op: str) -> Any:
    return {"approximate": "tanh"} if draw(st.booleans()) else None


def _softplus(draw: Draw, shape: Shape, op: str) -> Any:
    return {"beta": draw(st.sampled_from([1.0, 2.0, 0.5])), "threshold": draw(st.sampled_from([20.0, 1.0]))} \
        if draw(st.booleans()) else None


def _softmax(draw: Draw, shape: Shape, op: str) -> Any:
    ndim = len(shape) + 1
    return {"dim": draw(st.sampled_from([*range(1, ndim), *range(-ndim + 1, 0)]))}


def _dropout(draw: Draw, shape: Shape, op: str) -> Any:
    return {"p": 0.3} if draw(st.booleans()) else None


def _flatten(draw: Draw, shape: Shape, op: str) -> Any:
    ndim = len(shape) + 1
    if ndim > 2 and draw(st.booleans()):
        start = draw(st.integers(1, ndim - 1))
        return {"start_dim": start, "end_dim": draw(st.integers(start, ndim - 1))}
    return None


def _linear(draw: Draw, shape: Shape, op: str) -> Any:
    return {"out": draw(st.integers(1, 8))} | ({"bias": False} if draw(st.integers(0, 3)) == 0 else {})


def _split(draw: Draw, shape: Shape, op: str) -> Any:
    """Sizes that add up to the channels (or another non-batch axis)."""
    dim = draw(st.integers(1, len(shape)))
    extent = shape[dim - 1]
    cuts = sorted(draw(st.sets(st.integers(1, extent - 1), max_size=min(3, extent - 1)))) if extent > 1 else []
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, extent])]
    return {"sizes": sizes} | ({"dim": dim} if dim != 1 else {})


def _chunk(draw: Draw, shape: Shape, op: str) -> Any:
    dim = draw(st.integers(1, len(shape)))
    return {"chunks": draw(st.integers(1, min(4, shape[dim - 1])))} | ({"dim": dim} if dim != 1 else {})


def _part(draw: Draw, shape: Shape, op: str) -> Any:
    return SKIP  # written `@s.k` after a split or chunk: see the "split" block kind


def _channel_shuffle(draw: Draw, shape: Shape, op: str) -> Any:
    if len(shape) < 2:
        return SKIP
    return {"groups": draw(st.sampled_from([g for g in range(1, shape[0] + 1) if shape[0] % g == 0]))}


def _prelu(draw: Draw, shape: Shape, op: str) -> Any:
    args = {"num_parameters": shape[0]} if draw(st.booleans()) else {}
    return args | ({"init": draw(st.sampled_from([0.1, -0.5]))} if draw(st.booleans()) else {})


def _stochastic_depth(draw: Draw, shape: Shape, op: str) -> Any:
    return {"p": draw(st.sampled_from([0.0, 0.2, 1.0])), "mode": draw(st.sampled_from(["row", "batch"]))}


def _channel_norm(draw: Draw, shape: Shape, op: str) -> Any:
    if shape[0] < MIN_NORMALISED:
        return SKIP
    return {"eps": 1e-3} if draw(st.booleans()) else None


def _layer_scale(draw: Draw, shape: Shape, op: str) -> Any:
    return {"init": draw(st.sampled_from([1e-6, 0.5]))} if draw(st.booleans()) else None


def _axis_and_eps(draw: Draw) -> dict[str, Any]:
    """grn, rmsnorm, simplenorm: over the channels or (channels_last) the last axis."""
    args: dict[str, Any] = {"channels_last": True} if draw(st.booleans()) else {}
    if draw(st.booleans()):
        args["eps"] = 1e-3
    return args


def _grn(draw: Draw, shape: Shape, op: str) -> Any:
    return _axis_and_eps(draw) or None


def _rmsnorm(draw: Draw, shape: Shape, op: str) -> Any:
    args = _axis_and_eps(draw)
    if draw(st.booleans()):
        args["affine"] = False
    return args or None


def _simplenorm(draw: Draw, shape: Shape, op: str) -> Any:
    """As rmsnorm's; its variance needs MIN_NORMALISED values, as the other centring norms'."""
    args = _rmsnorm(draw, shape, op) or {}
    return SKIP if shape[-1 if args.get("channels_last") else 0] < MIN_NORMALISED else args or None


def _frn(draw: Draw, shape: Shape, op: str) -> Any:
    """evonorm, frn: timm's 2d modules' formulas over any spatial rank."""
    if len(shape) < 2:
        return SKIP
    return {"apply_act": False} if draw(st.booleans()) else None


def _evonorm(draw: Draw, shape: Shape, op: str) -> Any:
    """As frn's; its groups divide the channels."""
    args = _frn(draw, shape, op)
    if args is SKIP:
        return SKIP
    args = args or {}
    args["groups"] = draw(st.sampled_from([g for g in (1, 2, 3, shape[0]) if shape[0] % g == 0]))
    if draw(st.booleans()):
        args["variant"] = "s0a"
    return args


def _permute(draw: Draw, shape: Shape, op: str) -> Any:
    rest = draw(st.permutations(list(range(1, len(shape) + 1))))
    return {"dims": [0, *rest]}


def _pad(draw: Draw, shape: Shape, op: str) -> Any:
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    # reflect: smaller than the side; circular: at most the side (PyTorch's rules).
    limit = min(shape[1:]) - (mode == "reflect")
    if limit < 0:
        return SKIP
    widths: Any = draw(st.lists(st.integers(0, min(limit, 3)), min_size=2 * (len(shape) - 1),
                                max_size=2 * (len(shape) - 1)))
    if draw(st.booleans()):
        widths = widths[0]
    args = {"pad": widths, "mode": mode}
    return args | ({"value": 0.5} if mode == "constant" and draw(st.booleans()) else {})


def _pixel_shuffle(draw: Draw, shape: Shape, op: str) -> Any:
    if op == "pixel_shuffle":
        fit = [r for r in (1, 2, 3) if shape[0] % (r * r) == 0]
    else:
        fit = [r for r in (1, 2, 3) if all(n % r == 0 for n in shape[1:])]
    return {"factor": draw(st.sampled_from(fit))}


def _local(draw: Draw, shape: Shape, op: str) -> Any:
    rank = len(shape) - 1
    k = _axis_list(draw, rank, st.integers(1, min(3, min(shape[1:]) + 1)))
    args = {"out": draw(st.integers(1, 4)), "k": k}
    if draw(st.booleans()):
        args["stride"] = _axis_list(draw, rank, st.integers(1, 2))
    if draw(st.booleans()):
        args["pad"] = 1
    return args | ({"bias": False} if draw(st.integers(0, 3)) == 0 else {})


def _reshape(draw: Draw, shape: Shape, op: str) -> Any:
    """A new sample shape: everything in one axis, a leading or trailing 1 (ECA's [1, -1]), or the
    channels split in two; one size inferred (-1) or none."""
    total = math.prod(shape)
    choices = [[total], [1, total], [total, 1], list(shape)]
    if shape[0] % 2 == 0 and len(shape) < 4:
        choices.append([2, shape[0] // 2, *shape[1:]])
    sizes = draw(st.sampled_from(choices))
    if draw(st.booleans()):
        sizes[draw(st.integers(0, len(sizes) - 1))] = -1
    return {"shape": sizes}


def _unsqueeze(draw: Draw, shape: Shape, op: str) -> Any:
    if len(shape) >= 4:
        return SKIP
    dim = draw(st.integers(1, len(shape) + 1))  # PyTorch numbering: the batch is 0
    return {"dim": dim - (len(shape) + 2) if draw(st.booleans()) else dim}


def _squeeze(draw: Draw, shape: Shape, op: str) -> Any:
    ones = [i + 1 for i, n in enumerate(shape) if n == 1]
    if not ones or len(shape) == 1:
        return SKIP
    dim = draw(st.sampled_from(ones))
    return {"dim": dim - (len(shape) + 1) if draw(st.booleans()) else dim}


def _blurpool(draw: Draw, shape: Shape, op: str) -> Any:
    if len(shape) != 3:  # timm's BlurPool2d: 2-D only
        return SKIP
    args = {"filt": draw(st.integers(2, 5)), "stride": draw(st.integers(1, 2))}
    return args | {"pad_mode": draw(st.sampled_from(["reflect", "constant", "replicate", "circular"]))}


def _stack(draw: Draw, shape: Shape, op: str) -> Any:
    """A stack of one input (a new axis of size 1; the merges of several are drawn by name in the tests)."""
    if len(shape) >= 4:
        return SKIP
    dim = draw(st.integers(1, len(shape) + 1))
    return {"dim": dim - (len(shape) + 2) if draw(st.booleans()) else dim}


def _sum(draw: Draw, shape: Shape, op: str) -> Any:
    """A sum over one non-batch axis (maybe counted from the end) or several; keepdims where none would be left."""
    dims = sorted(draw(st.sets(st.integers(1, len(shape)), min_size=1, max_size=len(shape))))
    keep = len(dims) == len(shape) or draw(st.booleans())
    if len(dims) > 1:
        return {"dim": dims, "keepdims": keep}
    return {"dim": dims[0] - (len(shape) + 1) if draw(st.booleans()) else dims[0], "keepdims": keep}


PROPOSERS: dict[str, Callable[[Draw, Shape, str], Any]] = {
    "stack": _stack,
    "sum": _sum,
    **{op: _none for op in ("relu", "relu6", "silu", "hardswish", "sigmoid", "tanh", "identity", "hardsigmoid",
                            "mish", "selu")},
    "prelu": _prelu,
    "stochastic_depth": _stochastic_depth,
    "channel_norm": _channel_norm,
    "layer_scale": _layer_scale,
    "grn": _grn,
    "rmsnorm": _rmsnorm,
    "simplenorm": _simplenorm,
    "evonorm": _evonorm,
    "frn": _frn,
    "permute": _permute,
    "pad": _pad,
    "pixel_shuffle": _pixel_shuffle,
    "pixel_unshuffle": _pixel_shuffle,
    "local": _local,
    "reshape": _reshape,
    "unsqueeze": _unsqueeze,
    "squeeze": _squeeze,
    "scale": lambda draw, shape, op: {"value": draw(st.sampled_from([0.17, -2.0, 1.0]))},
    "blurpool": _blurpool,
    "conv": _conv,
    "deconv": _deconv,
    "maxpool": _window_pool,
    "avgpool": _window_pool,
    "gap": _global_pool,
    "gmp": _global_pool,
    "adaptive_avgpool": _adaptive_pool,
    "adaptive_maxpool": _adaptive_pool,
    "upsample": _upsample,
    "bn": _bn,
    "instancenorm": _instancenorm,
    "layernorm": _layernorm,
    "groupnorm": _groupnorm,
    "lrn": _lrn,
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "hardtanh": _hardtanh,
    "gelu": _gelu,
    "softplus": _softplus,
    "softmax": _softmax,
    "log_softmax": _softmax,
    "dropout": _dropout,
    "dropout1d": _dropout,
    "dropout2d": _dropout,
    "dropout3d": _dropout,
    "flatten": _flatten,
    "linear": _linear,
    "split": _split,
    "chunk": _chunk,
    "part": _part,
    "channel_shuffle": _channel_shuffle,
}


def propose(draw: Draw, op: str, shape: Shape) -> Any:
    """Arguments for ``op`` that are likely to fit an input of ``shape`` (None: no arguments)."""
    return PROPOSERS[op](draw, shape, op)


def primitive(draw: Draw, shape: Shape, ops: tuple[str, ...] = WEIGHTED, tries: int = 6) -> tuple[Any, Shape]:
    """A layer (YAML data) and its output shape; falls back to an activation."""
    rank = len(shape) - 1
    ops = tuple(op for op in ops if OPS[op].ranks is None or rank in OPS[op].ranks)
    for _ in range(tries):
        op = draw(st.sampled_from(ops))
        args = propose(draw, op, shape)
        if args is SKIP:
            continue
        out = infer(op, args, [shape])
        if out is not None and not (op == "maxpool" and _padding_only_window(args, shape, out)):
            return (op if args is None else {op: args}), out
    op = draw(st.sampled_from(ACTIVATIONS))
    return op, shape


def _padding_only_window(args: dict[str, Any], shape: Shape, out: Shape) -> bool:
    """A dilated max-pool window can miss the input entirely and output -inf (as in PyTorch); avoid those."""
    rank = len(shape) - 1
    k, pad, dil = (_each(args.get(key, default), rank) for key, default in (("k", 1), ("pad", 0), ("dilation", 1)))
    stride = _each(args["stride"], rank) if "stride" in args else k
    for n, o, kk, s, p, d in zip(shape[1:], out[1:], k, stride, pad, dil, strict=True):
        for i in range(o):
            if not any(0 <= i * s - p + j * d < n for j in range(kk)):
                return True
    return False


# ------------------------------------------------------------------ blocks


def _spatial_keeping(draw: Draw, shape: Shape, channels: int | None = None) -> tuple[Any, Shape]:
    """A layer that keeps the spatial size: a 'same' conv, a stride-1 padded pool, a norm or an activation."""
    rank = len(shape) - 1
    kind = draw(st.sampled_from(["conv", "conv", "pool", "norm", "act"] if rank else ["norm", "act"]))
    if channels is not None and kind != "conv" and channels != shape[0] and rank:
        kind = "conv"
    if kind == "conv":
        k = draw(st.sampled_from([1, 3, 3, 5]))
        out = channels or draw(st.integers(1, 6))
        layer = {"conv": {"out": out, "k": k, "pad": (k - 1) // 2}}
        if draw(st.booleans()):
            layer["conv"]["bias"] = False
        return layer, (out, *shape[1:])
    if kind == "pool":
        return {draw(st.sampled_from(["maxpool", "avgpool"])): {"k": 3, "stride": 1, "pad": 1}}, shape
    if kind == "norm":
        return draw(st.sampled_from(["bn", "bn", "layernorm"] if math.prod(shape) >= MIN_NORMALISED else ["bn"])), shape
    return draw(st.sampled_from(ACTIVATIONS)), shape


def _chain(draw: Draw, shape: Shape, n: int, channels: int | None = None) -> tuple[list[Any], Shape]:
    layers = []
    for i in range(n):
        layer, shape = _spatial_keeping(draw, shape, channels if i == n - 1 else None)
        layers.append(layer)
    return layers, shape


def residual(draw: Draw, shape: Shape) -> Any:
    rank = len(shape) - 1
    mode = draw(st.sampled_from(["auto", "auto", "identity", "projection", "identity_if_same"]))
    stride = draw(st.sampled_from([1, 1, 2])) if rank and mode != "identity" else 1
    c = shape[0] if mode == "identity" else draw(st.integers(1, 6))
    body: list[Any] = []
    if rank:
        body.append({"conv": {"out": c, "k": 3, "stride": stride, "pad": 1, "bias": False}})
        body.append("bn")
        body.append(draw(st.sampled_from(ACTIVATIONS)))
        more, _ = _chain(draw, (c, *shape[1:]), draw(st.integers(0, 2)), c)
        body += more
    else:
        body += [{"linear": {"out": c}}, "bn", draw(st.sampled_from(ACTIVATIONS))]
    args: dict[str, Any] = {"body": body, "shortcut": mode}
    if mode == "projection":
        args["shortcut"] = [{"conv": {"out": c, "k": 1, "stride": stride, "bias": False}}, "bn"] if rank \
            else [{"linear": {"out": c}}]
    if draw(st.booleans()):
        args["post"] = draw(st.sampled_from(ACTIVATIONS))
    if draw(st.integers(0, 3)) == 0:
        args["pre"] = ["bn", "relu"]
    return {"residual": args}


def dense(draw: Draw, shape: Shape) -> Any:
    args: dict[str, Any] = {"n": draw(st.integers(1, 3)), "growth": draw(st.integers(1, 4))}
    if draw(st.booleans()):
        args["bottleneck"] = draw(st.sampled_from([None, 1, 2]))
    if draw(st.integers(0, 3)) == 0:
        args["drop"] = 0.2
    return {"dense": args}


def transition(draw: Draw, shape: Shape) -> Any:
    if draw(st.booleans()):
        return {"transition": {"theta": draw(st.sampled_from([0.5, 1.0, 0.75]))}}
    return {"transition": {"out": draw(st.integers(1, 6))}}


def inception(draw: Draw, shape: Shape) -> Any:
    branches = []
    for _ in range(draw(st.integers(1, 3))):
        layers, _ = _chain(draw, shape, draw(st.integers(1, 2)))
        branches.append(layers)
    if draw(st.booleans()):
        return {"inception": {"branches": {f"b{i}": b for i, b in enumerate(branches)}}}
    return {"inception": {"branches": branches}}


def fractal(draw: Draw, shape: Shape) -> Any:
    c = draw(st.integers(1, 5))
    base: list[Any] = [{"conv": {"out": c, "k": 3, "pad": 1}}]
    if draw(st.booleans()):
        base.append("bn")
    base.append(draw(st.sampled_from(ACTIVATIONS)))
    return {"fractal": {"columns": draw(st.integers(1, 3)), "base": base,
                        "drop_local": 0.15, "drop_global": draw(st.sampled_from([0.0, 0.5]))}}


def se(draw: Draw, shape: Shape) -> Any:
    """Squeeze-and-excitation with the channels it is given (the block checks them)."""
    gates = [g for g in ("sigmoid", "hardsigmoid") if g in OPS]
    args: dict[str, Any] = {"channels": shape[0], "gate": draw(st.sampled_from(gates)),
                            "act": draw(st.sampled_from(["relu", "silu", "hardswish"]))}
    if draw(st.booleans()):
        args["squeeze"] = draw(st.integers(1, 4))
    else:
        args["reduction"] = draw(st.integers(1, max(1, shape[0])))
    return {"se": args}


def stage(draw: Draw, shape: Shape) -> Any:
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        layer, shape = primitive(draw, shape)
        layers.append(layer)
    return {"stage": layers}


USER_BLOCKS = {
    # name: (definition, argument strategy)
    "unit": {"params": {"c": "int", "stride": 1},
             "layers": [{"conv": {"out": "c", "k": 3, "stride": "stride", "pad": 1, "bias": False}}, "bn", "relu"]},
    "bottleneck": {"params": {"c": "int"},
                   "residual": {"body": [{"conv": {"out": "c", "k": 1, "bias": False}}, "bn", "relu",
                                         {"conv": {"out": "c * 2", "k": 3, "pad": 1, "bias": False}}, "bn"],
                                "shortcut": "auto", "post": "relu"}},
    "head": {"params": {"n": "int"}, "layers": ["gap", {"linear": {"out": "n"}}]},
}


def user(draw: Draw, shape: Shape) -> tuple[str, Any]:
    name = draw(st.sampled_from(sorted(USER_BLOCKS)))
    if name == "unit":
        return name, {"unit": {"c": draw(st.integers(1, 6)), "stride": draw(st.sampled_from([1, 2]))}}
    if name == "bottleneck":
        return name, {"bottleneck": {"c": draw(st.integers(1, 3))}}
    return name, {"head": {"n": draw(st.integers(1, 6))}}


def block_shape(layer: Any, shape: Shape, blocks: dict[str, Any]) -> Shape | None:
    """The output shape of one composite layer, from specdsl itself (None where it is rejected)."""
    import specdsl

    data = {"model": "probe", "input": list(shape), "layers": [layer]}
    if blocks:
        data["blocks"] = blocks
    try:
        model = specdsl.load(spec_text(data), warn=False)  # a probe: only its shape is read
    except SpecError:
        return None
    out = model.analysis.figures[model.graph.output].shape
    if out is None or any(model.analysis.figures[n.index].shape is None or
                          math.prod(model.analysis.figures[n.index].shape) > MAX_ELEMENTS
                          for n in model.graph.nodes):
        return None
    return out


# ------------------------------------------------------------------ whole specs


@st.composite
def input_shapes(draw: Draw, ranks: tuple[int, ...] = (0, 1, 2, 3)) -> Shape:
    rank = draw(st.sampled_from(ranks))
    c = draw(st.integers(1, 4)) if rank else draw(st.integers(1, 12))
    lo = {0: 1, 1: 3, 2: 3, 3: 2}[rank]
    return (c, *(draw(st.integers(lo, MAX_SIDE[rank])) for _ in range(rank)))


@st.composite
def specs(draw: Draw, max_layers: int = 7, ranks: tuple[int, ...] = (0, 1, 2, 2, 3),
          block_rate: float = 0.35) -> dict[str, Any]:
    """A random spec as plain data (see ``spec_text``)."""
    shape = draw(input_shapes(ranks))
    data: dict[str, Any] = {"model": "random", "input": list(shape)}
    blocks: dict[str, Any] = {}
    layers: list[Any] = []
    named: dict[str, Shape] = {"input": shape}
    for _ in range(draw(st.integers(1, max_layers))):
        layer: Any = None
        out: Shape | None = None
        if draw(st.floats(0, 1)) < block_rate:
            kind = draw(st.sampled_from((*sorted(BUILTIN_DRAWERS), *COMPOSITES)))
            layer, out = _block(draw, kind, shape, blocks, named, layers)
        if layer is None or out is None:
            layer, out = primitive(draw, shape)
        if draw(st.integers(0, 4)) == 0 and out is not None and not (isinstance(layer, dict) and "then" in layer):
            name = f"n{len(layers)}"
            layer = ({layer: None} if isinstance(layer, str) else dict(layer)) | {"name": name}
            named[name] = out
        layers.append(layer)
        shape = out
    data["layers"] = layers
    if blocks:
        data["blocks"] = blocks
    return data


def _block(draw: Draw, kind: str, shape: Shape, blocks: dict[str, Any], named: dict[str, Shape],
           layers: list[Any]) -> tuple[Any, Shape | None]:
    rank = len(shape) - 1
    if kind == "skip":
        # A merge with an earlier named node of a compatible shape (a U-Net / ResNet style skip).
        last = f"n{len(layers)}_prev"
        if not layers or (isinstance(layers[-1], dict) and ("then" in layers[-1] or "let" in layers[-1])):
            return None, None  # a `let` or a conditional group takes no name
        same = [n for n, s in named.items() if s == shape]
        cat = [n for n, s in named.items() if len(s) == len(shape) and s[1:] == shape[1:]]
        # add and mul broadcast: an earlier [C, 1, 1] (a gate) or [1, H, W] map scales this one.
        spread = [n for n, s in named.items() if len(s) == len(shape) and all(a in (b, 1) for a, b in zip(s, shape))]
        op = draw(st.sampled_from(["add", "mul", "mean", "concat"]))
        pool = cat if op == "concat" else spread if op in ("add", "mul") else same
        if not pool:
            return None, None
        other = draw(st.sampled_from(sorted(pool)))
        prev = layers[-1]
        layers[-1] = ({prev: None} if isinstance(prev, str) else dict(prev))
        if "name" in layers[-1]:
            last = layers[-1]["name"]
        else:
            layers[-1]["name"] = last
            named[last] = shape
        out = (shape[0] + named[other][0], *shape[1:]) if op == "concat" else shape
        return {op: None, "inputs": [last, other]}, out
    if kind == "split":
        return _split_block(draw, shape, named, layers)
    if kind == "fork":
        return _fork(draw, shape, blocks, layers)
    if kind == "cond":
        return _conditional(draw, shape, layers)
    if kind == "repeat":
        layer, out = primitive(draw, shape)
        if out != shape:
            return None, None
        layer = {layer: None} if isinstance(layer, str) else dict(layer)
        count = draw(st.integers(2, 3))
        # Sometimes numbered (`x(n, j)`): each copy then expands as a layer of its own; `if j < 3` keeps them all.
        indexed = {"index": "j", "if": "j < 3"} if draw(st.booleans()) else {}
        return layer | {"repeat": count} | indexed, out
    drawer, needs_space = BUILTIN_DRAWERS[kind] if kind in BUILTIN_DRAWERS else (None, False)
    if needs_space and rank == 0:
        return None, None
    if kind == "user":
        name, layer = user(draw, shape)
        trial = dict(blocks)
        trial[name] = USER_BLOCKS[name]
        out = block_shape(layer, shape, trial)
        if out is not None:
            blocks[name] = USER_BLOCKS[name]
        return layer, out
    assert drawer is not None, kind
    layer = drawer(draw, shape)
    return layer, block_shape(layer, shape, blocks)


# Each built-in block's drawer, and whether it needs spatial axes (a [C] feature vector cannot
# take a conv or a channel gate).
BUILTIN_DRAWERS: dict[str, tuple[Callable[[Draw, Shape], Any], bool]] = {
    "residual": (residual, False), "stage": (stage, False), "dense": (dense, True), "transition": (transition, True),
    "inception": (inception, True), "fractal": (fractal, True), "se": (se, True),
}


def _conditional(draw: Draw, shape: Shape, layers: list[Any]) -> tuple[Any, Shape | None]:
    """`let tN = FLAG` then `if COND { A } else { B }` (issue 26): the condition an expression over the binding;
    only the chosen body is built, so the other may have any shape."""
    a, out_a = primitive(draw, shape)
    b, out_b = primitive(draw, shape)
    flag = draw(st.booleans())
    name = f"t{len(layers)}"
    layers.append({"let": {name: flag}})
    condition, holds = draw(st.sampled_from([(name, flag), (f"not {name}", not flag), (f"{name} and 2 ** 3 == 8", flag),
                                             (f"[1, {name}][-1] + 1 == 1", not flag)]))
    group: dict[str, Any] = {"if": condition, "then": [a]}
    if draw(st.booleans()) or not holds:
        group["else"] = [b]
    out = out_a if holds else out_b if "else" in group else shape
    return group, out


# A block with two outputs whose modules sit in two lists registered apart from data flow (issue 26,
# items 9 and 10): convs.0, convs.1, then bns.0, bns.1, while the second conv runs after the first bn.
FORK = {"params": {"c": "int"}, "layers": [
    {"conv": {"out": "c", "k": 1, "bias": False}, "name": "convs.0"}, {"bn": None, "name": "bns.0"},
    {"relu": None, "name": "a"},
    {"conv": {"out": "c", "k": 1}, "inputs": ["input"], "name": "convs.1"}, {"bn": None, "name": "bns.1"},
    {"add": None, "inputs": ["a", "bns.1"], "name": "s"}], "outputs": ["s", "a"]}


def _fork(draw: Draw, shape: Shape, blocks: dict[str, Any], layers: list[Any]) -> tuple[Any, Shape | None]:
    """A call of FORK, then a merge of its two outputs read as `@fN.0`, `@fN.1` (HRNet's modules in small)."""
    c = draw(st.integers(1, 4))
    out = (2 * c, *shape[1:])
    if len(shape) == 1 or math.prod(out) > MAX_ELEMENTS or math.prod(shape[1:]) < MIN_NORMALISED:
        return None, None  # a conv needs spatial axes; bn needs a few values per channel
    name = f"f{len(layers)}"
    blocks["fork"] = FORK
    layers.append({"fork": {"c": c}, "name": name})
    return {"concat": None, "inputs": [f"{name}.1", f"{name}.0"]}, out


def _split_block(draw: Draw, shape: Shape, named: dict[str, Shape], layers: list[Any]) -> tuple[Any, Shape | None]:
    """A split or chunk, a layer on one of its parts, and a merge of parts (ShuffleNet's unit).

    Appends the split and the part's layer to ``layers``; returns the merge."""
    if len(shape) < 1:
        return None, None
    op = draw(st.sampled_from(SPLITTING))
    args = PROPOSERS[op](draw, shape, op)
    rule = OPS[op]
    try:
        inferred = rule.infer(rule.args.model_validate(args), [shape], RuleContext())
    except (RuleViolation, ValueError):
        return None, None
    parts = inferred.parts or ()
    name = f"s{len(layers)}"
    layers.append({op: args, "name": name})
    refs = [f"{name}.{k}" for k in range(len(parts))]
    chosen = draw(st.integers(0, len(parts) - 1))
    layer, out = primitive(draw, parts[chosen])
    if out == parts[chosen]:
        moved = f"{name}_p"
        layers.append(({layer: None} if isinstance(layer, str) else dict(layer)) | {"inputs": [refs[chosen]],
                                                                                        "name": moved})
        refs[chosen] = moved
    dim = next((k for k in range(len(shape)) if any(p[k] != shape[k] for p in parts)), 0)
    if len(parts) > 1 and dim == 0 and draw(st.booleans()):
        return {"concat": None, "inputs": refs}, shape
    if len(set(parts)) == 1 and len(parts) > 1:
        return {draw(st.sampled_from(["add", "mean"])): None, "inputs": refs}, parts[0]
    return {"identity": None, "inputs": [refs[chosen]]}, parts[chosen]
