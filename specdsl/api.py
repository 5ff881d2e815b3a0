"""The Python API: ``specdsl.load`` gives a checked model with all its figures."""

from __future__ import annotations

import gc
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specdsl.blocks.engine import expand_with_shapes
from specdsl.budgets import DEFAULT as DEFAULT_BUDGETS
from specdsl.budgets import MAX_FILE_BYTES, Budgets, over, raise_hint
from specdsl.errors import Diagnostic, SourceLoc, SpecError
from specdsl.ir import Graph, Node
from specdsl.ops.rule import fmt_shape
from specdsl.passes.analysis import Analysis, NodeFigures, Totals, analyze

__all__ = ["MAX_FILE_BYTES", "Budgets", "Model", "load", "parse", "read_data", "read_source"]


@dataclass
class Model:
    """A checked model: its graph, per-node figures, totals and diagnostics."""

    graph: Graph
    analysis: Analysis
    sources: dict[str, str]
    file: str

    @property
    def name(self) -> str:
        return self.graph.model

    @property
    def totals(self) -> Totals:
        return self.analysis.totals

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.analysis.diagnostics

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def node(self, key: str) -> tuple[Node, NodeFigures]:
        """A node and its figures, by name or path (``'features'`` or ``'layers[3]'``)."""
        for node in self.graph.nodes:
            if key in (node.name, node.path):
                return node, self.analysis.figures[node.index]
        raise KeyError(key)

    def shape(self, key: str) -> tuple[int, ...] | None:
        return self.node(key)[1].shape

    def rows(self) -> list[tuple[Node, NodeFigures]]:
        return list(zip(self.graph.nodes, self.analysis.figures, strict=True))

    def to_json(self) -> dict[str, Any]:
        from specdsl.render.json import model_json

        return model_json(self)

    def __repr__(self) -> str:
        t = self.totals
        return (f"<Model {self.name}: input {fmt_shape(self.graph.input_shape)}, "
                f"{len(self.graph.nodes) - 1} nodes, {t.params:,} params, {t.macs:,} MACs>")


def _too_large(size: str, limit: int) -> SpecError:
    return SpecError([Diagnostic(
        "error", "E110", f"spec file is too large: {size} bytes; {over('max_file_bytes', limit)}",
        hint="specs are small; generate repeated layers with blocks and repeat; " + raise_hint("max_file_bytes"))])


# Zoo names are plain file stems: nothing with a path separator reaches the zoo folder.
_ZOO_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\Z")


def read_source(source: str | os.PathLike[str], budgets: Budgets | None = None) -> tuple[str, str]:
    """(file label, text) for a path, a zoo name, or spec text itself."""
    from specdsl import zoo

    limit = (budgets or DEFAULT_BUDGETS).max_file_bytes
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source):
        path = Path(source)
        try:
            is_file = path.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte, ...
            is_file = False
        if is_file:
            try:
                with path.open("rb") as fh:  # read at most one byte past the budget, whatever stat says
                    data = fh.read(limit + 1)
            except OSError as exc:
                raise SpecError([Diagnostic(
                    "error", "E100", f"cannot read {source}: {exc.strerror or exc}")]) from None
            if len(data) > limit:
                try:
                    size = f"{path.stat().st_size:,}"
                except OSError:
                    size = f"more than {limit:,}"
                raise _too_large(size, limit)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = data.count(b"\n", 0, exc.start) + 1
                col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
                raise SpecError([Diagnostic(
                    "error", "E111", f"{source} is not UTF-8 text (byte {exc.start})",
                    SourceLoc(str(source), line, col, line, col + 1),
                    hint="save the file as UTF-8")]) from None
            # Universal newlines, as text-mode reading gives.
            return str(source), text.replace("\r\n", "\n").replace("\r", "\n")
        found = zoo.find(str(source)) if _ZOO_NAME.match(str(source)) else None
        if found is not None:
            return found
        guess = None
        from specdsl.errors import did_you_mean

        guess = did_you_mean(str(source), zoo.names())
        raise SpecError([Diagnostic(
            "error", "E100", f"no such file or zoo model: {source}",
            hint=f"did you mean '{guess}'?" if guess else "run `specdsl zoo` to list the bundled models")])
    text = str(source)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate: no file could hold it
        line = text.count("\n", 0, exc.start) + 1
        col = exc.start - (text.rfind("\n", 0, exc.start) + 1) + 1
        raise SpecError([Diagnostic(
            "error", "E111", f"the spec text is not valid Unicode (character {exc.start})",
            SourceLoc("<string>", line, col, line, col + 1))]) from None
    if size > limit:
        raise _too_large(f"{size:,}", limit)
    return "<string>", text


DSL_SUFFIXES = (".cnn",)


def is_dsl(text: str, file: str) -> bool:
    """The .cnn suffix selects the DSL; spec text without a file name is sniffed."""
    if file.endswith(DSL_SUFFIXES):
        return True
    if file.endswith((".yaml", ".yml")):
        return False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.split()[0] in ("model", "input", "block", "layers", "dtype") and ":" not in \
                stripped.split()[0]
    return False


def read_data(text: str, file: str = "<string>", budgets: Budgets | None = None) -> tuple[Any, Any]:
    """Text -> (plain data, SourceMap) with the right front end."""
    b = budgets or DEFAULT_BUDGETS
    if is_dsl(text, file):
        from specdsl.frontend.dsl import load_dsl

        return load_dsl(text, file, budgets=b)
    from specdsl.frontend.yaml import load_yaml

    return load_yaml(text, file, max_depth=b.max_depth)


def parse(text: str, file: str = "<string>", budgets: Budgets | None = None) -> Any:
    """Text -> validated Spec, choosing the front end by file name."""
    from specdsl.schema.document import validate_document

    data, smap = read_data(text, file, budgets)
    return validate_document(data, smap)


def load(
    source: str | os.PathLike[str],
    *,
    input: tuple[int, ...] | list[int] | None = None,
    batch: int = 1,
    strict: bool = True,
    budgets: Budgets | None = None,
) -> Model:
    """Parse, build and analyse a spec given as a path, a zoo name or YAML text.

    With ``strict`` (the default) any error raises :class:`SpecError`; otherwise
    the model comes back with its diagnostics and whatever figures could be made.
    ``budgets`` bounds what the spec may cost (file size, nesting, tokens, nodes,
    parameters, activations; see :mod:`specdsl.budgets`); the defaults are generous.
    """
    budgets = budgets or DEFAULT_BUDGETS
    file, text = read_source(source, budgets)
    # The pipeline allocates many small, acyclic objects (one SourceLoc per value);
    # the cyclic collector only adds superlinear pauses here, so it waits until we are done.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(file, text, input, batch, strict, budgets)
    finally:
        if gc_was_enabled:
            gc.enable()


def _load(file: str, text: str, input: tuple[int, ...] | list[int] | None, batch: int,
          strict: bool, budgets: Budgets) -> Model:
    from specdsl.budgets import check_totals

    sources = {file: text}
    spec = parse(text, file, budgets)
    if input is not None:
        spec.input = tuple(int(d) for d in input)
    try:
        graph, shapes, rfs = expand_with_shapes(spec, max_nodes=budgets.max_nodes, max_depth=budgets.max_depth)
    except SpecError as exc:
        exc.sources.update(sources)
        raise
    analysis = analyze(graph, batch=batch, shapes=shapes, rfs=rfs)
    model = Model(graph, analysis, sources, file)
    analysis.diagnostics.extend(check_totals(model, budgets))
    if strict and any(d.is_error for d in analysis.diagnostics):
        raise SpecError(analysis.diagnostics, sources)
    return model
