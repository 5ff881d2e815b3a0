"""What a weight-standardised conv (``ws``) keeps for backward beyond a plain convolution's; read by
``saved.py``'s conv entry. No torch here: ``specdsl check --train`` reads it."""

from __future__ import annotations

from specdsl.ops.saved_records import Call, Saved


def standardised(call: Call) -> tuple[Saved, ...]:
    """conv's ws (timm's StdConv): the training-mode batch norm over the weight keeps its mean and
    inverse std [C_out] (and gain · scale with a gain) when the weight trains; the convolution keeps
    the standardised weight, a new tensor, unless autocast's low-precision copy stands in for it."""
    a = call.attrs
    if not getattr(a, "ws", False):
        return ()
    c = a.out_channels
    stats = (Saved.new(c, "acc", "stats"),) * 2 + ((Saved.new(c, "", "stats"),) if a.gain else ()) \
        if call.trains else ()
    return (*stats, Saved.new(call.param_numels[0], "", "weight_copy")) if call.amp is None else stats
