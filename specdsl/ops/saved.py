"""What PyTorch's autograd keeps for backward, per op: one table, read by the memory pass.

``SAVED`` maps every op name in ``specdsl.ops.OPS`` to a :class:`SavedEntry`:

* ``saves(call)``: the tensors the op's autograd node(s) save, as :class:`Saved` records: an
  input (``Saved.input(k)``; its storage, which may be shared with other nodes), the op's own
  output (``Saved.output()``), or a tensor the op makes (``Saved.new(numel, dtype, what)``:
  max-pool indices, dropout masks, norm statistics, autocast copies, a composite op's
  intermediates). Parameters and buffers are not listed: they are not activations.
* ``view(call)``: where the output shares an input's storage (in-place activations, identity,
  split parts, crops, flatten), how (:class:`Same`, :class:`Narrow`, :class:`Reshape`); None
  when the op allocates its output.
* ``autocast``: what CUDA autocast does to the op: ``"low"`` casts its inputs and weights to
  the low-precision dtype (conv, linear: PyTorch's lower-precision list), ``"fp32"`` runs it in
  float32 (softmax, norms over features: the fp32 list), ``"same"`` runs it in its input's dtype
  (with the usual promotion where inputs differ).

The facts come from PyTorch's ``derivatives.yaml`` and the composite functions in
``torch.nn.functional`` (torch 2.x), and ``tests/test_train_memory.py`` checks every entry
against ``torch.autograd.graph.saved_tensors_hooks`` on CPU. Where CPU and CUDA differ (dropout
keeps a float mask on CPU, a bool mask from the fused CUDA kernel) the entry asks ``call.device``.

A missing entry is an error that names the op (:func:`saved_for`), never a fallback.
This module must not import torch: ``specdsl check --train`` reads it.
"""

from __future__ import annotations

import math

from specdsl.ops import saved_condconv
from specdsl.ops import saved_fixed as fixed
from specdsl.ops import saved_layout as layout
from specdsl.ops import saved_norm_evo as norm_evo
from specdsl.ops import saved_norm_global as norm_global
from specdsl.ops.registry import OpTable
from specdsl.ops.saved_conv import standardised as _standardised
from specdsl.ops.saved_records import Call, Narrow, Permute, Reshape, Same, Saved, SavedEntry, View

__all__ = ["SAVED", "Call", "Narrow", "Permute", "Reshape", "Same", "Saved", "SavedEntry", "View",
           "saved_for"]

Shape = tuple[int, ...]


def saved_for(op: str) -> SavedEntry:
    """The op's entry; a missing one raises :class:`~specdsl.ops.registry.MissingEntry`."""
    return SAVED[op]


# -- helpers ---------------------------------------------------------------------------


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def _nothing(call: Call) -> tuple[Saved, ...]:
    return ()


def _low_input(call: Call, k: int = 0) -> Saved:
    """Input ``k`` as a lower-precision-list op keeps it: under autocast, its cast copy
    (a new tensor) unless it already has the low dtype."""
    if call.amp is not None and call.in_dtypes[k] != call.amp:
        return Saved.new(_numel(call.ins[k]), call.amp, "cast")
    return Saved.input(k)


def _weight_copies(call: Call, count: int) -> tuple[Saved, ...]:
    """Autocast's low-precision copies of the first ``count`` parameters (the weight, not the bias),
    which the op's backward keeps; none without autocast (the parameters themselves are not counted)."""
    if call.amp is None:
        return ()
    return tuple(Saved.new(n, call.amp, "weight_copy") for n in call.param_numels[:count])


# -- conv, linear ----------------------------------------------------------------------


