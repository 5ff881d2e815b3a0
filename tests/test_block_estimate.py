"""A block's size estimate bounds the number of nodes it expands to.

The expander checks ``max_nodes`` against each layer's estimate *before* expanding it
(``repeat: 1000000000`` must cost nothing), so an estimate below the real node count would let a
spec far past the budget it was meant to stop. (The budget also counts each extra input of a
merge; residual's and se's estimates leave their merge's second input out, which the check made
as each node is added catches.) Built-in blocks are drawn with random arguments by the same
drawers as the other property tests (tests/strategies.py), so a new block is covered once it has
a drawer.

User blocks are estimated from their body as written, once per block and call depth; a
``repeat`` given by a parameter counts once there and is estimated again, substituted, when the
layer itself expands, so the bound holds for bodies whose repeats are numbers (those below).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import BUILTIN_DRAWERS, USER_BLOCKS, input_shapes, spec_text, user

import specdsl
from specdsl.api import parse
from specdsl.blocks.engine import Expander
from specdsl.blocks.registry import BLOCKS
from specdsl.errors import SpecError

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sizes(layer: Any, shape: tuple[int, ...], blocks: dict[str, Any]) -> tuple[int, int] | None:
    """(estimate, node count) of a one-layer spec; None where specdsl rejects it."""
    data: dict[str, Any] = {"model": "probe", "input": list(shape), "layers": [layer]}
    if blocks:
        data["blocks"] = blocks
    text = spec_text(data)
    try:
        model = specdsl.load(text, warn=False)  # random shapes: dropped edge pixels are not the point
    except SpecError:
        return None
    estimate = Expander(parse(text)).estimate(data["layers"][0])
    return estimate, len(model.graph.nodes) - 1  # the input node is not the layer's


def _repeated(draw: Any, layer: Any) -> Any:
    """The layer, sometimes repeated (the estimate multiplies; a copy that does not fit is rejected)."""
    count = draw(st.sampled_from([1, 1, 2, 3]))
    if count == 1:
        return layer
    return ({layer: None} if isinstance(layer, str) else dict(layer)) | {"repeat": count}


def test_every_built_in_block_is_drawn() -> None:
    assert set(BUILTIN_DRAWERS) == set(BLOCKS)


@pytest.mark.parametrize("kind", sorted(BLOCKS))
@SETTINGS
@given(data=st.data())
def test_built_in_estimate_bounds_its_expansion(kind: str, data: st.DataObject) -> None:
    drawer, needs_space = BUILTIN_DRAWERS[kind]
    shape = data.draw(input_shapes((1, 2, 3) if needs_space else (0, 1, 2, 3)))
    layer = _repeated(data.draw, drawer(data.draw, shape))
    sizes = _sizes(layer, shape, {})
    assume(sizes is not None)
    assert sizes is not None
    estimate, nodes = sizes
    assert estimate >= nodes, f"{kind} estimated {estimate}, expanded to {nodes} nodes: {layer}"


@SETTINGS
@given(data=st.data())
def test_user_block_estimate_bounds_its_expansion(data: st.DataObject) -> None:
    shape = data.draw(input_shapes((1, 2, 3)))
    name, layer = user(data.draw, shape)
    layer = _repeated(data.draw, layer)
    sizes = _sizes(layer, shape, {name: USER_BLOCKS[name]})
    assume(sizes is not None)
    assert sizes is not None
    estimate, nodes = sizes
    assert estimate >= nodes, f"{name} estimated {estimate}, expanded to {nodes} nodes: {layer}"


def test_nested_blocks_are_bounded_through_their_bodies() -> None:
    """A user block whose body holds built-in blocks and calls another user block, called twice."""
    blocks = {
        "unit": USER_BLOCKS["unit"],
        "pair": {"params": {"c": "int"},
                 "layers": [{"unit": {"c": "c"}}, {"se": {"channels": "c", "reduction": 1}},
                            {"dense": {"n": 2, "growth": 2}}, {"unit": {"c": "c", "stride": 2}}]},
    }
    sizes = _sizes({"pair": {"c": 4}, "repeat": 2}, (3, 16, 16), blocks)
    assert sizes is not None
    estimate, nodes = sizes
    assert estimate >= nodes
