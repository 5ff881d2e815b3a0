"""Diagnostics the passes raise at a node, and their de-duplication."""

from __future__ import annotations

from specdsl.errors import Diagnostic
from specdsl.ir import Node


def located(node: Node, code: str, message: str, hint: str | None, fieldname: str | None,
            severity: str = "error") -> Diagnostic:
    """A diagnostic at the node's text, or at the argument ``fieldname`` when it was written."""
    loc = node.arg_locs.get(fieldname, node.loc) if fieldname else node.loc
    return Diagnostic(severity, code, message, loc, hint=hint, notes=node.notes, path=node.path)  # type: ignore[arg-type]


def dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    """A block called many times repeats its problems; report each once."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for d in diags:
        key = (d.code, d.message, d.loc)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
