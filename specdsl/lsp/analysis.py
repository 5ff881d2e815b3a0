"""One document's analysis: the `check` pipeline run on editor text, keeping what each stage made.

`specdsl.api.load` hands back only a finished model; an editor also wants the plain data and the
SourceMap of a spec that does not expand, so the stages run here one by one (the same functions,
in the same order, with the same budgets) and each result is kept for the features to read.
Nothing here knows about the protocol: positions are SourceLocs, 1-based, in code points.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass, field
from typing import Any

from specdsl.api import is_dsl, read_data
from specdsl.budgets import Budgets, over, raise_hint
from specdsl.errors import Diagnostic, SourceLoc, SpecError
from specdsl.ir import Graph
from specdsl.lsp.upstream import copy_data, upstream
from specdsl.passes.figures import NodeFigures
from specdsl.source import SourceMap

__all__ = ["LSP_BUDGETS", "DocAnalysis", "analyse", "is_spec_yaml"]

# Above `check`'s defaults (128 KiB, 50,000 tokens, 10,000 nodes): a spec being written may outgrow
# what a finished one is allowed, and an analysis runs beside the server's event loop and is
# stopped when its text goes stale (server.py), so a large document costs latency, not
# responsiveness. They bound one analysis to about 2 s on a loaded 2-core machine (a node costs ~50 us:
# 20,000 nodes ~1 s, 100,000 nodes ~5 s), so a 100,000-node document gets the max_nodes diagnostic
# (E330, estimated before expanding: at once) instead of seconds of work after every edit (issue 30).
LSP_BUDGETS = Budgets(max_file_bytes=1024 * 1024, max_tokens=200_000, max_nodes=20_000)


@dataclass
class DocAnalysis:
    """What the pipeline made of one version of a document; later stages are None where it stopped."""

    file: str
    text: str
    dsl: bool
    diagnostics: list[Diagnostic] = field(default_factory=list)
    data: Any = None
    smap: SourceMap | None = None
    graph: Graph | None = None
    figures: list[NodeFigures] | None = None
    # Where the whole document does not expand: how many of the model's layers, before the first
    # that fails, the graph and figures cover (specdsl.lsp.upstream); None when they cover all.
    upstream_of: int | None = None

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


def analyse(text: str, file: str, budgets: Budgets = LSP_BUDGETS) -> DocAnalysis:
    """Run parse, schema, expansion, analysis and the budget checks; never raises for a user's text."""
    result = DocAnalysis(file, text, is_dsl(text, file))
    # As in specdsl.api.load: the pipeline makes many small acyclic objects, and the cyclic
    # collector would only add pauses while it runs.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _run(result, budgets)
    except SpecError as exc:
        result.diagnostics = list(exc.diagnostics)
        _upstream(result, budgets)
    except RecursionError:
        result.diagnostics = [Diagnostic("error", "E409", "the document nests too deeply to analyse",
                                         hint="split the model into blocks")]
    finally:
        if gc_was_enabled:
            gc.enable()
    return result


def _run(result: DocAnalysis, budgets: Budgets) -> None:
    from specdsl.api import Model
    from specdsl.blocks.engine import expand_with_shapes
    from specdsl.budgets import check_totals
    from specdsl.passes.analysis import analyze
    from specdsl.schema.document import validate_document

    try:
        size = len(result.text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate (JSON can carry one): no file could hold it
        line = result.text.count("\n", 0, exc.start) + 1
        col = exc.start - (result.text.rfind("\n", 0, exc.start) + 1) + 1
        raise SpecError([Diagnostic("error", "E111", f"the text is not valid Unicode (character {exc.start})",
                                    SourceLoc(result.file, line, col, line, col + 1))]) from None
    if size > budgets.max_file_bytes:
        raise SpecError([Diagnostic(
            "error", "E110",
            f"spec file is too large: {size:,} bytes; {over('max_file_bytes', budgets.max_file_bytes)}",
            hint="specs are small; generate repeated layers with blocks and repeat; " + raise_hint("max_file_bytes"))])
    result.data, result.smap = read_data(result.text, result.file, budgets)
    spec = validate_document(copy_data(result.data), result.smap)
    graph, shapes, rfs = expand_with_shapes(spec, max_nodes=budgets.max_nodes, max_depth=budgets.max_depth)
    analysis = analyze(graph, shapes=shapes, rfs=rfs)
    analysis.diagnostics.extend(check_totals(Model(graph, analysis, {result.file: result.text}, result.file), budgets))
    result.graph, result.figures, result.diagnostics = graph, analysis.figures, analysis.diagnostics


def _upstream(result: DocAnalysis, budgets: Budgets) -> None:
    if result.smap is None:
        return
    try:
        found = upstream(result.data, result.smap, result.diagnostics, result.file, budgets)
    except Exception:
        return  # the upstream figures are extra: whatever stops them, the document's own diagnostics stand
    if found is not None:
        result.graph, result.figures, result.upstream_of = found.graph, found.figures, found.cut
        result.diagnostics = result.diagnostics + found.errors


# A YAML file is a spec when its leading comments say so (`# specdsl`, or a yaml-language-server
# modeline naming a specdsl schema), or when its top level has `model:` with a name written on the
# same line (not a mapping or list) *and* `layers:`, `input:` or `blocks:`. `model:` alone is the
# commonest key of ML configs (Hydra, Lightning), so it decides nothing by itself.
_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:(?:[ \t]+|$)(.*)$", re.M)
_MODELINE = re.compile(r"#\s*(?:specdsl\b|yaml-language-server:\s*\$schema=\S*specdsl)")


def is_spec_yaml(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped != "---":
            break
        if _MODELINE.match(stripped):
            return True
    keys: dict[str, str] = {}
    for m in _TOP_KEY.finditer(text):
        keys.setdefault(m.group(1), m.group(2))
    model = re.sub(r"(^|\s)#.*", "", keys.get("model", "")).strip()
    return bool(model) and model[0] not in "{[|>&*!" and any(k in keys for k in ("layers", "input", "blocks"))
