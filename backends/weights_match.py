"""Matching a checkpoint's tensors to a spec's, by structure: shared by the PyTorch and NumPy backends.

The spec's tensors and the checkpoint's, each in module order, must agree in shape one by one
(torchvision's layout and the spec's own both load; names are not compared). With
``transfer=True`` a spec that changed part of the network (a 10-class head, an added layer)
takes every tensor that still fits: the longest order-preserving run of shape matches, which
must be the only one — where two alignments fit equally well the load is refused, not guessed.
No torch here: a checkpoint is any mapping of names to objects with a ``.shape``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specdsl.errors import Diagnostic, SourceLoc, SpecError

# Header metadata key holding the tensors' module order in files we write (safetensors sorts keys).
ORDER_KEY = "specdsl.order"


def load_error(message: str, hint: str | None = None, loc: SourceLoc | None = None,
               code: str = "E501") -> SpecError:
    return SpecError([Diagnostic("error", code, message, loc, hint=hint)], {})


@dataclass(frozen=True)
class Slot:
    """One tensor of the spec's module: its state_dict key, shape and the spec layer owning it."""

    key: str
    shape: tuple[int, ...]
    path: str
    loc: SourceLoc | None

    def where(self) -> str:
        return f"layer {self.path}" + (f" ({self.loc})" if self.loc else "")


@dataclass
class LoadReport:
    """What a load did: (spec key, checkpoint key, shape) per loaded tensor, the spec's tensors
    that got none (new layers) and the checkpoint's that went unused."""

    loaded: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)
    new: list[Slot] = field(default_factory=list)
    unused: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.new and not self.unused

    def table(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        if self.new:
            layers = sorted({s.path for s in self.new}, key=[s.path for s in self.new].index)
            lines.append(f"new (not in the checkpoint, initialised): {len(self.new)} tensors in "
                         f"{len(layers)} layer(s)")
            lines += [f"  {s.key:<40} {list(s.shape)}  {s.where()}" for s in self.new]
        if self.unused:
            lines.append(f"unused checkpoint tensors: {len(self.unused)}")
            lines += [f"  {key:<40} {list(shape)}" for key, shape in self.unused]
        return "\n".join(lines)


def module_order(recorded: str | None, keys: list[str]) -> list[str]:
    """Module order: as recorded by ``save_checkpoint``, else the keys with numbers compared as numbers."""
    if recorded:
        try:
            order = json.loads(recorded)
        except ValueError:
            order = None
        if isinstance(order, list) and sorted(order) == sorted(keys):
            return order
    return sorted(keys, key=lambda k: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in k.split(".")])


def match(slots: list[Slot], tensors: Mapping[str, Any], transfer: bool) -> LoadReport:
    """Pair spec slots with checkpoint tensors by order and shape (see the module docstring)."""
    entries = [(k, tuple(v.shape)) for k, v in tensors.items()]
    if [s.key for s in slots] == [k for k, _ in entries] or len(slots) == len(entries):
        report = LoadReport()
        for slot, (key, shape) in zip(slots, entries):
            if slot.shape != shape:
                if transfer:
                    break
                raise load_error(
                    f"checkpoint tensor '{key}' has shape {list(shape)}, but the spec's '{slot.key}' "
                    f"({slot.where()}) has {list(slot.shape)}",
                    "load with transfer=True (--transfer) to take only the tensors that fit", slot.loc, code="E503")
            report.loaded.append((slot.key, key, shape))
        else:
            return report
    if not transfer:
        raise load_error(f"the checkpoint has {len(entries)} tensors, the spec {len(slots)}: they do not "
                     "correspond one to one", "load with transfer=True (--transfer) to take only the tensors "
                     "that fit, or check that the checkpoint is this model's", code="E503")
    return _align(slots, entries)


def _align(slots: list[Slot], entries: list[tuple[str, tuple[int, ...]]]) -> LoadReport:
    """The longest order-preserving shape match, refused when it is not unique."""
    n, m = len(slots), len(entries)
    # length[i][j]: best over slots[i:], entries[j:]; ways capped at 2 (only "one" or "several" matters).
    length = [[0] * (m + 1) for _ in range(n + 1)]
    ways = [[1] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = length[i], length[i + 1]
        wrow, wbelow = ways[i], ways[i + 1]
        for j in range(m - 1, -1, -1):
            skip_slot, skip_entry = below[j], row[j + 1]
            best = max(skip_slot, skip_entry)
            take = below[j + 1] + 1 if slots[i].shape == entries[j][1] else -1
            best = max(best, take)
            count = 0
            if take == best:
                count += wbelow[j + 1]
            if skip_slot == best:
                count += wbelow[j]
            if skip_entry == best:
                count += wrow[j + 1]
            if skip_slot == best and skip_entry == best:
                count -= ways[i + 1][j + 1] if below[j + 1] == best else 0
            row[j], wrow[j] = best, min(count, 2)
    if length[0][0] == 0:
        raise load_error("no checkpoint tensor fits the spec: not one shape agrees in order",
                     "is the checkpoint for this architecture?", code="E503")
    if ways[0][0] > 1:
        raise load_error("the checkpoint fits the spec in more than one way (same-shaped tensors could go to "
                     "different layers): refusing to guess", "make the changed layers' shapes differ from "
                     "their neighbours', or load a checkpoint with the spec's own keys", code="E503")
    report = LoadReport()
    used = [False] * m
    i = j = 0
    while i < n and j < m:
        if slots[i].shape == entries[j][1] and length[i][j] == length[i + 1][j + 1] + 1:
            report.loaded.append((slots[i].key, entries[j][0], entries[j][1]))
            used[j] = True
            i, j = i + 1, j + 1
        elif length[i + 1][j] == length[i][j]:
            report.new.append(slots[i])
            i += 1
        else:
            j += 1
    report.new += slots[i:]
    report.unused = [e for e, u in zip(entries, used) if not u]
    return report
