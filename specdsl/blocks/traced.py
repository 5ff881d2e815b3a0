"""What an expansion read of the shapes and receptive fields it asked for: the facts that let a sweep
replay a recorded block call at another input shape (another resolution) instead of expanding it again.

A block call's nodes (ops, arguments, wiring) are a function of its arguments and of what its built-in
blocks read of the shapes and fields they ask for (``Expander.shape`` and ``Expander.rf``: a residual's
`identity_if_same` compares two shapes, an SE block reads its input's channels). In a sweep those answers
are handed out as :class:`Traced` shapes, which log each use as a fact: whether the shape failed (None),
its rank, an item read (``shape[0]``), an equality test and its outcome; a field is logged whole. A use
whose outcome such a fact cannot restate (iterating, hashing, ordering, slicing, printing) makes the
record *opaque*. A recorded call whose facts all hold again at another input shape makes the same nodes
(the same ops, arguments and wiring); only their shapes, fields and figures differ, which the replay
recomputes (``specdsl.blocks.memo``).

A fact names the node it asked about by index: while expanding, the graph's; in a record, ``("in", k)``
for the call's input k or ``("node", j)`` for its node j.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OPAQUE = ("opaque",)


class Traced(tuple):  # a shape: a tuple of ints, logging what is read of it
    """A node's shape whose every use is logged (as a fact) in ``log``. It behaves as the tuple it is."""

    q: int
    log: list[tuple[Any, ...]]

    def __new__(cls, shape: tuple[int, ...], q: int, log: list[tuple[Any, ...]]) -> Traced:
        self = super().__new__(cls, shape)
        self.q = q
        self.log = log
        return self

    def __eq__(self, other: object) -> bool:
        if other is None:
            result = False  # what `shape == None` gives a plain tuple
        elif isinstance(other, tuple):
            result = tuple.__eq__(self, other)
        else:
            self.log.append(OPAQUE)
            return tuple.__eq__(self, other)
        self.log.append(("eq", self.q, ("q", other.q) if isinstance(other, Traced) else ("v", other), result))
        return result

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __getitem__(self, index: Any) -> Any:
        value = tuple.__getitem__(self, index)
        self.log.append(("item", self.q, index, value) if isinstance(index, int) else OPAQUE)
        return value

    def __len__(self) -> int:
        n = tuple.__len__(self)
        self.log.append(("len", self.q, n))
        return n

    def __hash__(self) -> int:
        self.log.append(OPAQUE)
        return tuple.__hash__(self)


def _opaque(name: str) -> Callable[..., Any]:
    method = getattr(tuple, name)

    def opaque(self: Traced, *args: Any, **kwargs: Any) -> Any:
        self.log.append(OPAQUE)
        return method(self, *args, **kwargs)

    opaque.__name__ = name
    return opaque


# Every other use of a tuple: its outcome is not restated by a fact, so the record is not replayed elsewhere.
for _name in ("__iter__", "__reversed__", "__contains__", "__lt__", "__le__", "__gt__", "__ge__", "__add__",
              "__mul__", "__rmul__", "__repr__", "__str__", "__format__", "__reduce__", "__reduce_ex__",
              "__getnewargs__", "__copy__", "__deepcopy__", "count", "index"):
    if hasattr(tuple, _name):
        setattr(Traced, _name, _opaque(_name))


def holds(facts: tuple[tuple[Any, ...], ...], shape_of: Callable[[Any], Any], rf_of: Callable[[Any], Any]) -> bool:
    """Whether every fact (recorded as a call expanded) holds of the shapes and fields ``shape_of`` and
    ``rf_of`` give for its query (``("in", k)`` or ``("node", j)``)."""
    for fact in facts:
        kind = fact[0]
        if kind == "none":
            if (shape_of(fact[1]) is None) != fact[2]:
                return False
        elif kind == "eq":
            other = fact[2]
            value = shape_of(other[1]) if other[0] == "q" else other[1]
            if (shape_of(fact[1]) == value) != fact[3]:
                return False
        elif kind == "item":
            shape = shape_of(fact[1])
            if shape is None or not -len(shape) <= fact[2] < len(shape) or shape[fact[2]] != fact[3]:
                return False
        elif kind == "len":
            shape = shape_of(fact[1])
            if shape is None or len(shape) != fact[2]:
                return False
        elif kind == "rf":
            rf = rf_of(fact[1])
            if type(rf) is not fact[2][0] or rf != fact[2][1]:
                return False
        else:
            return False  # opaque
    return True
