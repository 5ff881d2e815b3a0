"""The saved-tensor rules of the ops that reshape a sample or compute with constants (reshape,
unsqueeze, squeeze, scale, blurpool). Part of the table in saved.py; no torch here either.
"""

from __future__ import annotations

import math

from specdsl.ops.saved_records import Call, Reshape, Saved, View


def reshape(call: Call) -> View:
    """reshape, unsqueeze and squeeze: a view of the input where PyTorch's stride rule allows one
    (the memory pass applies it), else a copy; their backward needs only sizes."""
    return Reshape(0)


def blurpool(call: Call) -> tuple[Saved, ...]:
    """timm's BlurPool2d: F.pad (reflect and replicate padding keep their input), then conv2d by the
    filter buffer, which keeps the padded input (cast under autocast, as its copy of the filter is).
    Nothing is kept when the input needs no grad: the filter never does."""
    if not call.needs_grad[0]:
        return ()
    a, x = call.attrs, call.ins[0]
    keeps_input = (Saved.input(),) if a.pad_mode in ("reflect", "replicate") else ()
    padded = x[0] * x[1] * math.prod(n + 2 * p for n, p in zip(x[2:], a.padding, strict=True))
    if call.amp is None:
        return (*keeps_input, Saved.new(padded))
    return (*keeps_input, Saved.new(padded, call.amp, "cast"),
            Saved.new(a.channels * a.filt * a.filt, call.amp, "weight_copy"))
