"""The saved-tensor rules of the layout ops (parts, crop, permute, pad, the locally connected
layer): which views they are and what their autograd nodes keep. Part of the table in saved.py.

No torch here either: ``specdsl check --train`` reads it.
"""

from __future__ import annotations

import itertools
import math

from specdsl.ops.saved_records import Call, Narrow, Permute, Reshape, Same, Saved, View


def part(call: Call) -> View:
    a = call.attrs
    x = call.ins[0]
    starts = [0] * len(x)
    sizes = list(x)
    starts[a.dim] = a.start
    sizes[a.dim] = call.out[a.dim]
    return Narrow(0, tuple(starts), tuple(sizes))


def crop(call: Call) -> View:
    x = call.ins[0]
    return Narrow(0, (0, 0, *call.attrs.offsets), (x[0], x[1], *call.attrs.size))


def permute(call: Call) -> View:
    return Permute(0, tuple(call.attrs.dims))


def pad(call: Call) -> tuple[Saved, ...]:
    # constant_pad_nd and circular padding (slices and a cat) need only sizes; reflection and
    # replication padding keep their input.
    return (Saved.input(),) if call.attrs.mode in ("reflect", "replicate") else ()


def local(call: Call) -> tuple[Saved, ...]:
    """A locally connected layer: the input's patches [N, positions, C·k] meet a weight per position in
    a batched product, which keeps the patches (the weight is a parameter). The patches are the
    padded input unfolded and reshaped: a view of it where the reshape can be one (one channel, say),
    else a copy."""
    a, x = call.attrs, call.ins[0]
    padded = any(p > 0 for p in a.padding)
    sizes = [n + 2 * p for n, p in zip(x[2:], a.padding, strict=True)]
    if _patches_are_a_view(x[1], sizes, a.kernel, a.stride, a.out_sizes):
        return (Saved.new(x[0] * x[1] * math.prod(sizes)),) if padded else (Saved.input(),)
    return (Saved.new(x[0] * x[1] * math.prod(a.kernel) * math.prod(a.out_sizes)),)


def _patches_are_a_view(channels: int, sizes: list[int], kernel: tuple[int, ...], stride: tuple[int, ...],
                        out_sizes: tuple[int, ...]) -> bool:
    """Whether reshaping the unfolded, permuted [C, *out_sizes, *k] patches (per sample) into
    [positions, C·k] is a view, by PyTorch's rule: each merged group's axes (size-1 axes aside)
    follow each other in memory."""
    step, spatial = 1, []
    for n in reversed(sizes):
        spatial.append(step)
        step *= n
    spatial.reverse()
    channel_stride = step
    positions = [(o, st * s) for o, st, s in zip(out_sizes, spatial, stride, strict=True)]
    window = [(k, st) for k, st in zip(kernel, spatial, strict=True)]
    return all(_merges(group) for group in (positions, [(channels, channel_stride), *window]))


def _merges(axes: list[tuple[int, int]]) -> bool:
    sized = [(n, st) for n, st in axes if n != 1]
    return all(sa == sb * nb for (_, sa), (nb, sb) in itertools.pairwise(sized))


def same(call: Call) -> View:
    return Same(0)


def reshape(call: Call) -> View:
    return Reshape(0)