def _conv(call: Call) -> tuple[Saved, ...]:
    # convolution_backward's one formula for input, weight and bias keeps both, whatever needs grad.
    a = call.attrs
    mode = getattr(a, "padding_mode", "zeros")
    asymmetric = (getattr(a, "same", False) or getattr(a, "same_tf", False)) and a.padding != a.padding_after
    if mode == "zeros" and not asymmetric:
        return (_low_input(call), *_weight_copies(call, 1), *_standardised(call))
    # A padding mode other than zeros: the module pads (F.pad) all of it first; 'same' padding that
    # is not symmetric: the convolution pads the difference (constant_pad_nd) and the rest itself.
    # Either way it keeps the padded copy. Reflect and replicate padding keep their own input too;
    # circular padding is slices and a cat.
    x = call.ins[0]
    extra = [p + q if mode != "zeros" else q - p for p, q in zip(a.padding, a.padding_after)]
    padded = x[0] * x[1] * _numel(tuple(n + e for n, e in zip(x[2:], extra)))
    pad_keeps = (Saved.input(),) if mode in ("reflect", "replicate") and call.needs_grad[0] else ()
    kept = Saved.new(padded, call.amp or "", "cast" if call.amp else "activation")
    return (*pad_keeps, kept, *_weight_copies(call, 1), *_standardised(call))


def _linear(call: Call) -> tuple[Saved, ...]:
    # addmm / mm keep mat1 (the input) only for the weight's gradient, the weight only for the input's.
    saves: list[Saved] = []
    if call.trains:
        saves.append(_low_input(call))
    if call.needs_grad[0]:
        saves.extend(_weight_copies(call, 1))
    return tuple(saves)


def _deconv_storage(call: Call) -> int:
    """CPU's slow 3-D transposed convolution (ungrouped) writes into a buffer of at least the
    input's size; PyTorch picks it over oneDNN, on one thread, for a float64 input or an unstrided,
    undilated kernel whose last two sizes are 1 on a batch under 16 (at::native use_mkldnn)."""
    a, x = call.attrs, call.ins[0]
    out = _numel(call.out)
    if call.device != "cpu" or len(x) != 5 or a.groups != 1:
        return out
    k = a.kernel
    onednn = call.in_dtypes[0] == "float32" and (
        any(s != 1 for s in a.stride) or any(d != 1 for d in a.dilation) or x[0] >= 16 or k[-1] != 1
        or k[-2] != 1) and ((k[-1] > 3 and k[-2] > 3) or x[0] > 1 or x[0] * x[1] * x[2] * x[3] > 20480)
    return out if onednn else max(out, _numel(x))


# -- pooling ---------------------------------------------------------------------------


def _with_indices(call: Call) -> tuple[Saved, ...]:
    """max_pool*_with_indices / adaptive_max_pool*: the input and int64 indices of the output's size."""
    return Saved.input(), Saved.new(_numel(call.out), "int64", "indices")


def _avgpool(call: Call) -> tuple[Saved, ...]:
    return (Saved.input(),)


def _adaptive_avgpool(call: Call) -> tuple[Saved, ...]:
    # An output of one element per channel runs as a mean, whose backward needs only sizes.
    if all(s == 1 for s in call.attrs.out_size):
        return ()
    return (Saved.input(),)


def _gmp(call: Call) -> tuple[Saved, ...]:
    # amax keeps its input and its result.
    return Saved.input(), Saved.output()


# -- normalisation ---------------------------------------------------------------------


def _stats(n: int, count: int = 2) -> tuple[Saved, ...]:
    # In the accumulation dtype: float32, or float64 for a float64 input.
    return tuple(Saved.new(n, "acc", "stats") for _ in range(count))


def _batchnorm(call: Call) -> tuple[Saved, ...]:
    # The input and save_mean / save_invstd (float32, one per channel); weight and running stats are
    # parameters and buffers. cuDNN's reserve space is empty for this mode.
    return (Saved.input(), *_stats(call.ins[0][1]))


def _contiguous_input(call: Call, k: int = 0) -> Saved:
    """Input ``k`` as an op that calls ``.contiguous()`` before its autograd node keeps it."""
    return Saved.input(k) if call.contiguous[k] else Saved.new(_numel(call.ins[k]))


