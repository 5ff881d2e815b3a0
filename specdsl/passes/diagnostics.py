"""Diagnostics the passes raise at a node, their de-duplication, and their final polish for the reader."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from specdsl.errors import Diagnostic, Severity
from specdsl.ir import Node


def located(node: Node, code: str, message: str, hint: str | None, fieldname: str | None,
            severity: Severity = "error") -> Diagnostic:
    """A diagnostic at the node's text, or at the argument ``fieldname`` when it was written."""
    loc = node.arg_locs.get(fieldname, node.loc) if fieldname else node.loc
    return Diagnostic(severity, code, message, loc, hint=hint, notes=node.notes, path=node.path)


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


def polish(diags: list[Diagnostic], is_dsl: Callable[[str], bool]) -> list[Diagnostic]:
    """What the user reads, once every pass has spoken: one W301 per layer, no E203 beside the
    did-you-mean that explains it, a sibling op suggested for a rank mismatch, and hints in the
    syntax of the file each diagnostic points at (``is_dsl(file)``)."""
    from specdsl.passes.voice import to_dsl, to_yaml

    out: list[Diagnostic] = []
    for d in _merge_axes(_drop_explained(diags)):
        hint = d.hint if d.hint is not None or d.code != "E306" else _sibling_hint(d.message)
        if hint and d.loc is not None:
            hint = to_dsl(hint) if is_dsl(d.loc.file) else to_yaml(hint)
        out.append(d if hint == d.hint else replace(d, hint=hint))
    return out


_MISSING = re.compile(r"is missing the required key '(\w+)'")
_RANK = re.compile(r"^(\w+) needs an input of shape [^;]*; received \[([^\]]*)\]")
_AXIS = re.compile(r"(at the end of |^pad )(\w+)( are never read| to a size)")


def _drop_explained(diags: list[Diagnostic]) -> list[Diagnostic]:
    """`kernel=3` gives "unknown key 'kernel', did you mean 'k'?": the missing 'k' is the same mistake."""
    suggested = {((d.path or "").rpartition(".")[0], d.hint) for d in diags if d.code == "E201"}

    def explained(d: Diagnostic) -> bool:
        m = _MISSING.search(d.message) if d.code == "E203" else None
        return m is not None and (d.path or "", f"did you mean '{m.group(1)}'?") in suggested

    return [d for d in diags if not explained(d)]


def _merge_axes(diags: list[Diagnostic]) -> list[Diagnostic]:
    """W301 for H and for W of one layer become one warning naming both axes."""
    out: list[Diagnostic] = []
    for d in diags:
        prev = out[-1] if out else None
        if (prev is not None and d.code == prev.code == "W301" and d.loc == prev.loc and d.path == prev.path
                and _AXIS.sub(r"\1*\3", d.message) == _AXIS.sub(r"\1*\3", prev.message)):
            axis = _AXIS.search(d.message)
            if axis is not None:
                out[-1] = replace(prev, message=_AXIS.sub(rf"\1\2 and {axis.group(2)}\3", prev.message),
                                  hint=_AXIS.sub(rf"\1\2 and {axis.group(2)}\3", prev.hint) if prev.hint else None)
                continue
        out.append(d)
    return out


def _sibling_hint(message: str) -> str | None:
    """`dropout2d` on [C, L]: the op of the same family made for that rank (`dropout1d`)."""
    from specdsl.ops import OPS

    m = _RANK.match(message)
    if m is None or m.group(1) not in OPS:
        return None
    rule = OPS[m.group(1)]
    rank = len([p for p in m.group(2).split(",") if p.strip()]) - 1
    stem = rule.name.rstrip("0123456789d")
    for name, other in OPS.items():
        if other.family == rule.family and other.ranks and rank in other.ranks and name.rstrip("0123456789d") == stem:
            return f"use {name} for this input"
    return None
