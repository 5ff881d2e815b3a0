"""The shape of one catalogue entry (its own module, so the range files need not import the package)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Entry:
    """One code. ``example`` is spec text (DSL or YAML, told apart as ``specdsl.load`` does) that
    produces the code when given to ``specdsl.load`` with ``load`` as keyword arguments (``budgets``
    as a mapping of budget names), unless ``unchecked`` says why it cannot be run that way
    (a command line, a checkpoint file, the language server)."""

    code: str
    title: str
    explanation: str
    example: str
    fix: str
    load: Mapping[str, Any] = field(default_factory=dict)
    unchecked: str | None = None
    retired: str | None = None  # why the code is no longer raised; its number is never reused

    @property
    def severity(self) -> str:
        return "warning" if self.code.startswith("W") else "error"
