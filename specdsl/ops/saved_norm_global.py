"""The saved-tensor rules of grn, rmsnorm and simplenorm (specdsl/ops/norm_global.py): entries of the
table in saved.py (``SAVED``). No torch here either.

Each op is a few autograd nodes in a row, as timm's modules compute it (modules_modern.py runs the
same operations in the same order), and each node keeps what ``derivatives.yaml`` says it needs for
the gradients it computes: a product keeps its left factor only for the right one's gradient and the
other way round, so what is kept depends on whether the input needs grad and whether the op's own
weights train. Under CUDA autocast the norms, powers and rsqrt run in float32 (autocast's float32
list: linalg_vector_norm with dtype=float32, pow, rsqrt), so what follows them is float32 too.
"""

from __future__ import annotations

import math

from specdsl.ops.saved_records import Call, Saved, SavedEntry


def _fp32_under_amp(call: Call) -> str:
    return "float32" if call.amp is not None else ""


def _per_position(call: Call) -> int:
    """Elements of one statistic per position: the input's, less its normalised axis."""
    return call.batch * math.prod(call.ins[0][1:]) // call.attrs.channels


def grn(call: Call) -> tuple[Saved, ...]:
    """x.norm(2, spatial) keeps x and its result g [N, C]; g / (mean_c(g) + eps) keeps g and the
    divisor [N]; x * n keeps x and n [N, C]; addcmul(bias, weight, x * n) keeps x * n for the weight."""
    dt, x = _fp32_under_amp(call), call.ins[0]
    kept: list[Saved] = []
    if call.needs_grad[0]:
        per_channel = call.batch * call.attrs.channels
        kept += [Saved.input(), Saved.new(per_channel, dt, "stats"), Saved.new(call.batch, dt, "stats"),
                 Saved.new(per_channel, dt, "stats")]
    if call.trains:
        kept.append(Saved.new(math.prod(x), dt))
    return tuple(kept)


def _rms(call: Call, centred: bool) -> tuple[Saved, ...]:
    """x.pow(2) (or torch.var) keeps x; rsqrt keeps its result r, one per position; x * r keeps x and
    r; the product by the weight keeps x * r for the weight. Under autocast pow keeps its float32 copy
    of x (var runs in x's dtype and keeps x itself)."""
    kept: list[Saved] = []
    if call.needs_grad[0]:
        cast = not centred and call.amp is not None and call.in_dtypes[0] != "float32"
        if cast:
            kept.append(Saved.new(math.prod(call.ins[0]), "float32", "cast"))
        kept += [Saved.input(), Saved.new(_per_position(call), _fp32_under_amp(call), "stats")]
    if call.attrs.affine and call.trains:
        kept.append(Saved.new(math.prod(call.ins[0]), _fp32_under_amp(call)))
    return tuple(kept)


def rmsnorm(call: Call) -> tuple[Saved, ...]:
    return _rms(call, centred=False)


def simplenorm(call: Call) -> tuple[Saved, ...]:
    return _rms(call, centred=True)


# Their outputs are float32 under autocast: the float32 statistics promote the products.
SAVED: dict[str, SavedEntry] = {
    "grn": SavedEntry(grn, autocast="fp32"),
    "rmsnorm": SavedEntry(rmsnorm, autocast="fp32"),
    "simplenorm": SavedEntry(simplenorm, autocast="fp32"),
}
