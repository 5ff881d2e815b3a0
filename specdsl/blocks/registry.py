"""The built-in blocks: one table, one row per block, each defined in its own module.

Adding a block: write ``specdsl/blocks/<name>.py`` with its Args model, ``expand`` and
``estimate`` functions and ``RULE = BlockRule(...)``, then add the module below.
The expander, the schema (block names, user-block bodies) and the JSON Schema read this table.
"""

from __future__ import annotations

from specdsl.blocks import dense, fractal, inception, residual, se, stage, transition
from specdsl.blocks.base import BlockRule

# In this order in messages that list user-block bodies ("layers, residual, dense, ...").
BLOCKS: dict[str, BlockRule] = {
    rule.name: rule for rule in (residual.RULE, dense.RULE, inception.RULE, fractal.RULE, transition.RULE, stage.RULE,
                                   se.RULE)
}

# Those a user-defined block's body may be (`blocks: {b: {residual: ...}}`), besides `layers`.
BODY_BLOCKS = tuple(name for name, rule in BLOCKS.items() if rule.body)
# Blocks written with `{ ... }` bodies in the DSL: name -> (the unnamed section, the named ones).
BLOCK_SECTIONS = {name: (rule.sections[0], rule.sections[1:]) for name, rule in BLOCKS.items() if rule.sections}
# Argument keys that hold layers in some built-in block (`body`, `shortcut`, `base`, ...).
LAYER_KEYS = frozenset(key for rule in BLOCKS.values() for key in rule.sections)

__all__ = ["BLOCKS", "BLOCK_SECTIONS", "BODY_BLOCKS", "LAYER_KEYS", "BlockRule"]
