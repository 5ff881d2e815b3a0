"""The saved-tensor rule of condconv (timm's CondConv2d, as specdsl's helper module runs it): part of
the table in saved.py; no torch here.

forward: mixed = routing @ weight (mm keeps routing for the weight's gradient, the weight, a parameter,
for routing's), the same for the bias; the input viewed as one sample of B·C channels; a grouped conv
that keeps that input and the mixed kernels [B·out, C/groups, kh, kw], a new tensor. Under autocast
the mm and the conv run in the low dtype and keep cast copies.
"""

from __future__ import annotations

import math

from specdsl.ops.saved_records import Call, Saved


def condconv(call: Call) -> tuple[Saved, ...]:
    if not (call.trains or any(call.needs_grad)):
        return ()
    a, x, routing = call.attrs, call.ins[0], call.ins[1]
    mixed = call.batch * a.expert_size
    contiguous = not call.contiguous or call.contiguous[0]
    if call.amp is None:
        kept_x = Saved.input(0) if contiguous else Saved.new(math.prod(x))
        return (kept_x, Saved.new(mixed), *((Saved.input(1),) if call.trains else ()))
    casts = [Saved.new(math.prod(x), call.amp, "cast"), Saved.new(mixed, call.amp)]
    if call.trains:
        casts.append(Saved.new(math.prod(routing), call.amp, "cast"))
    if call.needs_grad[1]:
        casts += [Saved.new(n, call.amp, "weight_copy") for n in call.param_numels]
    return tuple(casts)
