"""The Python API: ``specdsl.load`` gives a checked model with all its figures."""

from __future__ import annotations

import gc
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specdsl.blocks.engine import expand_with_shapes
from specdsl.budgets import DEFAULT as DEFAULT_BUDGETS
from specdsl.budgets import MAX_FILE_BYTES, Budgets, over, raise_hint
from specdsl.errors import Diagnostic, SourceLoc, SpecError, SpecWarning
from specdsl.ir import Graph, Node, module_name
from specdsl.ops.rule import fmt_shape
from specdsl.passes.analysis import Analysis, NodeFigures, Totals, analyze
from specdsl.passes.diagnostics import dedupe, polish
from specdsl.passes.usage import unused_nodes, unused_params

__all__ = ["MAX_FILE_BYTES", "Budgets", "Model", "Summary", "load", "parse", "read_data", "read_source"]


class Summary(str):
    """The summary table as text; shown as itself (not as a quoted string) by a REPL or a notebook."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


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
        """A node and its figures, by name, path or module name (``'features'``, ``'layer1[0].conv1'``,
        ``'layer1.0.conv1'``: a state_dict key's module)."""
        for node in self.graph.nodes:
            if key in (node.name, node.path):
                return node, self.analysis.figures[node.index]
        for node in self.graph.nodes:
            if not node.is_input and module_name(node.path) == key:
                return node, self.analysis.figures[node.index]
        raise KeyError(key)

    def shape(self, key: str) -> tuple[int, ...] | None:
        return self.node(key)[1].shape

    def rows(self) -> list[tuple[Node, NodeFigures]]:
        return list(zip(self.graph.nodes, self.analysis.figures, strict=True))

    def train_memory(self, batch: int | None = None, optimizer: str = "sgd", amp: str | None = None) -> Any:
        """The predicted peak of one training step on a GPU and its parts (``TrainMemory``);
        ``optimizer``: sgd | momentum | adam | adamw; ``amp``: None, "bf16" or "fp16" autocast."""
        from specdsl.passes.train_memory import predict

        return predict(self, self.totals.batch if batch is None else batch, optimizer, amp)

    def to_json(self) -> dict[str, Any]:
        from specdsl.render.json import model_json

        return model_json(self)

    def summary(self, depth: int | None = None, all_ops: bool = False) -> Summary:
        """The table `specdsl check` prints: one row per layer, then the totals.

        ``depth`` folds rows nested deeper into their block; ``all_ops`` adds the torchinfo-like count.
        """
        from specdsl.render.table import table

        return Summary(table(self, depth=depth, full_ops=all_ops))

    def _repr_html_(self) -> str:
        """Jupyter: the summary table as HTML."""
        from specdsl.render.html import model_html

        return model_html(self)

    def _repr_svg_(self) -> str | None:
        """Jupyter: the diagram, when Graphviz's `dot` is installed (None lets Jupyter fall back)."""
        from specdsl.render.dot import to_dot
        from specdsl.render.graphviz import DotFailed, find_dot, render

        if find_dot() is None:
            return None
        try:
            return render(to_dot(self), "svg").decode("utf-8")
        except DotFailed:
            return None

    def __repr__(self) -> str:
        t = self.totals
        return (f"<Model {self.name}: input {fmt_shape(self.graph.input_shape)}, "
                f"{len(self.graph.nodes) - 1} nodes, {t.params:,} params, {t.macs:,} MACs>")


def _too_large(size: str, limit: int, file: str | None = None) -> SpecError:
    # Unlocated (nothing was read to point into), so the message names the file.
    what = f"spec file {file}" if file else "spec text"
    return SpecError([Diagnostic(
        "error", "E110", f"{what} is too large: {size} bytes; {over('max_file_bytes', limit)}",
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
                raise _too_large(size, limit, str(source))
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
        variant = zoo.find_variant(str(source)) if _ZOO_NAME.match(str(source)) else None
        if variant is not None:  # the family file holding this variant (load() also picks the variant)
            return variant[0], variant[1]
        kind = _not_a_file(path)
        if kind is not None:  # a FIFO would block the read, a device never end: say what it is instead
            raise SpecError([Diagnostic("error", "E100", f"cannot read {source}: it is {kind}, not a spec file",
                                        hint="give the path of a .yaml or .cnn file")])
        from specdsl.errors import did_you_mean

        guess = did_you_mean(str(source), zoo.all_names())
        raise SpecError([Diagnostic(
            "error", "E100", f"no such file or zoo model: {source}",
            hint=f"did you mean '{guess}'?" if guess else "run `specdsl zoo` to list the bundled models")])
    text = str(source)
    try:
        n_bytes = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate: no file could hold it
        line = text.count("\n", 0, exc.start) + 1
        col = exc.start - (text.rfind("\n", 0, exc.start) + 1) + 1
        raise SpecError([Diagnostic(
            "error", "E111", f"the spec text is not valid Unicode (character {exc.start})",
            SourceLoc("<string>", line, col, line, col + 1))]) from None
    if n_bytes > limit:
        raise _too_large(f"{n_bytes:,}", limit)
    return "<string>", text


def _not_a_file(path: Path) -> str | None:
    """What a path that exists but is no regular file is ("a directory", "a FIFO", ...), or None."""
    import stat

    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


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


def parse(text: str, file: str = "<string>", budgets: Budgets | None = None, choice: Any = None) -> Any:
    """Text -> validated Spec, choosing the front end by file name (``choice``: a ParamChoice,
    the variant and parameter values of a family; by default the spec's defaults)."""
    from specdsl.schema.document import validate_document

    data, smap = read_data(text, file, budgets)
    return validate_document(data, smap, choice)


def load(
    source: str | os.PathLike[str],
    *,
    input: tuple[int, ...] | list[int] | None = None,
    batch: int = 1,
    strict: bool = True,
    budgets: Budgets | None = None,
    warn: bool = True,
    variant: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Model:
    """Parse, build and analyse a spec given as a path, a zoo name or YAML text.

    With ``strict`` (the default) any error raises :class:`SpecError`; otherwise
    the model comes back with its diagnostics and whatever figures could be made.
    ``budgets`` bounds what the spec may cost (file size, nesting, tokens, nodes,
    parameters, activations; see :mod:`specdsl.budgets`); the defaults are generous.
    With ``warn`` (the default) each warning is also issued as a :class:`specdsl.SpecWarning`
    through :mod:`warnings` (the command line prints them itself and passes False).
    ``variant`` picks a member of a family file and ``params`` sets model parameters
    (``load("efficientnet_b0", params={"width": 1.2})``); a zoo variant name picks its own.
    """
    from specdsl.schema.params import ParamChoice

    budgets = budgets or DEFAULT_BUDGETS
    hit = _zoo_variant(source) if variant is None else None
    if hit is not None:
        file, text, variant = hit
    else:
        file, text = read_source(source, budgets)
    choice = ParamChoice(variant, dict(params or {}), from_text=False)
    # The pipeline allocates many small, acyclic objects (one SourceLoc per value);
    # the cyclic collector only adds superlinear pauses here, so it waits until we are done.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        model = _load(file, text, input, batch, strict, budgets, choice)
    finally:
        if gc_was_enabled:
            gc.enable()
    if warn:
        for diag in model.warnings:
            warnings.warn(SpecWarning(diag, model.sources), stacklevel=2)
    return model


def _zoo_variant(source: Any) -> tuple[str, str, str] | None:
    """A zoo variant name (``efficientnet_b3``) that is neither a file nor a zoo file's stem."""
    from specdsl import zoo

    if not isinstance(source, str) or not _ZOO_NAME.match(source) or zoo.find(source) is not None:
        return None
    try:
        if Path(source).is_file():
            return None
    except (OSError, ValueError):
        return None
    return zoo.find_variant(source)


_AXES = {1: "[F]", 2: "[C, L]", 3: "[C, H, W]", 4: "[C, D, H, W]"}


def _input_override(spec: Any, input: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """``input`` in place of the spec's input shape, which it must match in rank: a [C, H, W] network
    given two numbers would silently become a Conv1d one."""
    shape, declared = tuple(int(d) for d in input), tuple(spec.input)
    if len(shape) == len(declared):
        return shape
    keep = ",".join(str(d) for d in declared)
    def values(n: int) -> str:
        return f"{n} value{'s' if n != 1 else ''}"

    raise SpecError([Diagnostic(
        "error", "E306",
        f"an input shape given for the spec's (--input) keeps its rank, {values(len(declared))} "
        f"{_AXES[len(declared)]}; received {fmt_shape(shape)}, {values(len(shape))}, for {fmt_shape(declared)}",
        spec.smap.value_loc(("input",)) if spec.smap else None,
        hint=f"give {values(len(declared))}, channels first (e.g. {keep}); a network for "
             f"{_AXES.get(len(shape), 'such')} inputs is a spec whose input has {values(len(shape))}")])


def _load(file: str, text: str, input: tuple[int, ...] | list[int] | None, batch: int,
          strict: bool, budgets: Budgets, choice: Any = None) -> Model:
    from specdsl.budgets import check_totals

    sources = {file: text}
    dsl = is_dsl(text, file)

    def in_dsl(f: str) -> bool:  # the syntax hints are written in, per file a diagnostic points at
        return dsl if f == file else f.endswith(DSL_SUFFIXES)

    try:
        spec = parse(text, file, budgets, choice)
        if input is not None:
            spec.input = _input_override(spec, input)
        graph, shapes, rfs = expand_with_shapes(spec, max_nodes=budgets.max_nodes, max_depth=budgets.max_depth)
    except SpecError as exc:
        exc.sources.update(sources)
        exc.diagnostics[:] = polish(exc.diagnostics, in_dsl)
        if not dsl:
            from specdsl.frontend.yaml_layout import explain_layout

            exc.diagnostics[:] = [explain_layout(d, text) if d.loc and d.loc.file == file else d
                                  for d in exc.diagnostics]
        raise
    analysis = analyze(graph, batch=batch, shapes=shapes, rfs=rfs)
    analysis.diagnostics.extend(dedupe([*unused_params(spec), *unused_nodes(graph, analysis.figures)]))
    analysis.diagnostics[:] = polish(analysis.diagnostics, in_dsl)
    model = Model(graph, analysis, sources, file)
    analysis.diagnostics.extend(check_totals(model, budgets))
    if strict and any(d.is_error for d in analysis.diagnostics):
        raise SpecError(analysis.diagnostics, sources)
    return model
