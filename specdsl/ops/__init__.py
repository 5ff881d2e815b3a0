"""The op catalogue: one table, one row per op."""

from __future__ import annotations

from specdsl.ops import (
    activation,
    channels,
    condconv,
    conv,
    fixed,
    layout,
    local,
    merge,
    norm,
    norm_evo,
    norm_global,
    pool,
    reduce,
    reshape,
    shape,
)
from specdsl.ops.registry import OpTable
from specdsl.ops.rule import OpRule

# An op's rule lives in the RULES list of the module for its kind (conv.py, activation.py, ...).
OPS: OpTable[OpRule] = OpTable("rule", "RULES", __name__, where="a module of specdsl/ops/ (e.g. activation.py)")
ALIASES: dict[str, str] = {}

for _module in (conv, pool, norm, norm_global, norm_evo, activation, shape, merge, channels, layout, local, reshape,
                fixed, reduce, condconv):
    for _rule in _module.RULES:
        OPS.add(_rule.name, _rule)
        for _alias in _rule.aliases:
            ALIASES[_alias] = _rule.name


# Arguments each op (and alias) takes without names, derived from the rules.
POSITIONAL: dict[str, tuple[str, ...]] = {
    name: OPS[ALIASES.get(name, name)].positional for name in (*OPS, *ALIASES)
    if OPS[ALIASES.get(name, name)].positional
}


def lookup(name: str) -> OpRule | None:
    return OPS.get(ALIASES.get(name, name))


__all__ = ["ALIASES", "OPS", "POSITIONAL", "OpRule", "lookup"]
