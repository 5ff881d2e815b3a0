"""How each op runs in NumPy: one table, one entry per op of ``specdsl.ops.OPS``.

An entry's ``build(node, attrs, weights, shape)`` is called once per node when a
``NumpyModel`` is built and returns the function each forward calls,
``fn(inputs, ctx) -> array``: ``attrs`` is the node's resolved record (its
figure's ``.attrs``), ``weights`` its parameters and buffers by TensorSpec name
(an optional one, such as a bias the spec turned off, is absent) and ``shape``
its static output shape without the batch axis. The op's rule decides whether
it may overwrite its input (``Trait.INPLACE``); the interpreter sets
``ctx.inplace`` only for such ops, and only when nothing else reads the buffer.

``fold_bn`` (conv, deconv, linear) returns the op's weights with a following
inference batch norm, ``y·s + t`` per channel, folded in (None: it cannot be);
``scratch`` the elements of the largest temporary buffer one sample needs, for
sizing forward chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from specdsl.backends.numpy import kernels_fixed as fixed
from specdsl.backends.numpy import kernels_norm_evo as norm_evo
from specdsl.backends.numpy import kernels_norm_global as norm_global
from specdsl.backends.numpy.activations import (
    elu,
    gelu,
    hardswish,
    leaky_relu,
    log_softmax,
    relu,
    relu6,
    sigmoid,
    silu,
    softmax,
    softplus,
)
from specdsl.backends.numpy.folding import conv_scratch, deconv_scratch, fold_deconv, fold_linear, fold_rows
from specdsl.backends.numpy.interpolate import upsample_nd
from specdsl.backends.numpy.kernels import (
    adaptive_avg_pool_nd,
    adaptive_max_pool_nd,
    avg_pool_nd,
    batch_norm,
    conv_nd,
    conv_transpose_nd,
    group_norm,
    instance_norm,
    layer_norm,
    local_response_norm,
    max_pool_nd,
    spatial_axes,
)
from specdsl.backends.numpy.kernels_condconv import condconv
from specdsl.backends.numpy.kernels_conv import conv_padding, standardised_weight
from specdsl.backends.numpy.kernels_modern import (
    channel_norm,
    hardsigmoid,
    locally_connected,
    mish,
    pad,
    pixel_shuffle,
    pixel_unshuffle,
    prelu,
    selu,
)
from specdsl.ops.registry import OpTable
from specdsl.ops.rule import NODE_ITSELF

Array = np.ndarray
Shape = tuple[int, ...]


class RunContext:
    """What one forward call tells every op."""

    __slots__ = ("index_dtype", "inplace", "train")

    def __init__(self, train: bool, index_dtype: np.dtype | None) -> None:
        self.train = train
        self.index_dtype = index_dtype
        # True while the running op may overwrite its first input: its rule has Trait.INPLACE
        # and nothing else reads that buffer.
        self.inplace = False


OpFn = Callable[[list[Array], RunContext], Array]
Weights = Mapping[str, Array]
Build = Callable[[Any, Any, Weights, Shape], OpFn]
FoldBN = Callable[[Any, Weights, Shape, Array, Array], "dict[str, Array] | None"]
Scratch = Callable[[Any, Sequence[Shape], Shape], int]


@dataclass(frozen=True, slots=True)
class Lowering:
    build: Build
    # How a following inference batch norm folds into this op's weights (conv, deconv, linear).
    fold_bn: FoldBN | None = None
    scratch: Scratch | None = None
    # This op is that batch norm: it can be folded into a producer with a ``fold_bn`` entry.
    folds_into_producer: bool = False


def unary(f: Callable[[Array, Any], Array]) -> Build:
    """A build for an op computed from its one input and its attrs alone: ``f(x, attrs)``."""
    def build(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
        return lambda ins, ctx: f(ins[0], a)
    return build


def passthrough(ins: list[Array], ctx: RunContext) -> Array:
    """The op function of an op that returns its input (a view, not a copy)."""
    return ins[0]


def _identity(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    return passthrough


# ---------------------------------------------------------------------------- layers with weights


def _conv(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    weight, bias, gain = w["weight"], w.get("bias"), w.get("gain")

    def run(ins: list[Array], ctx: RunContext) -> Array:
        # ws and same_tf at every call, as the PyTorch module does: from the weights and input of now.
        wt = standardised_weight(weight, gain, a.gamma, a.eps) if a.ws else weight
        before, after = conv_padding(ins[0].shape[2:], a)
        return conv_nd(ins[0], wt, bias, a.stride, before, after, a.dilation, a.groups, a.padding_mode)
    return run


def _deconv(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    weight, bias = w["weight"], w.get("bias")

    def run(ins: list[Array], ctx: RunContext) -> Array:
        return conv_transpose_nd(ins[0], weight, bias, a.stride, a.padding, a.output_padding, a.dilation, a.groups)
    return run


def _linear(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    bias = w.get("bias")
    wt = w["weight"].T  # a view: BLAS reads the transpose in place

    def run(ins: list[Array], ctx: RunContext) -> Array:
        y = np.matmul(ins[0], wt)
        if bias is not None:
            y += bias
        return y
    return run


# ---------------------------------------------------------------------------- pooling and shapes


def _maxpool(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    out = shape[1:]
    return lambda ins, ctx: max_pool_nd(ins[0], a.kernel, a.stride, a.padding, a.dilation, out)


def _avgpool(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    out = shape[1:]
    return lambda ins, ctx: avg_pool_nd(ins[0], a.kernel, a.stride, a.padding, out, a.count_include_pad)


def _upsample(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    return lambda ins, ctx: upsample_nd(ins[0], a.size, a.scale, a.mode, a.align_corners, ctx.index_dtype)


def _crop(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    # A view, as PyTorch's narrow is; the interpreter tracks views, so nothing overwrites the skip.
    index = (slice(None), slice(None), *(slice(o, o + m) for o, m in zip(a.offsets, a.size, strict=True)))
    return lambda ins, ctx: ins[0][index]


def _flatten(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    return lambda ins, ctx: ins[0].reshape(ins[0].shape[0], *shape)


# ---------------------------------------------------------------------------- normalisation


def _bn(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    mean, var, gamma, beta = w.get("running_mean"), w.get("running_var"), w.get("weight"), w.get("bias")
    return lambda ins, ctx: batch_norm(ins[0], mean, var, gamma, beta, a.eps, ctx.train)


def _instancenorm(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    mean, var, gamma, beta = w.get("running_mean"), w.get("running_var"), w.get("weight"), w.get("bias")
    return lambda ins, ctx: instance_norm(ins[0], mean, var, gamma, beta, a.eps, not ctx.train)


def _layernorm(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    gamma, beta = w.get("weight"), w.get("bias")
    return lambda ins, ctx: layer_norm(ins[0], a.normalized_shape, gamma, beta, a.eps)


def _groupnorm(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    gamma, beta = w.get("weight"), w.get("bias")
    return lambda ins, ctx: group_norm(ins[0], a.num_groups, gamma, beta, a.eps)


# ---------------------------------------------------------------------------- activations and merges


def _relu(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    return lambda ins, ctx: relu(ins[0], out=ins[0] if ctx.inplace else None)


def _relu6(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    return lambda ins, ctx: relu6(ins[0], out=ins[0] if ctx.inplace else None)


def _leaky_relu(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    return lambda ins, ctx: leaky_relu(ins[0], a.slope, inplace=ctx.inplace)


def _sum(ins: list[Array]) -> Array:
    y = ins[0] + ins[1]
    for other in ins[2:]:
        # Accumulate in place only into a buffer already of the broadcast shape.
        if np.broadcast_shapes(y.shape, other.shape) == y.shape:
            y += other
        else:
            y = y + other
    return y


def _product(ins: list[Array]) -> Array:
    y = ins[0] * ins[1]
    for other in ins[2:]:
        if np.broadcast_shapes(y.shape, other.shape) == y.shape:
            y *= other
        else:
            y = y * other
    return y


def _mul(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    return lambda ins, ctx: _product(ins)


def _mean(ins: list[Array], ctx: RunContext) -> Array:
    y = _sum(ins)
    y /= len(ins)
    return y


def _add(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    return lambda ins, ctx: _sum(ins)


def _mean_of_inputs(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    return _mean


def _concat(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    return lambda ins, ctx: np.concatenate(ins, axis=a.dim)


def _part(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    # A split hands on its input whole (its parts are views of it); a part is the slice PyTorch's is.
    index = (slice(None),) * a.dim + (slice(a.start, a.start + shape[a.dim - 1]),)
    return lambda ins, ctx: ins[0][index]


def _prelu(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    weight = w["weight"]
    return lambda ins, ctx: prelu(ins[0], weight)


def _channel_norm(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    gamma, beta = w["weight"], w["bias"]
    return lambda ins, ctx: channel_norm(ins[0], gamma, beta, a.eps)


def _layer_scale(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    # A flat gamma [C] (timm's) is viewed (1, C, 1, ...) against the batch; [C, 1, ...] broadcasts as it is.
    gamma = w[NODE_ITSELF].reshape(a.view) if a.view else w[NODE_ITSELF]
    return lambda ins, ctx: ins[0] * gamma


def _local(node: Any, a: Any, w: Weights, shape: Shape) -> OpFn:
    weight, bias = w["weight"], w.get("bias")
    return lambda ins, ctx: locally_connected(ins[0], weight, bias, a.stride, a.padding)


def _channel_shuffle(x: Array, a: Any) -> Array:
    n, c = x.shape[:2]
    return x.reshape(n, a.groups, c // a.groups, *x.shape[2:]).swapaxes(1, 2).reshape(x.shape)


LOWERINGS: OpTable[Lowering] = OpTable("NumPy lowering", "LOWERINGS", __name__, {
    # layers with weights
    # A standardised weight (ws) cannot take a batch norm folded in: the conv standardises it again.
    "conv": Lowering(_conv, fold_bn=lambda a, *rest: None if a.ws else fold_rows(a, *rest), scratch=conv_scratch),
    "deconv": Lowering(_deconv, fold_bn=fold_deconv, scratch=deconv_scratch),
    "linear": Lowering(_linear, fold_bn=fold_linear),
    # pooling
    "maxpool": Lowering(_maxpool),
    "avgpool": Lowering(_avgpool),
    "gap": Lowering(unary(lambda x, a: x.mean(axis=spatial_axes(x), keepdims=a.keepdims))),
    "gmp": Lowering(unary(lambda x, a: x.max(axis=spatial_axes(x), keepdims=a.keepdims))),
    "adaptive_avgpool": Lowering(unary(lambda x, a: adaptive_avg_pool_nd(x, a.out_size))),
    "adaptive_maxpool": Lowering(unary(lambda x, a: adaptive_max_pool_nd(x, a.out_size))),
    # normalisation
    "bn": Lowering(_bn, folds_into_producer=True),
    "instancenorm": Lowering(_instancenorm),
    "layernorm": Lowering(_layernorm),
    "groupnorm": Lowering(_groupnorm),
    "lrn": Lowering(unary(lambda x, a: local_response_norm(x, a.size, a.alpha, a.beta, a.k))),
    # activations (relu, relu6 and leaky_relu run in place when the interpreter allows)
    "relu": Lowering(_relu),
    "relu6": Lowering(_relu6),
    "leaky_relu": Lowering(_leaky_relu),
    "elu": Lowering(unary(lambda x, a: elu(x, a.alpha))),
    "hardtanh": Lowering(unary(lambda x, a: np.clip(x, a.min_val, a.max_val))),
    "gelu": Lowering(unary(lambda x, a: gelu(x, a.approximate))),
    "silu": Lowering(lambda node, a, w, shape: lambda ins, ctx: silu(ins[0], out=ins[0] if ctx.inplace else None)),
    "hardswish": Lowering(lambda node, a, w, shape: lambda ins, ctx: hardswish(ins[0],
                                                                               out=ins[0] if ctx.inplace else None)),
    "sigmoid": Lowering(unary(lambda x, a: sigmoid(x))),
    "tanh": Lowering(unary(lambda x, a: np.tanh(x))),
    "softplus": Lowering(unary(lambda x, a: softplus(x, a.beta, a.threshold))),
    "softmax": Lowering(unary(lambda x, a: softmax(x, a.dim))),
    "log_softmax": Lowering(unary(lambda x, a: log_softmax(x, a.dim))),
    # inference: dropout is the identity
    "dropout": Lowering(_identity),
    "dropout1d": Lowering(_identity),
    "dropout2d": Lowering(_identity),
    "dropout3d": Lowering(_identity),
    "identity": Lowering(_identity),
    # shapes
    "flatten": Lowering(_flatten),
    "upsample": Lowering(_upsample),
    "crop": Lowering(_crop),
    # merges; drop-path is for training, so at inference a join is the mean of its inputs
    "add": Lowering(_add),
    "mul": Lowering(_mul),
    "mean": Lowering(_mean_of_inputs),
    "join": Lowering(_mean_of_inputs),
    "concat": Lowering(_concat),
    # multi-output: split and chunk pass their input on whole; each part slices it
    "split": Lowering(_identity),
    "chunk": Lowering(_identity),
    "part": Lowering(_part),
    "channel_shuffle": Lowering(unary(_channel_shuffle)),
    # the modern vocabulary (kernels_modern.py); stochastic depth is the identity at inference
    "hardsigmoid": Lowering(unary(lambda x, a: hardsigmoid(x))),
    "mish": Lowering(unary(lambda x, a: mish(x))),
    "selu": Lowering(unary(lambda x, a: selu(x))),
    "prelu": Lowering(_prelu),
    "stochastic_depth": Lowering(_identity),
    "channel_norm": Lowering(_channel_norm),
    "layer_scale": Lowering(_layer_scale),
    "permute": Lowering(unary(lambda x, a: x.transpose(a.dims))),
    "pad": Lowering(unary(lambda x, a: pad(x, a.before, a.after, a.mode, a.value))),
    "pixel_shuffle": Lowering(unary(lambda x, a: pixel_shuffle(x, a.factor))),
    "pixel_unshuffle": Lowering(unary(lambda x, a: pixel_unshuffle(x, a.factor))),
    "local": Lowering(_local),
    "reshape": Lowering(fixed.reshape),
    "unsqueeze": Lowering(fixed.reshape),
    "squeeze": Lowering(fixed.reshape),
    "scale": Lowering(fixed.scale),
    "blurpool": Lowering(fixed.blurpool),
    "stack": Lowering(lambda node, a, w, shape: lambda ins, ctx: np.stack(ins, axis=a.dim)),
    "sum": Lowering(unary(lambda x, a: x.sum(axis=a.dims, keepdims=a.keepdims))),
    "condconv": Lowering(condconv),
    **{op: Lowering(build) for op, build in norm_global.BUILDS.items()},  # grn, rmsnorm, simplenorm
    **{op: Lowering(build) for op, build in norm_evo.BUILDS.items()},  # evonorm, frn
})
