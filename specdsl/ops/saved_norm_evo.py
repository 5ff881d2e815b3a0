"""The saved-tensor rules of evonorm and frn (specdsl/ops/norm_evo.py): entries of the table in saved.py
(``SAVED``). No torch here either.

Each op is a few autograd nodes in a row, as timm's modules compute them (modules_evo.py runs the same
operations in the same order), and each node keeps what ``derivatives.yaml`` says it needs for the
gradients it computes: a product keeps its left factor only for the right one's gradient and the other
way round, so what is kept depends on whether the input needs grad and whether the op's weights train.
The statistics run in float32 (timm's ``.float()``, a float32 copy of a low-precision input) and are cast
back, so the rest runs in the input's dtype, under autocast too.
"""

from __future__ import annotations

import math

from specdsl.ops.saved_records import Call, Saved, SavedEntry


def _input_or_copy(call: Call, cast: bool) -> Saved:
    """What the float32 statistic keeps of x: x itself, or its float32 copy (timm's ``x.float()``, or
    CUDA autocast's for ``pow``, on its float32 list)."""
    if cast and call.amp is not None and call.in_dtypes[0] != "float32":
        return Saved.new(math.prod(call.ins[0]), "float32", "cast")
    return Saved.input()


def _stats_dtype(call: Call) -> str:
    return "float32" if call.amp is not None and call.in_dtypes[0] != "float32" else ""


def _copies(call: Call, *kept: tuple[int, bool]) -> list[Saved]:
    """Under autocast the parameters are cast to x's dtype (timm's ``.to(x_dtype)``): a product keeps
    the copy of parameter ``k`` (weight 0, bias 1, v or tau 2) where its other factor needs grad."""
    if call.amp is None or call.in_dtypes[0] == "float32":
        return []
    return [Saved.new(call.param_numels[k], "", "weight_copy") for k, needed in kept if needed]


def evonorm(call: Call) -> tuple[Saved, ...]:
    """var(x per group) keeps x; sqrt keeps the deviation s [N, G]; expanding s to x's shape copies it
    (d), unless one of the group's axes is all there is (groups 1 or C: then d is a view of s, in x's
    dtype). With the gate: x·v keeps x for v; sigmoid keeps its result; x·sigmoid keeps both factors
    as each needs; the quotient by d keeps d, and the numerator for d's gradient; the product by the
    weight keeps the quotient for the weight."""
    a, x, grad = call.attrs, call.ins[0], call.needs_grad[0]
    n, s = math.prod(x), call.batch * a.groups
    trains = call.trains
    if not a.normalises:  # timm's S0 without its gate: x·weight + bias
        return (*((Saved.input(),) if trains else ()), *_copies(call, (0, grad)))
    d_is_view = a.groups in (1, a.channels)
    d = Saved.new(s if d_is_view else n)
    kept: list[Saved] = []
    if grad:
        kept += [_input_or_copy(call, cast=True), Saved.new(s, _stats_dtype(call), "stats")]
    if a.apply_act:
        if grad or trains:
            kept += [Saved.input(), Saved.new(n)]  # x (for v and for the gate's factor), sigmoid(x·v)
        quotient_needs = grad or trains
    else:
        if grad:
            kept.append(Saved.input())
        quotient_needs = grad
    # A view of s (cast back to x's dtype: a copy under autocast) shares its storage, kept already.
    if quotient_needs and not (d_is_view and grad and not _stats_dtype(call)):
        kept.append(d)
    if grad and a.apply_act:
        kept.append(Saved.new(n))  # x·sigmoid, for d's gradient
    if trains:
        kept.append(Saved.new(n))  # the quotient, for the weight
    return (*kept, *_copies(call, (2, a.apply_act and grad), (0, quotient_needs)))


def frn(call: Call) -> tuple[Saved, ...]:
    """x² keeps x; rsqrt keeps its result r [N, C]; x·r keeps both; the product by the weight keeps
    x·r for the weight; the TLU max(y, tau) keeps y."""
    a, x, grad = call.attrs, call.ins[0], call.needs_grad[0]
    n, per_channel = math.prod(x), call.batch * a.channels
    kept: list[Saved] = []
    if grad:
        first = _input_or_copy(call, cast=call.device == "cuda")
        kept += [first, Saved.new(per_channel, _stats_dtype(call), "stats")]
        if first.kind != "input":  # x·r keeps x itself
            kept.append(Saved.input())
        if _stats_dtype(call):  # r cast back to x's dtype, kept by x·r
            kept.append(Saved.new(per_channel, "", "stats"))
    if call.trains:
        kept.append(Saved.new(n))
    if a.apply_act and (grad or call.trains):
        kept.append(Saved.new(n))
    return (*kept, *_copies(call, (0, grad), (2, a.apply_act and (grad or call.trains))))


SAVED: dict[str, SavedEntry] = {
    "evonorm": SavedEntry(evonorm),
    "frn": SavedEntry(frn),
}
