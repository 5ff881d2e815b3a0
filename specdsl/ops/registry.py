"""One contract for every per-op table: the op rules, each backend's lowerings, the saved tensors.

An ``OpTable`` is a mapping from op name to that table's entry, plus what it takes to say where
a missing entry goes: the table's variable name and the file that defines it. Every table raises
the same :class:`MissingEntry` for an op it lacks, naming the file to edit, and answers the
same coverage question (:meth:`OpTable.coverage`), which the tests ask of every table, so a new
op cannot reach a backend without its entry.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class MissingEntry(KeyError):
    """An op without an entry in a per-op table. A ``KeyError``, so ``except KeyError`` still
    holds; its text says which table, which op and which file to edit."""

    def __init__(self, op: str, table: OpTable[Any], context: str | None = None) -> None:
        super().__init__(f"op '{op}' has no {table.what}" + (f" ({context})" if context else "")
                         + f": add an entry for '{op}' to {table.variable} in {table.source}")
        self.op = op
        self.table_name = table.variable
        self.source = table.source

    def __str__(self) -> str:
        return str(self.args[0])


def source_of(module_name: str) -> str:
    """The path of the module's file as a reader finds it: relative to the folder that holds the
    ``specdsl`` package (a checkout's root: ``backends/torch/lowerings.py``; an install's
    site-packages: ``specdsl/backends/torch/lowerings.py``)."""
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if not file:
        return module_name.replace(".", "/") + ".py"
    here = Path(file).resolve()
    package_root = Path(__file__).resolve().parents[2]  # the folder holding specdsl/
    try:
        return here.relative_to(package_root).as_posix()
    except ValueError:
        return here.as_posix()


class OpTable(dict[str, V], Generic[V]):
    """A per-op table: a dict (lookups stay as fast as a dict's) whose missing key raises
    :class:`MissingEntry`. ``what`` reads in a sentence ("PyTorch lowering"); ``variable`` and
    ``module`` name where its entries are written (``where`` overrides the file, for a table
    gathered from several files)."""

    def __init__(self, what: str, variable: str, module: str, entries: Mapping[str, V] | None = None,
                 where: str | None = None) -> None:
        super().__init__(entries or {})
        self.what = what
        self.variable = variable
        self.module = module
        self.where = where

    @property
    def source(self) -> str:
        return self.where or source_of(self.module)

    def __missing__(self, op: str) -> V:
        raise MissingEntry(op, self)

    def __repr__(self) -> str:
        return f"OpTable({self.variable} in {self.module}: {len(self)} entries)"

    def add(self, op: str, entry: V) -> None:
        """A new entry; the same op twice is a programming error."""
        if op in self:
            raise ValueError(f"op '{op}' has two entries in {self.variable} ({self.source})")
        self[op] = entry

    def coverage(self, ops: Iterable[str]) -> str | None:
        """None when the table has exactly the ops ``ops``; else a message naming the missing and
        the extra ops and the file to edit."""
        wanted = set(ops)
        missing, extra = sorted(wanted - set(self)), sorted(set(self) - wanted)
        if not missing and not extra:
            return None
        parts = []
        if missing:
            parts.append(f"ops with no {self.what}: {', '.join(missing)}")
        if extra:
            parts.append(f"entries for ops the op table does not have: {', '.join(extra)}")
        return f"{self.variable} in {self.source}: " + "; ".join(parts)
