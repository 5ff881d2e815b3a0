"""Where every value of a spec came from.

Both front ends produce plain data (dicts, lists, scalars) plus a SourceMap
keyed by path tuples such as ``("layers", 4, "conv", "k")``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from specdsl.errors import SourceLoc

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceMap:
    """Immutable once a front end hands it out: its maps are read-only copies of what it built."""

    file: str
    text: str
    values: Mapping[PathKey, SourceLoc] = field(default_factory=dict)
    keys: Mapping[PathKey, SourceLoc] = field(default_factory=dict)
    # Raw text of plain (unquoted) scalars, to quote what the user typed.
    raw: Mapping[PathKey, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("values", "keys", "raw"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def __deepcopy__(self, memo: dict[int, Any]) -> SourceMap:
        return self  # nothing in it can change (and a mapping proxy cannot be copied)

    def value_loc(self, path: Sequence[str | int]) -> SourceLoc | None:
        """Location of the value at ``path``, or of its longest known prefix."""
        p = tuple(path)
        while True:
            loc = self.values.get(p)
            if loc is not None:
                return loc
            if not p:
                return None
            p = p[:-1]

    def key_loc(self, path: Sequence[str | int]) -> SourceLoc | None:
        """Location of the key that names ``path`` (falls back to the value)."""
        return self.keys.get(tuple(path)) or self.value_loc(path)


def format_path(path: Sequence[str | int]) -> str:
    """``("layers", 4, "conv")`` -> ``layers[4].conv``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
