"""The Python API: ``specdsl.load`` gives a checked model with all its figures."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specdsl.analysis import Analysis, NodeFigures, Totals, analyze
from specdsl.errors import Diagnostic, SpecError
from specdsl.expand import expand
from specdsl.ir import Graph, Node
from specdsl.ops._base import fmt_shape

MAX_FILE_BYTES = 4 * 1024 * 1024


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
        from specdsl.report import model_json

        return model_json(self)

    def __repr__(self) -> str:
        t = self.totals
        return (f"<Model {self.name}: input {fmt_shape(self.graph.input_shape)}, "
                f"{len(self.graph.nodes) - 1} nodes, {t.params:,} params, {t.macs:,} MACs>")


def read_source(source: str | os.PathLike[str]) -> tuple[str, str]:
    """(file label, text) for a path, a zoo name, or spec text itself."""
    from specdsl import zoo

    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source):
        path = Path(source)
        if path.is_file():
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise SpecError([Diagnostic(
                    "error", "E110", f"spec file is too large: {size:,} bytes (limit {MAX_FILE_BYTES:,})",
                    hint="specs are small; generate repeated layers with blocks and repeat")])
            try:
                return str(source), path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise SpecError([Diagnostic(
                    "error", "E111", f"{source} is not UTF-8 text (byte {exc.start})")]) from None
        found = zoo.find(str(source))
        if found is not None:
            return found
        guess = None
        from specdsl.errors import did_you_mean

        guess = did_you_mean(str(source), zoo.names())
        raise SpecError([Diagnostic(
            "error", "E100", f"no such file or zoo model: {source}",
            hint=f"did you mean '{guess}'?" if guess else "run `specdsl zoo` to list the bundled models")])
    return "<string>", str(source)


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


def read_data(text: str, file: str = "<string>") -> tuple[Any, Any]:
    """Text -> (plain data, SourceMap) with the right front end."""
    if is_dsl(text, file):
        from specdsl.dsl_front import load_dsl

        return load_dsl(text, file)
    from specdsl.yaml_front import load_yaml

    return load_yaml(text, file)


def parse(text: str, file: str = "<string>") -> Any:
    """Text -> validated Spec, choosing the front end by file name."""
    from specdsl.schema import validate_document

    data, smap = read_data(text, file)
    return validate_document(data, smap)


def load(
    source: str | os.PathLike[str],
    *,
    input: tuple[int, ...] | list[int] | None = None,
    batch: int = 1,
    strict: bool = True,
) -> Model:
    """Parse, build and analyse a spec given as a path, a zoo name or YAML text.

    With ``strict`` (the default) any error raises :class:`SpecError`; otherwise
    the model comes back with its diagnostics and whatever figures could be made.
    """
    file, text = read_source(source)
    # The pipeline allocates many small, acyclic objects (one SourceLoc per value);
    # the cyclic collector only adds superlinear pauses here, so it waits until we are done.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(file, text, input, batch, strict)
    finally:
        if gc_was_enabled:
            gc.enable()


def _load(file: str, text: str, input: tuple[int, ...] | list[int] | None, batch: int,
          strict: bool) -> Model:
    sources = {file: text}
    spec = parse(text, file)
    if input is not None:
        spec.input = tuple(int(d) for d in input)
    try:
        graph = expand(spec)
    except SpecError as exc:
        exc.sources.update(sources)
        raise
    analysis = analyze(graph, batch=batch)
    model = Model(graph, analysis, sources, file)
    if strict and any(d.is_error for d in analysis.diagnostics):
        raise SpecError(analysis.diagnostics, sources)
    return model