def _instancenorm(call: Call) -> tuple[Saved, ...]:
    # F.instance_norm runs batch_norm on the input made contiguous and viewed as [1, N*C, ...]; the
    # weight and the running stats it is given are `repeat`ed N times first, so those copies are new
    # tensors it keeps.
    a = call.attrs
    n = call.batch * call.ins[0][1]
    repeated = int(a.affine) + 2 * int(a.track_running_stats)
    return (_contiguous_input(call), *_stats(n, repeated), *_stats(n))


def _layernorm(call: Call) -> tuple[Saved, ...]:
    # Mean and rstd, one per normalised group (float32 under autocast, which runs it in float32).
    groups = _numel(call.ins[0]) // _numel(call.attrs.normalized_shape)
    return (_fp32_input(call), *_stats(groups))


def _groupnorm(call: Call) -> tuple[Saved, ...]:
    # group_norm makes its input contiguous first (under autocast the float32 copy already is).
    groups = call.batch * call.attrs.num_groups
    kept = _fp32_input(call) if call.amp is not None else _contiguous_input(call)
    return (kept, *_stats(groups))


def _fp32_input(call: Call, k: int = 0) -> Saved:
    """Input ``k`` as an fp32-list op keeps it: under autocast, a float32 copy unless it is float32."""
    if call.amp is not None and call.in_dtypes[k] != "float32":
        return Saved.new(_numel(call.ins[k]), "float32", "cast")
    return Saved.input(k)


