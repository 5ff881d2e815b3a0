"""Import writes a container as a built-in block's call (`se`, `dense`, `transition`) exactly where the
block's own rule expands that call to the container's nodes (specdsl.lift.builtins.expands_to): the
rule under specdsl.blocks is the one place that says what a built-in is. The oracle is the zoo's
lifting (tests/lift_oracle.py) and recovery's own node-for-node check."""

from __future__ import annotations

from lift_oracle import lifted

import specdsl
from specdsl.lift.structure import recover
from specdsl.render.printer import to_dsl

SPEC = """model builtins
input [8, 16, 16]

block relu_gated() {
    gap(keepdims=true) as avgpool
    conv(2, k=1) as fc1
    relu as activation
    conv(8, k=1) as fc2
    relu as scale_activation
    [@input, @scale_activation] -> mul
}

block unbiased() {
    gap(keepdims=true) as avgpool
    conv(2, k=1, bias=false) as fc1
    relu as activation
    conv(8, k=1) as fc2
    sigmoid as scale_activation
    [@input, @scale_activation] -> mul
}

layers {
    se(channels=8, squeeze=2, act=silu, gate=hardsigmoid) as se1
    relu_gated as se2
    unbiased as se3
    dense(n=2, growth=4, bottleneck=null, drop=0.1) as block1
    dense(n=2, growth=4) as block2
    transition(out=6) as trans
}
"""


def test_built_ins_are_read_back_by_what_their_rules_expand_to() -> None:
    text = to_dsl(recover(lifted(specdsl.load(SPEC, warn=False).graph)))
    calls = [line.strip() for line in text.splitlines()]
    for call in ("se(channels=8, squeeze=2, act=silu, gate=hardsigmoid) as se1",
                 "dense(n=2, growth=4, bottleneck=null, drop=0.1) as block1",
                 "dense(n=2, growth=4) as block2", "transition(out=6) as trans"):
        assert call in calls, text
    # Named as an se's modules, but a gate the rule has not (relu) and an fc1 without bias: not an se.
    assert "relu as scale_activation" in calls and "conv(2, k=1, bias=false) as fc1" in calls, text
    assert sum(line.startswith("se(") for line in calls) == 1, text
