"""Matching a checkpoint's tensors to a spec's: shared by the PyTorch and NumPy backends.

By name (the default): a spec's state_dict keys are its module names (issue 24; the zoo uses
torchvision's), so a checkpoint's keys must be the spec's, with the same shapes, in any order
(safetensors sorts them). Strict: a missing, unexpected or mis-shaped tensor is an error naming
the key, the spec line and the shapes. With ``transfer=True`` every tensor whose name and shape
agree is kept, the rest reported: checkpoint tensors skipped, spec tensors re-initialised.

By position (``match="position"``, asked for): for checkpoints whose names differ. The spec's
tensors and the checkpoint's, each in module order, must agree in shape one by one; with
``transfer`` the longest order-preserving run of shape matches is taken, which must be the only
one — where two alignments fit equally well the load is refused, not guessed.
No torch here: a checkpoint is any mapping of names to objects with a ``.shape``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from specdsl.errors import Diagnostic, SourceLoc, SpecError

# Header metadata key holding the tensors' module order in files we write (safetensors sorts keys).
ORDER_KEY = "specdsl.order"
# How many problems a strict load by name lists before summing up the rest.
MAX_LISTED = 8
MatchMode = Literal["name", "position"]


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
    that got none (re-initialised: new or re-shaped layers) and the checkpoint's that went unused
    (skipped); ``mode`` says how tensors were matched."""

    loaded: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)
    new: list[Slot] = field(default_factory=list)
    unused: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    mode: MatchMode = "name"

    @property
    def complete(self) -> bool:
        return not self.new and not self.unused

    def table(self) -> str:
        how = "by name" if self.mode == "name" else "by position (names not compared, as asked)"
        lines = [f"kept {len(self.loaded)} tensors, matched {how}"]
        if self.new:
            layers = sorted({s.path for s in self.new}, key=[s.path for s in self.new].index)
            lines.append(f"re-initialised (not in the checkpoint, or shaped differently): {len(self.new)} tensors "
                         f"in {len(layers)} layer(s)")
            lines += [f"  {s.key:<40} {list(s.shape)}  {s.where()}" for s in self.new]
        if self.unused:
            lines.append(f"skipped checkpoint tensors: {len(self.unused)}")
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


def match(slots: list[Slot], tensors: Mapping[str, Any], transfer: bool, mode: MatchMode = "name") -> LoadReport:
    """Pair spec slots with checkpoint tensors, by name or by position (see the module docstring)."""
    if mode == "position":
        return match_position(slots, tensors, transfer)
    if mode != "name":
        raise load_error(f"match is 'name' or 'position'; received {mode!r}", code="E503")
    report = LoadReport()
    problems: list[Diagnostic] = []
    for slot in slots:
        value = tensors.get(slot.key)
        if value is None:
            report.new.append(slot)
            problems.append(Diagnostic(
                "error", "E503", f"the checkpoint has no tensor '{slot.key}' {list(slot.shape)} ({slot.where()})",
                slot.loc))
        elif tuple(value.shape) != slot.shape:
            report.new.append(slot)
            report.unused.append((slot.key, tuple(value.shape)))
            problems.append(Diagnostic(
                "error", "E503", f"checkpoint tensor '{slot.key}' has shape {list(value.shape)}, but the spec's "
                f"({slot.where()}) has {list(slot.shape)}", slot.loc))
        else:
            report.loaded.append((slot.key, slot.key, slot.shape))
    known = {s.key for s in slots}
    for key, value in tensors.items():
        if key not in known:
            report.unused.append((key, tuple(value.shape)))
            problems.append(Diagnostic("error", "E503", f"checkpoint tensor '{key}' {list(value.shape)} is not "
                                       "one of the spec's", None))
    if problems and not transfer:
        if not report.loaded:
            raise load_error(
                f"no checkpoint tensor name is one of the spec's ({len(tensors)} in the checkpoint, "
                f"{len(slots)} in the spec; the spec's first: '{slots[0].key if slots else ''}', the checkpoint's "
                f"first: '{next(iter(tensors), '')}')", "name the spec's layers as the checkpoint's modules "
                "(`as conv1`), or load by position with match='position' (--match position)", code="E503")
        shown = problems[:MAX_LISTED]
        hint = ("load with transfer=True (--transfer) to keep the tensors that fit and re-initialise the rest, "
                "or match='position' (--match position) for a checkpoint whose names differ")
        shown[-1] = Diagnostic(shown[-1].severity, shown[-1].code, shown[-1].message, shown[-1].loc, hint=hint,
                               notes=(f"and {len(problems) - len(shown)} more",) if len(problems) > len(shown) else ())
        raise SpecError(shown, {})
    return report


def match_position(slots: list[Slot], tensors: Mapping[str, Any], transfer: bool) -> LoadReport:
    """Pair spec slots with checkpoint tensors by order and shape, names not compared."""
    entries = [(k, tuple(v.shape)) for k, v in tensors.items()]
    if len(slots) == len(entries):
        report = LoadReport(mode="position")
        for slot, (key, shape) in zip(slots, entries):
            if slot.shape != shape:
                if transfer:
                    break
                raise load_error(
                    f"checkpoint tensor '{key}' has shape {list(shape)}, but the spec's '{slot.key}' "
                    f"({slot.where()}) has {list(slot.shape)} (matching by position)",
                    "load with transfer=True (--transfer) to take only the tensors that fit", slot.loc, code="E503")
            report.loaded.append((slot.key, key, shape))
        else:
            return report
    if not transfer:
        raise load_error(f"the checkpoint has {len(entries)} tensors, the spec {len(slots)}: they do not "
                     "correspond one to one (matching by position)", "load with transfer=True (--transfer) to take "
                     "only the tensors that fit, or check that the checkpoint is this model's", code="E503")
    # A tensor whose shape the other side lacks can match nothing: dropping those first (linear time)
    # leaves exactly the same alignments, and the table only the tensors that could pair up.
    common = {s.shape for s in slots} & {shape for _, shape in entries}
    slots_left = [s for s in slots if s.shape in common]
    entries_left = [e for e in entries if e[1] in common]
    _check_alignment_work(slots_left, entries_left)
    aligned = _align(slots_left, entries_left)
    taken = {spec_key for spec_key, _, _ in aligned.loaded}
    used = {ckpt_key for _, ckpt_key, _ in aligned.loaded}
    return LoadReport(aligned.loaded, [s for s in slots if s.key not in taken],
                      [e for e in entries if e[0] not in used], mode="position")


# The alignment compares every spec tensor with every checkpoint tensor (a table of n x m cells, ~0.7 us
# and ~40 bytes each): bounded before the table is built, so a small checkpoint of thousands of tensors
# cannot cost minutes and gigabytes. The zoo's largest by-position transfer needs under 1,000,000.
MAX_ALIGN_CELLS = 2_000_000


def _check_alignment_work(slots: list[Slot], entries: list[tuple[str, tuple[int, ...]]]) -> None:
    """Refuse, in linear time, an alignment whose table would exceed MAX_ALIGN_CELLS."""
    cells = len(slots) * len(entries)
    if cells > MAX_ALIGN_CELLS:
        raise load_error(f"aligning {len(slots):,} spec tensors with {len(entries):,} checkpoint tensors of "
                         f"the same shapes by position would compare {cells:,} pairs (at most {MAX_ALIGN_CELLS:,})",
                         "load by name (the default --match name, with --transfer), or trim the checkpoint to "
                         "the model's own tensors", code="E503")


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
