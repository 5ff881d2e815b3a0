"""The sweep's replay of a recorded block call at other input shapes (specdsl.blocks.traced): only where
every fact its blocks logged of the shapes they read holds again, and then with the figures load gives."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

import specdsl
from specdsl.blocks import memo as memo_module
from specdsl.blocks.memo import _same
from specdsl.blocks.traced import OPAQUE, Traced, holds
from specdsl.sweep import point_figures, sweep

# Whether `b`'s shortcut adds depends on the resolution: its body pools to 8 x 8 whatever comes in.
POOLED = """model pooled(r=16)
input [3, r, r]
block b(c: int) = residual(shortcut=identity_if_same) {
    conv(c, k=3, pad=1)
    adaptive_avgpool(8)
}
layers {
    conv(8, k=1)
    b(8)
    b(8)
    gap
    linear(10)
}
"""


def _loaded(source: str, values: dict[str, Any]) -> dict[str, Any]:
    m = specdsl.load(source, params=values, warn=False)
    return point_figures(m.analysis, len(m.graph.nodes))


def _count_holds(patch: pytest.MonkeyPatch) -> list[bool]:
    seen: list[bool] = []

    def counting(*args: Any) -> bool:
        found = holds(*args)
        seen.append(found)
        return found

    patch.setattr(memo_module, "holds", counting)
    return seen


def test_a_call_whose_shortcut_follows_the_resolution_is_expanded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """At r=12 the record made at r=16 (an add: 8x8 in, 8x8 out) does not hold (12x12 in): expanded, no add."""
    seen = _count_holds(monkeypatch)
    points = sweep(POOLED, {"r": [16, 12, 8, 20, 16]}, jobs=1)
    assert False in seen
    for p in points:
        assert p.ok and p.figures == _loaded(POOLED, p.values), p.values


def test_efficientnet_rows_replay_at_other_resolutions(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _count_holds(monkeypatch)
    axes = {"depth": [1.0, 1.2], "resolution": [224, 260, 240, 232]}
    points = sweep("efficientnet", axes, jobs=1)
    assert seen.count(True) >= 10
    for p in points:
        assert p.figures == _loaded("efficientnet", p.values), p.values


def test_a_traced_shape_logs_what_is_read_of_it() -> None:
    log: list[tuple[Any, ...]] = []
    t = Traced((8, 16, 16), 5, log)
    other = Traced((8, 16, 16), 7, log)
    assert t == other and t != None and t[0] == 8 and len(t) == 3 and t  # noqa: E711 (what a block may write)
    assert None not in (t,)
    assert log == [("eq", 5, ("q", 7), True), ("eq", 5, ("v", None), False), ("item", 5, 0, 8), ("len", 5, 3),
                   ("len", 5, 3), ("eq", 5, ("v", None), False)]
    for use in (list, tuple, hash, str, lambda s: s[1:], lambda s: s < (9,), lambda s: 16 in s, max):
        log.clear()
        use(t)
        assert OPAQUE in log, use


def test_facts_hold_only_of_the_same_answers() -> None:
    facts = (("none", ("in", 0), False), ("eq", ("in", 0), ("q", ("node", 1)), True), ("item", ("node", 1), 0, 8),
             ("len", ("in", 0), 3))
    same = {("in", 0): (8, 32, 32), ("node", 1): (8, 32, 32)}
    assert holds(facts, same.__getitem__, lambda q: None)
    assert not holds(facts, {**same, ("node", 1): (8, 16, 16)}.__getitem__, lambda q: None)
    assert not holds(facts, {**same, ("in", 0): None}.__getitem__, lambda q: None)
    assert not holds((("item", ("in", 0), 1, 32),), {("in", 0): (8, 16, 16)}.__getitem__, lambda q: None)
    assert not holds((OPAQUE,), same.__getitem__, lambda q: None)
    rf = ((3, 1, 1),)
    assert holds((("rf", ("in", 0), (tuple, rf)),), same.__getitem__, lambda q: rf)
    assert not holds((("rf", ("in", 0), (tuple, rf)),), same.__getitem__, lambda q: None)


class _Pair(NamedTuple):
    a: Any
    b: Any


def test_interned_values_match_in_type_throughout() -> None:
    assert _same(_Pair(1, (2, 3.0)), _Pair(1, (2, 3.0)))
    assert not _same(_Pair(1, 2), (1, 2))
    assert not _same((1, 2), (1.0, 2)) and not _same((1,), (True,))
    assert not _same((0.0,), (-0.0,))
    assert not _same([1, {"k": 1}], [1, {"k": 1.0}])