def _lrn(call: Call) -> tuple[Saved, ...]:
    """F.local_response_norm: x*x (keeps x), the channel-padded square (kept by the average pool),
    (. * alpha + k) (kept by pow), its power (kept by the division, with x)."""
    x = call.ins[0]
    size = call.attrs.size
    padded = x[0] * (x[1] + size // 2 + (size - 1) // 2) * _numel(x[2:])
    full = _numel(x)
    # Under autocast pow runs in float32 (a copy of its input), so does the division after it.
    power = "float32" if call.amp is not None else ""
    return (Saved.input(), Saved.new(padded), Saved.new(full, power), Saved.new(full, power))


# -- activations -----------------------------------------------------------------------


def _keeps_output(call: Call) -> tuple[Saved, ...]:
    return (Saved.output(),)


def _keeps_input(call: Call) -> tuple[Saved, ...]:
    return (Saved.input(),)


def _keeps_fp32_input(call: Call) -> tuple[Saved, ...]:
    return (_fp32_input(call),)


def _in_place(call: Call) -> View | None:
    return Same(0) if call.inplace else None


def _relu(call: Call) -> tuple[Saved, ...]:
    # threshold_backward reads the result, in place or not.
    return (Saved.output(),)


def _leaky_relu(call: Call) -> tuple[Saved, ...]:
    # Out of place it keeps its input; in place (leaky_relu_) its result.
    return (Saved.output() if call.inplace else Saved.input(),)


def _copy_in_place(call: Call) -> tuple[Saved, ...]:
    """silu, hardswish: the backward reads the input; in place, autograd keeps a copy taken before it
    is overwritten."""
    return (Saved.new(_numel(call.ins[0])),) if call.inplace else (Saved.input(),)


def _hardtanh_like(call: Call) -> tuple[Saved, ...]:
    # relu6 is hardtanh(0, 6): its backward reads the input, so in place (hardtanh_) autograd keeps a
    # copy of the input taken before it is overwritten.
    if call.inplace:
        return (Saved.new(_numel(call.ins[0])),)
    return (Saved.input(),)


def _dropout(call: Call) -> tuple[Saved, ...]:
    p = call.attrs.p
    if p == 0:
        return ()
    if p == 1:
        return (Saved.new(1, "", "mask"),)  # input * zeros(()): the 0-dim zero
    if call.device == "cuda":
        return (Saved.new(_numel(call.ins[0]), "bool", "mask"),)  # native_dropout's mask
    return (Saved.new(_numel(call.ins[0]), "", "mask"),)  # input * noise: a scaled mask of the input's dtype


def _feature_dropout(call: Call) -> tuple[Saved, ...]:
    # One noise value per (sample, channel), multiplied in: [N, C, 1, ...].
    p = call.attrs.p
    if p == 0:
        return ()
    if p == 1:
        return (Saved.new(1, "", "mask"),)
    return (Saved.new(call.ins[0][0] * call.ins[0][1], "", "mask"),)


def _dropout_view(call: Call) -> View | None:
    return Same(0) if call.attrs.p == 0 else None


def _prelu(call: Call) -> tuple[Saved, ...]:
    # _prelu_kernel keeps the input and the weight (a parameter); autocast casts both (lower-precision list).
    return (_low_input(call), *_weight_copies(call, 1))


def _layer_scale(call: Call) -> tuple[Saved, ...]:
    # x * weight: the input is kept for the weight's gradient only.
    return (Saved.input(),) if call.trains else ()


def _channel_norm(call: Call) -> tuple[Saved, ...]:
    # layer_norm over channels (ConvNeXt's LayerNorm2d: permute, F.layer_norm, permute back): the
    # input (a permuted view of its storage) and mean / rstd, one per position.
    x = call.ins[0]
    return (_fp32_input(call), *_stats(x[0] * _numel(x[2:])))


def _stochastic_depth(call: Call) -> tuple[Saved, ...]:
    # torchvision.ops.stochastic_depth: input * noise, the noise one value per sample (row) or one.
    if call.attrs.p == 0:
        return ()
    return (Saved.new(call.batch if call.attrs.mode == "row" else 1, "", "mask"),)


# -- merges ----------------------------------------------------------------------------


def _product(call: Call) -> tuple[Saved, ...]:
    """reduce(mul): each product keeps the other factor for each side's gradient; the running
    product (after the first) is a new tensor of the broadcast shape so far."""
    saves: list[Saved] = []
    running: Shape = call.ins[0]
    running_grad = call.needs_grad[0]
    running_saved: Saved = Saved.input(0)
    for k in range(1, len(call.ins)):
        if running_grad:
            saves.append(Saved.input(k))
        if call.needs_grad[k]:
            saves.append(running_saved)
        running = tuple(max(a, b) for a, b in zip(running, call.ins[k], strict=True))
        running_grad = running_grad or call.needs_grad[k]
        running_saved = Saved.new(_numel(running), _promoted(call, k + 1))
    return tuple(saves)


def _promoted(call: Call, upto: int) -> str:
    """The dtype of an element-wise result over the first ``upto`` inputs: the widest float."""
    order = ("float16", "bfloat16", "float32", "float64")
    return max(call.in_dtypes[:upto], key=order.index)


# -- the table -------------------------------------------------------------------------

SAVED: OpTable[SavedEntry] = OpTable("saved-for-backward entry", "SAVED", __name__, {
    "conv": SavedEntry(_conv, autocast="low"),
    "deconv": SavedEntry(_conv, autocast="low", storage=_deconv_storage),
    "maxpool": SavedEntry(_with_indices),
    "avgpool": SavedEntry(_avgpool),
    "gap": SavedEntry(_nothing),  # mean: its backward needs only sizes
    "gmp": SavedEntry(_gmp),
    "adaptive_avgpool": SavedEntry(_adaptive_avgpool),
    "adaptive_maxpool": SavedEntry(_with_indices),
    "upsample": SavedEntry(_nothing),  # every interpolation mode's backward needs only sizes
    "bn": SavedEntry(_batchnorm),
    "instancenorm": SavedEntry(_instancenorm),
    "layernorm": SavedEntry(_layernorm, autocast="fp32"),
    "groupnorm": SavedEntry(_groupnorm, autocast="fp32"),
    "lrn": SavedEntry(_lrn),
    "channel_norm": SavedEntry(_channel_norm, autocast="fp32"),
    **norm_global.SAVED,  # grn, rmsnorm, simplenorm (saved_norm_global.py)
    **norm_evo.SAVED,  # evonorm, frn (saved_norm_evo.py)
    "layer_scale": SavedEntry(_layer_scale),
    "relu": SavedEntry(_relu, view=_in_place),
    "relu6": SavedEntry(_hardtanh_like, view=_in_place),
    "leaky_relu": SavedEntry(_leaky_relu, view=_in_place),
    "elu": SavedEntry(_keeps_input),
    "selu": SavedEntry(_keeps_input),
    "hardsigmoid": SavedEntry(_keeps_input),
    "mish": SavedEntry(_keeps_input),
    "prelu": SavedEntry(_prelu, autocast="low"),
    "hardtanh": SavedEntry(_keeps_input),
    "gelu": SavedEntry(_keeps_input),
    "silu": SavedEntry(_copy_in_place, view=_in_place),
    "hardswish": SavedEntry(_copy_in_place, view=_in_place),
    "sigmoid": SavedEntry(_keeps_output),
    "tanh": SavedEntry(_keeps_output),
    "softplus": SavedEntry(_keeps_fp32_input, autocast="fp32"),
    "softmax": SavedEntry(_keeps_output, autocast="fp32"),
    "log_softmax": SavedEntry(_keeps_output, autocast="fp32"),
    "dropout": SavedEntry(_dropout, view=_dropout_view),
    "dropout1d": SavedEntry(_feature_dropout, view=_dropout_view),
    "dropout2d": SavedEntry(_feature_dropout, view=_dropout_view),
    "dropout3d": SavedEntry(_feature_dropout, view=_dropout_view),
    "stochastic_depth": SavedEntry(_stochastic_depth, view=_dropout_view),
    "identity": SavedEntry(_nothing, view=layout.same, grads="pass"),
    "crop": SavedEntry(_nothing, view=layout.crop),  # narrow: a view, whose backward needs only sizes
    "flatten": SavedEntry(_nothing, view=layout.reshape, grads="pass"),
    "linear": SavedEntry(_linear, autocast="low"),
    "add": SavedEntry(_nothing, grads="pass"),
    "mul": SavedEntry(_product),
    "concat": SavedEntry(_nothing, grads="slices"),
    "mean": SavedEntry(_nothing),  # a sum, then a division by a number
    "join": SavedEntry(_nothing),  # stack(...).mean(0), or one input passed through
    "split": SavedEntry(_nothing, view=layout.same),  # the parts are views of the input
    "chunk": SavedEntry(_nothing, view=layout.same),
    "part": SavedEntry(_nothing, view=layout.part, grads="pass"),
    "permute": SavedEntry(_nothing, view=layout.permute, grads="pass"),
    "pad": SavedEntry(layout.pad),
    "pixel_shuffle": SavedEntry(_nothing),  # a reshaped copy: its backward needs only sizes
    "pixel_unshuffle": SavedEntry(_nothing),
    "local": SavedEntry(layout.local),
    "channel_shuffle": SavedEntry(_nothing),  # view, permute, contiguous copy: no tensor kept
    "reshape": SavedEntry(_nothing, view=fixed.reshape, grads="pass"),
    "unsqueeze": SavedEntry(_nothing, view=fixed.reshape, grads="pass"),
    "squeeze": SavedEntry(_nothing, view=fixed.reshape, grads="pass"),
    "scale": SavedEntry(_nothing),  # x * a number: the backward multiplies by the number
    "blurpool": SavedEntry(fixed.blurpool, autocast="low"),
    "stack": SavedEntry(_nothing, grads="slices"), "sum": SavedEntry(_nothing, grads="pass"),  # unbind, expand
    "condconv": SavedEntry(saved_condconv.condconv, autocast="low"),
})
