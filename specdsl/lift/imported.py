"""What an import gives back (``specdsl.from_torch``, ``specdsl.from_onnx``), and how its failures read.

Shared by the torch and the ONNX capture: both end in spec data, its text, the loaded model and,
where torch could run both, the round trip's figures. A node no op maps is E510, listed one
diagnostic per node with its module path, what it was and the source line; a recovered spec that is
not the model is E511, naming the first difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from specdsl.errors import Diagnostic, SourceLoc, SpecError
from specdsl.lift.graph import LiftedGraph, Unmapped

UNMAPPED = "E510"
NOT_THE_MODEL = "E511"


@dataclass
class Imported:
    """An imported model: the spec as data and as DSL text, the checked ``Model``, the lifted graph it
    came from, and (with verification) the round trip's figures (``params``, ``buffers``, ``macs``,
    ``max_rel_error``)."""

    text: str
    data: dict[str, Any]
    model: Any
    graph: LiftedGraph
    round_trip: Any = None
    unmapped: list[Unmapped] = field(default_factory=list)

    def save(self, path: str) -> None:
        """Write the spec text, all at once (the old file stays whole if the write fails)."""
        from specdsl.atomic import replace_file

        replace_file(path, self.text)

    def __repr__(self) -> str:
        return f"<Imported {self.graph.name}: {len(self.graph.nodes) - 1} nodes, {len(self.text.splitlines())} lines>"


def spec_of(graph: LiftedGraph, *, partial: bool, what: str, where: str) -> Imported:
    """The spec of a captured graph, recovered, printed and checked: the part of import that is the same
    for every capture. Unmapped nodes are an error naming each (``what``: "a traced", "an ONNX"), or with
    ``partial`` located '# TODO' comments and no model; a graph recovery cannot write is E511 (``where``)."""
    from specdsl.api import load
    from specdsl.lift.structure import RecoveryError, recover
    from specdsl.render.printer import to_dsl

    if graph.unmapped and not partial:
        raise unmapped_error(graph.unmapped, what)
    try:  # with partial, the nodes no op maps are passed over (each reads through to its input)
        data = recover(replace(graph, unmapped=[]))
    except RecoveryError as exc:
        raise not_the_model(str(exc), where) from None
    text = to_dsl(data)
    if graph.unmapped:
        return Imported(with_todos(text, graph.unmapped), data, None, graph, None, list(graph.unmapped))
    return Imported(text, data, load(text, warn=False), graph)


def _loc(source: str | None) -> SourceLoc | None:
    """``file.py:123`` as a location in the model's own source."""
    if not source or ":" not in source:
        return None
    file, _, line = source.rpartition(":")
    return SourceLoc(file, int(line), 1, int(line), 1) if line.isdigit() else None


def unmapped_error(unmapped: list[Unmapped], what: str) -> SpecError:
    """E510, one diagnostic per node no op maps (the whole list, so one run shows all the work)."""
    diagnostics = [Diagnostic(
        "error", UNMAPPED,
        f"{what} node has no specdsl op: {u.origin} at '{u.path or '<root>'}'; received: {u.reason}",
        _loc(u.source),
        hint="--partial writes the spec with such nodes as '# TODO' comments (check then fails on them)")
        for u in unmapped]
    return SpecError(diagnostics)


def not_the_model(problem: str, where: str) -> SpecError:
    """E511: the spec recovered from the model is not the model."""
    return SpecError([Diagnostic(
        "error", NOT_THE_MODEL, f"the imported spec is not the {where} model: {problem}",
        hint="this is a gap in import: please report it with the model; --no-verify writes the spec anyway")])


TODO_LAYER = "unmapped_todo"


def with_todos(text: str, unmapped: list[Unmapped]) -> str:
    """The spec of a model whose unmapped nodes were passed over (``--partial``), with a '# TODO' comment
    above the line of each one's nearest named container, and a layer no op has at the start of the
    layers, so that `check` fails (E204) until each is written by hand: never a silently other model."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("layers {")), len(lines) - 1)
    notes: dict[int, list[str]] = {}
    for u in unmapped:
        where = f" ({u.source})" if u.source else ""
        note = f"# TODO(import): {u.origin} at '{u.path or '<root>'}'{where} has no specdsl op: {u.reason}"
        notes.setdefault(_line_of(lines, u.path, start), []).append(note)
    out: list[str] = []
    for i, line in enumerate(lines):
        indent = line[:len(line) - len(line.lstrip())] or "    "
        out += [indent + n for n in notes.get(i, [])]
        out.append(line)
        if i == start:
            out.append(f"    {TODO_LAYER}  # {len(unmapped)} node(s) below have no specdsl op: write them, then "
                       "remove this line")
    return "\n".join(out) + "\n"


def _line_of(lines: list[str], path: str, start: int) -> int:
    """The line naming the deepest container of ``path`` (``as layer1``), after the layers' start."""
    parts = path.split(".") if path else []
    for k in range(len(parts), 0, -1):
        name = parts[k - 1]
        for i in range(start + 1, len(lines)):
            if re.search(rf"\bas \"?{re.escape(name)}\"?(\s|$)", lines[i]):
                return i
    return start + 1
