"""A sweep's layers as substituted and parsed, found again by the values of the names they mention
(used by ``specdsl.blocks.memo.CallMemo`` for the engine's layers and conditions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from specdsl.blocks.expr import identifiers

# Layers substituted and parsed kept by a sweep (LayerCache): beyond this many, the rest are parsed as usual.
MAX_LAYERS = 8192
_ABSENT = object()


def _strings(raw: Any) -> list[str]:
    """Every string in a raw layer (keys aside): what substitution may read the environment for."""
    out: list[str] = []
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


class LayerCache:
    """A sweep's layers as substituted and parsed (``specdsl.schema.layer.parse_layer``), so a layer whose
    text and the values of the names it mentions are those of an earlier point's is not substituted,
    evaluated and validated again. Keyed by the layer's source path, with each name it mentions (a whole
    string, or an identifier of an expression: what ``specdsl.blocks.substitute`` looks up) present or not
    and its value with its type; an entry keeps the layer as written and is used only for an equal one.
    Only layers that substituted and parsed without a diagnostic are kept: an error is reported afresh."""

    def __init__(self, limit: int = MAX_LAYERS) -> None:
        self.limit = limit
        self.entries: dict[Any, tuple[Any, Any, Any]] = {}  # key -> (as written, substituted, LayerSpec)
        self.reads: dict[Any, tuple[Any, tuple[str, ...]]] = {}  # source path -> (as written, names read)
        self.pending: tuple[Any, Any] | None = None  # (key, as written) of the last miss, for keep()

    def get(self, raw: Any, src: Any, env: Mapping[str, Any]) -> tuple[Any, Any] | None:
        """(the substituted layer, its LayerSpec) for ``raw`` in ``env``, or None (then keep() may follow)."""
        self.pending = None
        read = self.reads.get(src)
        if read is None or (read[0] is not raw and read[0] != raw):
            names: dict[str, None] = {}
            for text in _strings(raw):
                names[text] = None
                names.update(dict.fromkeys(identifiers(text)))
            read = self.reads[src] = (raw, tuple(names))
        values = []
        for name in read[1]:
            value = env.get(name, _ABSENT)
            values.append((type(value), value))
        key = (src, tuple(values))
        try:
            found = self.entries.get(key)
        except TypeError:
            return None  # an unhashable value (a list): substituted as usual
        if found is not None and (found[0] is raw or found[0] == raw):
            return found[1], found[2]
        if len(self.entries) < self.limit:
            self.pending = (key, raw)
        return None

    def keep(self, substituted: Any, spec: Any) -> None:
        """Record the layer last missed by get(), now substituted and parsed without a diagnostic."""
        if self.pending is not None:
            key, raw = self.pending
            self.entries[key] = (raw, substituted, spec)
            self.pending = None
