"""Readers of the PyTorch import table (imports.py) that select or pass through: a part of a split or
chunk, a range of one axis (``x[:, a:b]``, a split and its part), and a sum or product with its neutral
term (``0 + x`` from Python's ``sum``, ``x * 1``), which is its input. No torch is imported."""

from __future__ import annotations

from typing import Any

from specdsl.backends.torch.import_readers import elementwise
from specdsl.backends.torch.import_types import SAME, Lift, Reader, Refuse, Site


def part(site: Site) -> Any:
    """``parts[1]`` of a split or chunk (the lifter checks the tuple is a lifted node's), or ``x[:, a:b]``: a
    range of one axis, the middle part of a split there (ghostnet's and DPN's channel slices)."""
    whole, index = site.args[0], site.args[1]
    if isinstance(whole, tuple | list):
        return {"index": index if index >= 0 else index + len(whole)} if isinstance(index, int) else None
    key = index if isinstance(index, tuple) else (index,)
    if key.count(Ellipsis) == 1:  # x[..., a:b, :] counts from the last axis
        at = key.index(Ellipsis)
        key = key[:at] + (slice(None),) * (int(whole.ndim) - len(key) + 1) + key[at + 1:]
    if not key or not all(isinstance(k, slice) for k in key):
        raise Refuse(f"indexing a tensor by {index!r} (a range of one axis is a split's part; no other)")
    cut = [(d, k) for d, k in enumerate(key) if k != slice(None)]
    if len(cut) != 1 or cut[0][0] == 0 or cut[0][1].step not in (None, 1):
        raise Refuse(f"indexing a tensor by {index!r} (a range of one axis is a split's part; no other)")
    d, k = cut[0]
    size = int(whole.shape[d])
    start, stop, _ = k.indices(size)
    if stop - start == size:
        return SAME
    if stop <= start:
        raise Refuse(f"an empty range {start}:{stop} of axis {d}")
    sizes = [n for n in (start, stop - start, size - stop) if n > 0]
    return Lift({"index": 1 if start > 0 else 0}, before=(("split", {"sizes": sizes, "dim": d}),))


def _neutral(value: float) -> Reader:
    """``x + 0`` (Python's sum() starts at 0), ``x * 1``: the input itself."""

    def read(site: Site) -> Any:
        numbers = [a for a in site.args if isinstance(a, int | float) and not isinstance(a, bool)]
        if len(site.inputs) == 1 and not site.params and numbers == [value] and len(site.args) == 2:
            return SAME
        return elementwise(site)

    return read


add = _neutral(0)
mul = _neutral(1)
