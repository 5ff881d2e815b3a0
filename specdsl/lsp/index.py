"""Where each layer of a document is, and which graph nodes it became.

A *site* is one layer entry as written (its SourceMap path and spans); the graph's nodes are
tied back to sites by what the expander recorded: an op's nodes carry the layer's location, a
built-in block's own primitives (a residual's `add`) carry the location of the block's name,
and every node made by a user-block call carries the note "while expanding block ... called at
FILE:LINE:COL (PATH)". A site written inside a block is expanded once per call: it has one
*instance* per call (per repeat copy), each with its own shapes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from specdsl.blocks.registry import BLOCKS, BODY_BLOCKS
from specdsl.errors import SourceLoc
from specdsl.lsp.analysis import DocAnalysis
from specdsl.ops.channels import PART
from specdsl.render.figures import path_segments
from specdsl.render.printer import op_of
from specdsl.source import PathKey, SourceMap

__all__ = ["CALL_NOTE", "Index", "Site", "Span", "span_of"]

# (line, col, end_line, end_col): 1-based code points, end exclusive.
Span = tuple[int, int, int, int]

# The note specdsl.blocks.user.call adds to every node and diagnostic made inside a user-block call.
CALL_NOTE = re.compile(r"while expanding block '(?P<block>[^']*)'.* called at (?P<file>.*):(?P<line>\d+):(?P<col>\d+) "
                       r"\((?P<path>[^()]*)\)$")


def span_of(loc: SourceLoc, lines: list[str]) -> Span:
    """The span a location covers, as an editor should mark it.

    A YAML block mapping ends where the next entry starts (`  - ` on the next line); such an end is
    moved back to the end of the last line that holds the value.
    """
    end_line = loc.end_line or loc.line
    end_col = loc.end_col or loc.col + 1
    while end_line > loc.line and end_line - 1 < len(lines) + 1:
        before = lines[end_line - 1][:end_col - 1] if end_line - 1 < len(lines) else ""
        if before.strip() not in ("", "-"):
            break
        end_line -= 1
        end_col = len(lines[end_line - 1].rstrip()) + 1 if end_line - 1 < len(lines) else 1
    if (end_line, end_col) <= (loc.line, loc.col):
        end_line, end_col = loc.line, loc.col + 1
    return loc.line, loc.col, end_line, end_col


def contains(span: Span, line: int, col: int) -> bool:
    """Whether the cursor at (line, col) touches the span; its end counts (the cursor after a word)."""
    return (span[0], span[1]) <= (line, col) <= (span[2], span[3])


@dataclass
class Site:
    """One layer entry as written: `conv(64, k=3) x2 as stem`, `- bottleneck: 64`."""

    path: PathKey
    op: str
    span: Span
    key: Span  # the op's name
    key_loc: tuple[int, int, int | None, int | None]  # ... exactly as the SourceMap has it
    scope: str | None  # the user block it is written in; None in the model's layers
    name: str | None
    repeat: int
    raw: Any
    name_span: Span | None = None
    # Filled by Index: the graph nodes of each instance (one per block call and repeat copy).
    instances: list[list[int]] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # for a block: the path of each call


class Index:
    """Sites of a document and their nodes; built once per analysed version, on first use."""

    def __init__(self, doc: DocAnalysis) -> None:
        self.doc = doc
        self.lines = doc.lines
        self.sites: list[Site] = []
        self.block_names: tuple[str, ...] = ()
        smap, data = doc.smap, doc.data
        if smap is None or not isinstance(data, dict):
            return
        blocks = data.get("blocks")
        self.block_names = tuple(blocks) if isinstance(blocks, dict) else ()
        self._walk(data, smap)
        if doc.graph is not None:
            self._link()

    # -- sites -------------------------------------------------------------------------

    def _span(self, smap: SourceMap, path: PathKey, keys: bool = False) -> Span | None:
        loc = (smap.keys if keys else smap.values).get(path)
        return span_of(loc, self.lines) if loc is not None else None

    def _walk(self, data: dict[str, Any], smap: SourceMap) -> None:
        if isinstance(data.get("layers"), list):
            self._list(data["layers"], ("layers",), None, smap)
        for name, block in (data.get("blocks") or {}).items() if isinstance(data.get("blocks"), dict) else ():
            path: PathKey = ("blocks", name)
            if isinstance(block, list):
                self._list(block, path, name, smap)
            elif isinstance(block, dict):
                if isinstance(block.get("layers"), list):
                    self._list(block["layers"], (*path, "layers"), name, smap)
                for body in BODY_BLOCKS:
                    if body in block:
                        # A block that *is* a built-in block: the expander calls it at the block's own path.
                        self._site({body: block[body]}, path, name, smap, (*path, body))

    def _list(self, layers: list[Any], path: PathKey, scope: str | None, smap: SourceMap) -> None:
        for i, raw in enumerate(layers):
            self._site(raw, (*path, i), scope, smap)

    def _site(self, raw: Any, path: PathKey, scope: str | None, smap: SourceMap,
              op_path: PathKey | None = None) -> None:
        if isinstance(raw, dict) and ("let" in raw or "then" in raw or "else" in raw):
            for body in ("then", "else"):  # a conditional group: the layers of both bodies (a `let` holds none)
                if isinstance(raw.get(body), list):
                    self._list(raw[body], (*path, body), scope, smap)
            return
        op = op_of(raw)
        if op is None:
            return
        mapping = isinstance(raw, dict)
        op_path = op_path or ((*path, op) if mapping else path)
        span = self._span(smap, path) or self._span(smap, op_path)
        key_loc = smap.keys.get(op_path) or smap.values.get(op_path) or smap.values.get(path)
        if span is None or key_loc is None:
            return
        key = span_of(key_loc, self.lines)
        name = raw.get("name") if mapping and isinstance(raw.get("name"), str) else None
        repeat = raw.get("repeat", 1) if mapping else 1
        repeat = repeat if isinstance(repeat, int) and not isinstance(repeat, bool) and repeat > 0 else 1
        site = Site(path, op, span, key, _raw(key_loc), scope, name, repeat, raw,
                    self._span(smap, (*path, "name")) if name else None)
        self.sites.append(site)
        args = raw.get(op) if mapping else None
        rule = BLOCKS.get(op)
        if rule is None or args is None:
            return
        if isinstance(args, list) and rule.list_form:
            self._list(args, op_path, scope, smap)
        elif isinstance(args, dict):
            for section in rule.sections:
                self._section(args.get(section), (*op_path, section), scope, smap)

    def _section(self, value: Any, path: PathKey, scope: str | None, smap: SourceMap) -> None:
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            for i, layers in enumerate(value):  # inception's unnamed branches
                self._list(layers, (*path, i), scope, smap)
        elif isinstance(value, list):
            self._list(value, path, scope, smap)
        elif isinstance(value, dict):
            for key, layers in value.items():  # named branches
                if isinstance(layers, list):
                    self._list(layers, (*path, key), scope, smap)

    # -- nodes -------------------------------------------------------------------------

    def _link(self) -> None:
        graph = self.doc.graph
        assert graph is not None
        file = self.doc.file
        by_loc: dict[tuple[int, int, int | None, int | None], list[int]] = defaultdict(list)
        by_call: dict[tuple[int, int], set[str]] = defaultdict(set)
        self.members: dict[str, list[int]] = defaultdict(list)
        for node in graph.nodes:
            if node.is_input:
                continue
            prefix = ""
            for seg in path_segments(node.path):
                prefix = prefix + seg if seg.startswith("[") or not prefix else f"{prefix}.{seg}"
                self.members[prefix].append(node.index)
            if node.loc is not None and node.loc.file == file and node.op != PART:
                by_loc[_raw(node.loc)].append(node.index)
            for note in node.notes:
                m = CALL_NOTE.search(note)
                if m and m["file"] == file:
                    by_call[(int(m["line"]), int(m["col"]))].add(m["path"])
        for site in self.sites:
            loc = self._site_loc(site)
            if site.op in self.block_names:
                calls = sorted(by_call.get((site.key[0], site.key[1]), ()), key=self._first)
            elif site.op in BLOCKS:
                own = by_loc.get(site.key_loc, [])
                calls = sorted({c for i in own if (c := self._call_of(graph.nodes[i].path, site.op)) is not None},
                               key=self._first)
            else:
                site.instances = [[i] for i in by_loc.get(loc, [])]
                site.outputs = [i for (i,) in site.instances]
                continue
            for call in calls:
                nodes = [i for i in self.members.get(call, []) if graph.nodes[i].op != PART]
                if nodes:
                    site.calls.append(call)
                    site.instances.append(nodes)
                    site.outputs.append(graph.calls[call].output if call in graph.calls else nodes[-1])
        for site in self.sites:
            if site.scope is None and isinstance(site.raw, dict) and isinstance(site.raw.get("repeat"), str):
                # `x(n1)`: the count is an expression; in the model's own layers each copy is one output.
                site.repeat = max(1, len(site.outputs))

    def _site_loc(self, site: Site) -> tuple[int, int, int | None, int | None]:
        loc = self.doc.smap.values.get(site.path) if self.doc.smap else None
        return _raw(loc) if loc is not None else (0, 0, None, None)

    def _first(self, call: str) -> int:
        nodes = self.members.get(call)
        return nodes[0] if nodes else 0

    def _call_of(self, path: str, op: str) -> str | None:
        """The block call a node of a built-in block belongs to: the longest such prefix of its path."""
        graph = self.doc.graph
        assert graph is not None
        prefix, found = "", None
        for seg in path_segments(path):
            prefix = prefix + seg if seg.startswith("[") or not prefix else f"{prefix}.{seg}"
            if graph.blocks.get(prefix) is not None and prefix in self.members:
                found = prefix if _block_op(graph.blocks[prefix], op, self.block_names) else found
        return found

    # -- queries -----------------------------------------------------------------------

    def site_at(self, line: int, col: int) -> Site | None:
        """The innermost layer written at the cursor."""
        best: Site | None = None
        for site in self.sites:
            if contains(site.span, line, col) or contains(site.key, line, col):
                if best is None or _size(site.span) <= _size(best.span):
                    best = site
        return best

    def named(self, name: str, scope: str | None) -> Site | None:
        """The layer `name: NAME` / `as NAME` in a scope (the model's layers or one block's body)."""
        return next((s for s in self.sites if s.name == name and s.scope == scope), None)

    def ref_at(self, line: int, col: int) -> tuple[str, str | None, Span] | None:
        """The `@ref` (YAML: an entry of `inputs:`) at the cursor: (name, scope, span)."""
        smap, data = self.doc.smap, self.doc.data
        if smap is None:
            return None
        for path, loc in smap.values.items():
            # ("blocks", name, "inputs", i) declares a block's inputs; every other `inputs` entry refers to one.
            if len(path) >= 3 and path[-2] == "inputs" and isinstance(path[-1], int) \
                    and not (path[0] == "blocks" and len(path) == 4):
                span = span_of(loc, self.lines)
                if contains(span, line, col):
                    value = _get(data, path)
                    if isinstance(value, str):
                        return value, str(path[1]) if path[0] == "blocks" else None, span
        return None

    def block_def(self, name: str) -> Span | None:
        smap = self.doc.smap
        if smap is None or name not in self.block_names:
            return None
        loc = smap.keys.get(("blocks", name)) or smap.values.get(("blocks", name))
        return span_of(loc, self.lines) if loc else None

    def block_input(self, scope: str | None, name: str) -> Span | None:
        """The declaration of a block input (`inputs(x, skip)`) that a reference in that block names."""
        smap, data = self.doc.smap, self.doc.data
        if scope is None or smap is None:
            return None
        inputs = _get(data, ("blocks", scope, "inputs"))
        if isinstance(inputs, list) and name in inputs:
            loc = smap.values.get(("blocks", scope, "inputs", inputs.index(name)))
            return span_of(loc, self.lines) if loc else None
        return None

    def by_line(self) -> Iterator[tuple[int, list[Site]]]:
        lines: dict[int, list[Site]] = defaultdict(list)
        for site in self.sites:
            lines[site.key[0]].append(site)
        yield from sorted(lines.items())


def _block_op(block: str, op: str, user_blocks: tuple[str, ...]) -> bool:
    # A user block that is a built-in one (`block basic = residual {...}`) is recorded under its own name.
    return block == op or (block in user_blocks and op in BLOCKS)


def _raw(loc: SourceLoc) -> tuple[int, int, int | None, int | None]:
    return loc.line, loc.col, loc.end_line, loc.end_col


def _size(span: Span) -> tuple[int, int]:
    return span[2] - span[0], span[3] - span[1]


def _get(data: Any, path: PathKey) -> Any:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data
