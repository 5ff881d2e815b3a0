"""Figures upstream of an error: what can still be known about a document that does not expand.

The pipeline stops at the first stage that fails, so one unknown op hides every shape and every
shape error of the model. The model's layers run one after another and a layer's shapes depend
only on the layers before it, so the layers before the first failing one are analysed on their
own: their shapes, figures and shape errors are exactly those the whole document will have once
the later error is fixed. A user block whose body fails is left out, and the cut moves to the
first layer that calls it. Nothing downstream of the cut is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specdsl.budgets import Budgets
from specdsl.errors import Diagnostic, SourceLoc, SpecError
from specdsl.ir import Graph
from specdsl.passes.figures import NodeFigures
from specdsl.source import SourceMap

__all__ = ["Upstream", "copy_data", "upstream"]

_TRIES = 4  # a block calling a failing block fails in turn: each try may find one more


@dataclass
class Upstream:
    """The graph and figures of the model's first `cut` layers, and the errors found in them."""

    graph: Graph
    figures: list[NodeFigures]
    cut: int
    errors: list[Diagnostic]


def copy_data(data: Any) -> Any:
    """A structural copy of plain data (dicts, lists, scalars): validation may fill in defaults,
    and the features read the data as the user wrote it. Much faster than copy.deepcopy."""
    if isinstance(data, dict):
        return {k: copy_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [copy_data(v) for v in data]
    return data


def upstream(data: Any, smap: SourceMap, diagnostics: list[Diagnostic], file: str,
             budgets: Budgets) -> Upstream | None:
    """The analysis of the layers before the first failing one; None where there are none."""
    from specdsl.blocks.engine import expand_with_shapes
    from specdsl.passes.analysis import analyze
    from specdsl.schema.document import validate_document

    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        return None
    cut, broken, diags = len(data["layers"]), frozenset[str](), diagnostics
    for attempt in range(_TRIES):
        new_cut, new_broken = _cut(data, smap, diags, file, cut, broken)
        if new_cut <= 0 or (attempt and (new_cut, new_broken) == (cut, broken)):
            return None  # nothing before the error, or a try that failed and taught nothing new
        cut, broken = new_cut, new_broken
        # The named outputs may name layers past the cut: the prefix's last layer is its output.
        trial = {k: v for k, v in data.items() if k != "outputs"}
        trial["layers"] = data["layers"][:cut]
        if broken:
            trial["blocks"] = {k: v for k, v in data["blocks"].items() if k not in broken}
        try:
            graph, shapes, rfs = expand_with_shapes(validate_document(copy_data(trial), smap),
                                                    max_nodes=budgets.max_nodes, max_depth=budgets.max_depth)
        except SpecError as exc:
            diags = list(exc.diagnostics)
            continue
        analysis = analyze(graph, shapes=shapes, rfs=rfs)
        # Only errors: a warning such as "output never used" may be an effect of the cut.
        known = {(d.code, d.loc) for d in diagnostics}
        return Upstream(graph, analysis.figures, cut,
                        [d for d in analysis.diagnostics if d.is_error and (d.code, d.loc) not in known])
    return None


def _cut(data: dict[str, Any], smap: SourceMap, diags: list[Diagnostic], file: str, cut: int,
         broken: frozenset[str]) -> tuple[int, frozenset[str]]:
    """The number of model layers before the first that an error is in or calls a failing block."""
    blocks: dict[str, Any] = data["blocks"] if isinstance(data.get("blocks"), dict) else {}
    found = set(broken)
    for d in diags:
        if not d.is_error:
            continue
        loc = d.loc
        if loc is None or loc.file != file:
            return 0, frozenset(found)
        if _inside(loc, smap.values.get(("layers",))):
            # The first layer that ends at or after the error: the one it is in (an `[@ref] ->`
            # written before a layer is part of it, and before its span).
            cut = min(cut, next((i for i in range(cut) if _ends_after(smap.values.get(("layers", i)), loc)), cut))
            continue
        block = next((b for b in blocks if _inside(loc, smap.values.get(("blocks", b)))), None)
        if block is None:
            return 0, frozenset(found)  # the header (input, params, ...): nothing can be analysed
        found.add(block)
    for i, raw in enumerate(data["layers"][:cut]):
        if any(_mentions(raw, b) for b in found):
            return i, frozenset(found)
    return cut, frozenset(found)


def _inside(loc: SourceLoc, span: SourceLoc | None) -> bool:
    if span is None:
        return False
    end = (span.end_line or span.line, span.end_col or span.col + 1)
    return (span.line, span.col) <= (loc.line, loc.col) <= end


def _ends_after(span: SourceLoc | None, loc: SourceLoc) -> bool:
    return span is not None and (span.end_line or span.line, span.end_col or span.col + 1) >= (loc.line, loc.col)


def _mentions(raw: Any, name: str) -> bool:
    """Whether a layer as written calls the block `name`, at any depth (inside a built-in block too)."""
    if isinstance(raw, str):
        return raw == name
    if isinstance(raw, dict):
        return any(k == name or _mentions(v, name) for k, v in raw.items())
    if isinstance(raw, list):
        return any(_mentions(v, name) for v in raw)
    return False
