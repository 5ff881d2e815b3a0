"""Formatting a DSL document: what `specdsl fmt` writes, or None where fmt would refuse."""

from __future__ import annotations

from specdsl.budgets import Budgets
from specdsl.errors import SpecError

__all__ = ["format_dsl"]


def format_dsl(text: str, file: str, budgets: Budgets) -> str | None:
    """The canonical layout of DSL text; None unless it parses, validates and expands.

    As `specdsl fmt`: only structurally valid text is formatted (shapes may still be wrong), so
    the printer never sees data the language does not define.
    """
    from specdsl.blocks.engine import expand
    from specdsl.frontend.dsl import parse_dsl
    from specdsl.lsp.upstream import copy_data
    from specdsl.render.printer import to_dsl
    from specdsl.schema.document import validate_document

    try:
        parsed = parse_dsl(text, file, budgets=budgets)
        expand(validate_document(copy_data(parsed.data), parsed.smap), max_nodes=budgets.max_nodes,
               max_depth=budgets.max_depth)
    except SpecError:
        return None
    return to_dsl(parsed.data, parsed.smap, parsed.comments)
