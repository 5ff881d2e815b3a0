"""Graph diagrams: the checked graph as Graphviz DOT text, rendered by the `dot` program.

The DOT text is generated here, deterministically (same spec, same bytes), with every
piece of spec text escaped, and rendered to SVG/PNG/PDF by running Graphviz's `dot`
executable; no Python graphviz package is needed.

Blocks become clusters. A block is *collapsed* into one box with a summary (block name,
output shape, params and MACs subtotals) or *expanded* into its primitive ops, to a given
nesting depth: ``expand=0`` collapses every outermost block, ``expand=1`` opens those and
collapses the blocks inside them, ``expand=None`` opens everything. A repeat of a block
(``basic(64) x2``) is one level, like the block itself: collapsed, it is one box
``basic ×2``; expanded, each copy is its own cluster.

Edges carry tensor shapes where they change; residual shortcuts (second input of ``add``) are
dashed, inputs of ``concat`` and ``mean``/``join`` coloured. A concat whose inputs begin with all
the inputs of an earlier concat (a DenseNet layer) is drawn fed by that concat, the same tensor,
so a dense block keeps one edge per layer instead of one per earlier feature map.

A node whose shape rule failed is drawn in red with the diagnostic in its label and tooltip;
nodes after it (not checked) are dashed grey.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from specdsl.api import Model
    from specdsl.errors import Diagnostic
    from specdsl.ir import Node
    from specdsl.passes.analysis import NodeFigures

FORMATS = ("svg", "png", "pdf", "dot")
SHOW_CHOICES = ("shapes", "params", "macs", "rf")
DEFAULT_SHOW = ("shapes", "params", "macs")
RANKDIRS = ("TB", "LR")
DOT_TIMEOUT_S = 120.0

INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) "
    "or `conda install -c conda-forge graphviz`; or write DOT text with `-o OUT.dot`"
)

# (fill, border) per op family (OpRule.family), plus the diagram's own kinds.
FAMILY_COLOURS: dict[str, tuple[str, str]] = {
    "input": ("#ffffff", "#333333"),
    "conv": ("#cfe2f3", "#3d85c6"),
    "pool": ("#d9ead3", "#6aa84f"),
    "norm": ("#fff2cc", "#bf9000"),
    "activation": ("#fce5cd", "#e69138"),
    "dropout": ("#eeeeee", "#999999"),
    "linear": ("#d9d2e9", "#674ea7"),
    "merge": ("#d0e0e3", "#45818e"),
    "shape": ("#f3f3f3", "#777777"),
    "resize": ("#ead1dc", "#a64d79"),
}
FAMILY_ORDER = tuple(FAMILY_COLOURS)
BLOCK_COLOURS = ("#eef1f8", "#1c4587")
CLUSTER_COLOURS = ("#f8f9fc", "#8e9dbd")
ERROR_COLOURS = ("#f4cccc", "#cc0000")
WARNING_BORDER = "#e69138"
SKIPPED_COLOURS = ("#ffffff", "#999999")
EDGE_COLOUR = "#555555"
SHORTCUT_COLOUR = "#d35400"  # second and later inputs of add: residual shortcuts, dashed
CONCAT_COLOUR = "#1f77b4"  # every input of concat
MEAN_COLOUR = "#7b3294"  # every input of mean / join (FractalNet's columns are peers, not shortcuts)
SHORTCUT_OPS = frozenset({"add"})
MERGE_EDGE_OPS = frozenset({"add", "concat", "mean", "join"})
FONT = "Helvetica,Arial,sans-serif"
MAX_LABELLED_MERGE = 4  # inputs of a merge above which its input edges go unlabelled
MAX_TITLE = 28  # characters of "op summary, detail" kept on one line


class DotMissing(Exception):
    """Graphviz's `dot` program is not installed (or not on PATH)."""


class DotFailed(Exception):
    """`dot` ran but failed or did not finish in time."""


# --------------------------------------------------------------------------- escaping

# C0/C1 control characters (and DEL) never belong in a label; newlines are handled by callers.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def html_text(text: object) -> str:
    """Text for a DOT HTML-like label (``label=<...>``), shown literally.

    Entities for ``& < > "``; a backslash is doubled, because Graphviz still reads escapes such
    as ``\\N`` (the node's name) in HTML text. Control characters and newlines become spaces
    (callers break lines with ``<BR/>``).
    """
    s = _CONTROL.sub(" ", str(text)).replace("\n", " ").replace("\r", " ")
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return s.replace("\\", "\\\\")


def quoted(text: object, *, tooltip: bool = False) -> str:
    """A DOT double-quoted string (a plain label, or with ``tooltip`` a tooltip) shown literally.

    Graphviz decodes entities in these strings, so ``&`` becomes ``&amp;``; it reads ``\\n``,
    ``\\N``, ``\\G``... as escapes, so a backslash is doubled; a tooltip goes through that
    unescaping twice on its way into SVG, so there it is doubled twice. Quotes become ``\\"``,
    newlines the escape ``\\n``; other control characters become spaces.
    """
    s = _CONTROL.sub(" ", str(text).replace("\r\n", "\n").replace("\r", "\n"))
    s = s.replace("&", "&amp;").replace("\\", "\\\\\\\\" if tooltip else "\\\\")
    return '"' + s.replace('"', '\\"').replace("\n", "\\n") + '"'


def tooltip(text: object) -> str:
    return quoted(text, tooltip=True)


# --------------------------------------------------------------------------- grouping

@dataclass
class Unit:
    """A block call, or a repeat of block calls, and what it contains."""

    key: str
    kind: str
    level: int
    is_repeat: bool = False
    nodes: list[int] = field(default_factory=list)  # every graph node inside, in order
    copies: set[str] = field(default_factory=set)
    # Items drawn directly inside when expanded: ("node", index) or ("unit", Unit), in order.
    items: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.kind} ×{len(self.copies)}" if self.is_repeat else self.kind


def _segments(path: str) -> list[str]:
    from specdsl.render.table import path_segments

    return path_segments(path)


def unit_chain(path: str, blocks: dict[str, str]) -> list[tuple[str, str, bool]]:
    """(key, block name, is_repeat) of the block calls and repeats enclosing a node, outermost first.

    A repeat and its copy share one nesting level; a repeat key is followed by its copy's key.
    """
    chain: list[tuple[str, str, bool]] = []
    prefix = ""
    segs = _segments(path)
    for i, seg in enumerate(segs):
        prefix = prefix + seg if seg.startswith("[") or not prefix else prefix + "." + seg
        if prefix in blocks:
            chain.append((prefix, blocks[prefix], False))
        elif i + 1 < len(segs) and segs[i + 1].startswith("[") and prefix + segs[i + 1] in blocks:
            chain.append((prefix, blocks[prefix + segs[i + 1]], True))
    return chain


@dataclass
class Layout:
    """What is drawn: top-level items, and for each graph node the item that stands for it."""

    items: list[tuple[str, Any]]
    owner: list[tuple[str, Any]]  # per node: ("node", index) or ("box", Unit)


def layout(model: Model, expand: int | None) -> Layout:
    """Group nodes into block clusters; blocks at nesting level >= expand collapse into boxes."""
    graph = model.graph
    units: dict[str, Unit] = {}
    top: list[tuple[str, Any]] = []
    owner: list[tuple[str, Any]] = []
    for node in graph.nodes:
        parent_items = top
        level = 0
        placed: tuple[str, Any] | None = None
        for key, kind, is_repeat in unit_chain(node.path, graph.blocks):
            unit = units.get(key)
            if unit is None:
                unit = Unit(key, kind, level, is_repeat)
                units[key] = unit
                collapsed = expand is not None and level >= expand
                # A repeat that is expanded is not drawn itself: its copies are the clusters.
                if collapsed:
                    parent_items.append(("box", unit))
                elif not is_repeat:
                    parent_items.append(("unit", unit))
            unit.nodes.append(node.index)
            if is_repeat:
                unit.copies.add(_segments(node.path[len(key):])[0])
            if expand is not None and unit.level >= expand:
                placed = ("box", unit)
                break
            if not is_repeat:
                parent_items = unit.items
                level += 1
        if placed is None:
            placed = ("node", node.index)
            parent_items.append(placed)
        owner.append(placed)
    return Layout(top, owner)


# --------------------------------------------------------------------------- labels

def compact_shape(shape: Iterable[int] | None) -> str:
    return "?" if shape is None else "×".join(str(d) for d in shape)


def _detail(node: Node, fig: NodeFigures) -> str:
    """The key attribute beside the op summary (out channels, features, p, scale...), from the op's rule."""
    from specdsl.ops import OPS

    if node.op == "input" or fig.attrs is None:
        return ""
    return OPS[node.op].detail(node.op, fig.attrs)


def _wrapped(text: str, width: int = 36, max_lines: int = 4) -> list[str]:
    """A message broken into short lines for a label (the full text is in the tooltip)."""
    import textwrap

    lines = textwrap.wrap(text, width, break_long_words=True)
    if len(lines) > max_lines:
        lines = [*lines[:max_lines - 1], lines[max_lines - 1][: width - 1] + "…"]
    return lines


def _args_text(node: Node) -> str:
    """The arguments as written (non-default ones), for a node whose figures are unknown."""
    if node.args is None:
        return ""
    try:
        data = node.args.model_dump(exclude_defaults=True, by_alias=True)
    except Exception:  # pragma: no cover - defensive: a label must never stop the diagram
        return ""
    return " ".join(f"{k}={v}" for k, v in data.items())


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _human(n: int) -> str:
    from specdsl.render.table import human

    return human(n)


def _rf(fig: NodeFigures) -> str:
    from specdsl.render.table import rf_text

    return rf_text(fig.rf)


def _html_label(lines: list[tuple[str, str]]) -> str:
    """An HTML-like label from (style, text) lines: style 'b' bold, 's' small grey, '' plain."""
    parts = []
    for style, text in lines:
        t = html_text(text)
        if style == "b":
            t = f"<B>{t}</B>"
        elif style == "s":
            t = f'<FONT POINT-SIZE="8" COLOR="#555555">{t}</FONT>'
        elif style == "e":
            t = f'<FONT COLOR="#990000">{t}</FONT>'
        parts.append(t)
    return "<" + "<BR/>".join(parts) + ">"


def _attrs(pairs: Iterable[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in pairs) + "]"


# --------------------------------------------------------------------------- DOT

@dataclass
class _Status:
    errors: dict[int, list[Diagnostic]]
    warnings: dict[int, list[Diagnostic]]
    skipped: set[int]


def _status(model: Model) -> _Status:
    graph, figures = model.graph, model.analysis.figures
    by_path: dict[str, int] = {n.path: n.index for n in graph.nodes}
    errors: dict[int, list[Diagnostic]] = {}
    warnings: dict[int, list[Diagnostic]] = {}
    for d in model.diagnostics:
        i = by_path.get(d.path) if d.path is not None else None
        if i is not None:
            (errors if d.is_error else warnings).setdefault(i, []).append(d)
    skipped: set[int] = set()
    for node, fig in zip(graph.nodes, figures):
        if not fig.failed:
            continue
        if any(figures[i].shape is None for i in node.inputs):
            skipped.add(node.index)
        elif node.index not in errors:
            # A block called many times reports its error once: find it by source location.
            same = [d for d in model.diagnostics if d.is_error and d.loc is not None and d.loc == node.loc]
            errors[node.index] = same or []
    return _Status(errors, warnings, skipped)


def _diag_text(diags: list[Diagnostic]) -> str:
    return "\n".join(f"{d.severity} {d.code}: {d.message}" + (f"\nhint: {d.hint}" if d.hint else "")
                     for d in diags)


class _Writer:
    def __init__(self, model: Model, expand: int | None, rankdir: str, show: Iterable[str]):
        self.model = model
        self.graph = model.graph
        self.figs = model.analysis.figures
        self.show = set(show)
        self.rankdir = rankdir
        self.layout = layout(model, expand)
        self.status = _status(model)
        self.families_used: set[str] = set()
        self.kinds_used: set[str] = set()
        self.out: list[str] = []
        consumers = self.graph.consumers()
        self.consumers = consumers

    # ---- ids
    @staticmethod
    def node_id(index: int) -> str:
        return f"n{index}"

    @staticmethod
    def box_id(unit: Unit) -> str:
        return f"b{unit.nodes[0]}"

    def item_id(self, item: tuple[str, Any]) -> str:
        return self.node_id(item[1]) if item[0] == "node" else self.box_id(item[1])

    # ---- pieces
    def figure_lines(self, params: int, macs: int, rf: str) -> list[tuple[str, str]]:
        bits = []
        if "params" in self.show and params:
            bits.append(f"{_fmt_int(params)} params")
        if "macs" in self.show and macs:
            bits.append(f"{_human(macs)} MACs")
        if "rf" in self.show and rf:
            bits.append(f"RF {rf}")
        return [("s", " · ".join(bits))] if bits else []

    def node_stmt(self, index: int, indent: str) -> str:
        from specdsl.ops import OPS
        from specdsl.render.table import op_summary

        node, fig = self.graph.nodes[index], self.figs[index]
        family = "input" if node.op == "input" else OPS[node.op].family if node.op in OPS else "shape"
        fill, border = FAMILY_COLOURS.get(family, FAMILY_COLOURS["shape"])
        style = "rounded,filled"
        penwidth = "1"
        fontcolor = "#000000"
        lines: list[tuple[str, str]] = []
        title = op_summary(node, fig)
        detail = _detail(node, fig)
        one_line = len(title) + len(detail) <= MAX_TITLE
        lines.append(("b", f"{title}, {detail}" if detail and one_line else title))
        if detail and not one_line:
            lines.append(("", detail))
        if node.name and node.op != "input":
            lines.append(("s", f"as {node.name}"))
        if node.frozen:
            lines.append(("s", "frozen"))
        tip = [node.path + (f" ({node.name})" if node.name and node.name != node.path else "")]
        if node.loc is not None:
            tip.append(str(node.loc))
        if node.index in self.status.errors:
            fill, border = ERROR_COLOURS
            penwidth = "2"
            fontcolor = "#990000"
            self.kinds_used.add("error")
            diags = self.status.errors[node.index]
            codes = ", ".join(sorted({d.code for d in diags})) or "shape rule"
            args = _args_text(node)
            if args:
                lines.append(("", args))
            lines.append(("e", f"error {codes}"))
            lines += [("e", line) for line in _wrapped(diags[0].message if diags else "")]
            tip.append(_diag_text(diags) if diags else "error: this op's rule failed")
        elif node.index in self.status.skipped:
            fill, border = SKIPPED_COLOURS
            style = "rounded,dashed"
            fontcolor = "#777777"
            self.kinds_used.add("skipped")
            tip.append("not checked: an earlier layer failed")
        else:
            self.families_used.add(family)
            if node.op == "input":
                lines.append(("", compact_shape(fig.shape)))
            elif index == self.graph.output:
                lines.append(("", f"output {compact_shape(fig.shape)}"))
                penwidth = "2"
            lines += self.figure_lines(fig.params, fig.macs, _rf(fig))
            figures = []
            if fig.shape is not None:
                figures.append(f"output {compact_shape(fig.shape)}")
            if fig.params:
                figures.append(f"params {fig.params:,}")
            if fig.macs:
                figures.append(f"MACs {fig.macs:,}")
            if fig.rf is not None:
                figures.append(f"receptive field {_rf(fig)}")
            tip.append(", ".join(figures))
        if node.index in self.status.warnings:
            if node.index not in self.status.errors:
                border = WARNING_BORDER
                penwidth = "2"
                self.kinds_used.add("warning")
            tip.append(_diag_text(self.status.warnings[node.index]))
        attrs = [("label", _html_label(lines)), ("tooltip", tooltip("\n".join(t for t in tip if t)))]
        if node.op == "input":
            attrs.append(("shape", "oval"))
            style = "filled"
        attrs += [("style", quoted(style)), ("fillcolor", quoted(fill)), ("color", quoted(border))]
        if penwidth != "1":
            attrs.append(("penwidth", penwidth))
        if fontcolor != "#000000":
            attrs.append(("fontcolor", quoted(fontcolor)))
        return f"{indent}{self.node_id(index)} {_attrs(attrs)};"

    def box_stmt(self, unit: Unit, indent: str) -> str:
        figs = [self.figs[i] for i in unit.nodes]
        node_set = set(unit.nodes)
        outputs = [i for i in unit.nodes
                   if i == self.graph.output or any(c not in node_set for c in self.consumers[i])]
        last = outputs[-1] if outputs else unit.nodes[-1]
        params = sum(f.params for f in figs)
        macs = sum(f.macs for f in figs)
        errors = [i for i in unit.nodes if i in self.status.errors]
        skipped = [i for i in unit.nodes if i in self.status.skipped]
        warned = [i for i in unit.nodes if i in self.status.warnings]
        names = [self.graph.nodes[i].name for i in outputs if self.graph.nodes[i].name]
        lines: list[tuple[str, str]] = [("b", unit.title)]
        lines.append(("s", unit.key + "".join(f" as {n}" for n in names)))
        shape = self.figs[last].shape
        if "shapes" in self.show or last == self.graph.output:
            lines.append(("", compact_shape(shape)))
        lines += self.figure_lines(params, macs, _rf(self.figs[last]))
        fill, border = BLOCK_COLOURS
        style = "filled"
        penwidth = "1.5"
        fontcolor = "#000000"
        tip = [f"{unit.key}: {unit.title} ({len(unit.nodes)} ops, collapsed)"]
        if shape is not None:
            tip.append(f"output {compact_shape(shape)}, params {params:,}, MACs {macs:,}")
        if errors:
            fill, border = ERROR_COLOURS
            penwidth, fontcolor = "2", "#990000"
            self.kinds_used.add("error")
            diags = [d for i in errors for d in self.status.errors[i]]
            where = self.graph.nodes[errors[0]].path[len(unit.key):].lstrip(".")
            codes = ", ".join(sorted({d.code for d in diags})) or "in a shape rule"
            lines.append(("e", f"error {codes}" + (f" at {where}" if where else "")))
            lines += [("e", line) for line in _wrapped(diags[0].message if diags else "")]
            for i in errors:
                node = self.graph.nodes[i]
                at = f"{node.path} ({node.loc})" if node.loc else node.path
                tip.append(f"{at}: " + (_diag_text(self.status.errors[i]) or "error"))
        elif skipped:
            fill, border = SKIPPED_COLOURS
            style = "dashed"
            fontcolor = "#777777"
            self.kinds_used.add("skipped")
            tip.append("not checked: an earlier layer failed")
        else:
            self.kinds_used.add("block")
        if warned:
            if not errors:
                border, penwidth = WARNING_BORDER, "2"
                self.kinds_used.add("warning")
            for i in warned:
                tip.append(f"{self.graph.nodes[i].path}: {_diag_text(self.status.warnings[i])}")
        attrs = [("label", _html_label(lines)), ("tooltip", tooltip("\n".join(tip))), ("shape", "box3d"),
                 ("margin", quoted("0.15,0.07")), ("style", quoted(style)), ("fillcolor", quoted(fill)),
                 ("color", quoted(border)), ("penwidth", penwidth)]
        if fontcolor != "#000000":
            attrs.append(("fontcolor", quoted(fontcolor)))
        return f"{indent}{self.box_id(unit)} {_attrs(attrs)};"

    def emit_items(self, items: list[tuple[str, Any]], depth: int) -> None:
        indent = "    " * depth
        for kind, value in items:
            if kind == "node":
                self.out.append(self.node_stmt(value, indent))
            elif kind == "box":
                self.out.append(self.box_stmt(value, indent))
            else:
                unit: Unit = value
                fill, border = CLUSTER_COLOURS
                self.out.append(f"{indent}subgraph cluster_{unit.nodes[0]} {{")
                label = _html_label([("b", unit.title), ("s", unit.key)])
                params = sum(self.figs[i].params for i in unit.nodes)
                macs = sum(self.figs[i].macs for i in unit.nodes)
                tip = f"{unit.key}: {unit.title}, params {params:,}, MACs {macs:,}"
                attrs = [("label", label), ("tooltip", tooltip(tip)), ("style", quoted("rounded,filled")),
                         ("fillcolor", quoted(fill)), ("color", quoted(border)), ("labeljust", "l"), ("fontsize", "11")]
                self.out.append(f"{indent}    graph {_attrs(attrs)};")
                self.emit_items(unit.items, depth + 1)
                self.out.append(f"{indent}}}")

    def label_edge(self, u: int, from_box: bool, dst_op: str, n_inputs: int) -> bool:
        """Shapes go on edges where they change: out of the input, a box or a node that reshapes,
        and on every input of a merge; a chain of same-shape ops (bn, relu, ...) stays quiet."""
        src = self.graph.nodes[u]
        if n_inputs > MAX_LABELLED_MERGE or self.figs[u].shape is None:
            return False  # a DenseNet concat of 40 earlier maps: the concat's own output edge says it
        if dst_op in MERGE_EDGE_OPS:
            return True
        if from_box:
            return False  # the box says its output shape
        if not src.inputs:
            return True
        return self.figs[u].shape != self.figs[src.inputs[0]].shape

    def concat_prefixes(self) -> dict[int, int]:
        """concat node -> an earlier concat whose inputs start its own (a DenseNet layer's features).

        concat(a, b, c) is concat(concat(a, b), c): drawing the earlier concat's output in place of
        its inputs shows the same tensor with one edge instead of one per earlier feature map, which
        keeps a DenseNet block linear in edges (and readable; `dot` chokes on the full fan-in).
        """
        seen: dict[tuple[Any, ...], int] = {}
        out: dict[int, int] = {}
        for node, fig in zip(self.graph.nodes, self.figs):
            if node.op != "concat" or fig.shape is None:
                continue
            dim = fig.attrs.dim
            for k in range(len(node.inputs) - 1, 1, -1):
                earlier = seen.get((dim, node.inputs[:k]))
                if earlier is not None:
                    out[node.index] = earlier
                    break
            seen[(dim, node.inputs)] = node.index
        return out

    def edges(self) -> None:
        owner = self.layout.owner
        seen: set[tuple[str, str, int]] = set()
        labelled: set[int] = set()  # a tensor fanning out to plain ops is labelled on its first edge only
        prefixes = self.concat_prefixes()
        for node in self.graph.nodes:
            dst = self.item_id(owner[node.index])
            inputs: list[tuple[int, int]] = list(enumerate(node.inputs))
            via = prefixes.get(node.index)
            if via is not None:
                k = len(self.graph.nodes[via].inputs)
                inputs = [(0, via), *inputs[k:]]
            for pos, u in inputs:
                src = self.item_id(owner[u])
                if src == dst or (src, dst, u) in seen:
                    continue
                seen.add((src, dst, u))
                attrs: list[tuple[str, str]] = []
                if ("shapes" in self.show and self.label_edge(u, owner[u][0] == "box", node.op, len(inputs))
                        and (u not in labelled or node.op in MERGE_EDGE_OPS)):
                    attrs.append(("label", quoted(" " + compact_shape(self.figs[u].shape) + " ")))
                    labelled.add(u)
                tip = f"{self.graph.nodes[u].path} → {node.path}"
                if u == via:
                    tip += (f" (stands for inputs 1-{len(self.graph.nodes[via].inputs)} of this concat, "
                            f"which are the inputs of {self.graph.nodes[via].path})")
                if node.op in ("concat", "mean", "join"):
                    colour = CONCAT_COLOUR if node.op == "concat" else MEAN_COLOUR
                    attrs += [("color", quoted(colour)), ("fontcolor", quoted(colour)), ("penwidth", "1.5")]
                    self.kinds_used.add(f"{'concat' if node.op == 'concat' else 'mean'}-edge")
                    tip += f" ({node.op} input {pos + 1})"
                elif node.op in SHORTCUT_OPS and pos > 0:
                    attrs += [("color", quoted(SHORTCUT_COLOUR)), ("fontcolor", quoted(SHORTCUT_COLOUR)),
                              ("style", "dashed"), ("penwidth", "1.5")]
                    self.kinds_used.add("shortcut-edge")
                    tip += f" (shortcut into {node.op})"
                attrs.append(("tooltip", tooltip(tip)))
                self.out.append(f"    {src} -> {dst} {_attrs(attrs)};")

    def legend(self) -> str:
        """The title, totals and a legend of the colours used, as one HTML table (the graph's label)."""
        cells = []

        def swatch(fill: str, border: str, text: str, dashed: bool = False) -> None:
            box = (f'<TD BGCOLOR="{fill}" COLOR="{border}" BORDER="1" WIDTH="16" HEIGHT="10" FIXEDSIZE="TRUE"'
                   + (' STYLE="dashed"' if dashed else "") + "></TD>")
            cells.append(f'{box}<TD ALIGN="LEFT">{html_text(text)}</TD>')

        for family in FAMILY_ORDER:
            if family in self.families_used:
                swatch(*FAMILY_COLOURS[family], family)
        if "block" in self.kinds_used:
            swatch(*BLOCK_COLOURS, "block (collapsed)")
        if "error" in self.kinds_used:
            swatch(*ERROR_COLOURS, "error")
        if "warning" in self.kinds_used:
            swatch("#ffffff", WARNING_BORDER, "warning")
        if "skipped" in self.kinds_used:
            swatch(*SKIPPED_COLOURS, "not checked", dashed=True)
        for kind, colour, arrow, text in (("shortcut-edge", SHORTCUT_COLOUR, "- - -▸", "shortcut into add"),
                                          ("concat-edge", CONCAT_COLOUR, "——▸", "into concat"),
                                          ("mean-edge", MEAN_COLOUR, "——▸", "into mean / join")):
            if kind in self.kinds_used:
                cells.append(f'<TD><FONT COLOR="{colour}">{arrow}</FONT></TD><TD ALIGN="LEFT">{text}</TD>')
        per_row = 5
        # One table per row, so that a long entry does not stretch a column of the other rows.
        rows = ['<TR><TD><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="0"><TR>'
                + "".join(cells[i:i + per_row]) + "</TR></TABLE></TD></TR>"
                for i in range(0, len(cells), per_row)]
        legend = ('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">' + "".join(rows)
                  + "</TABLE>")
        g, t = self.graph, self.model.totals
        from specdsl.render.table import human

        title = f"{g.model} — input {compact_shape(g.input_shape)}"
        n_err = len(self.status.errors)
        sub = f"{t.params:,} params · {human(t.macs)} MACs"
        if n_err:
            sub = f"{n_err} failing layer(s), in red · figures so far: {sub}"
        return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="0">'
                f'<TR><TD><B>{html_text(title)}</B></TD></TR>'
                f'<TR><TD><FONT POINT-SIZE="10" COLOR="#555555">{html_text(sub)}</FONT></TD></TR>'
                f'<TR><TD><FONT POINT-SIZE="9">{legend}</FONT></TD></TR></TABLE>>')

    def write(self) -> str:
        g = self.graph
        head = len(self.out)
        self.emit_items(self.layout.items, 1)
        self.edges()
        graph_attrs = [("rankdir", self.rankdir), ("label", self.legend()), ("labelloc", "t"),
                       ("labeljust", "l" if self.rankdir == "LR" else "c"),
                       ("fontname", quoted(FONT)), ("fontsize", "14"), ("newrank", "true"), ("nodesep", "0.25"),
                       ("ranksep", "0.3"), ("tooltip", tooltip(g.model))]
        node_attrs = [("shape", "box"), ("style", quoted("rounded,filled")), ("fontname", quoted(FONT)),
                      ("fontsize", "10"), ("margin", quoted("0.1,0.03")), ("height", "0.3")]
        edge_attrs = [("fontname", quoted(FONT)), ("fontsize", "8"), ("color", quoted(EDGE_COLOUR)),
                      ("fontcolor", quoted("#444444")), ("arrowsize", "0.6")]
        self.out[head:head] = [
            f"digraph {quoted(g.model)} {{",
            f"    graph {_attrs(graph_attrs)};",
            f"    node {_attrs(node_attrs)};",
            f"    edge {_attrs(edge_attrs)};",
        ]
        self.out.append("}")
        return "\n".join(self.out) + "\n"


def parse_expand(text: str) -> int | None:
    """``all`` -> None (no limit), ``none`` -> 0, ``N`` -> N."""
    t = text.strip().lower()
    if t == "all":
        return None
    if t == "none":
        return 0
    if t.isdigit():
        return int(t)
    raise argparse.ArgumentTypeError(f"expected all, none or a block depth such as 1; received '{text}'")


def parse_show(text: str) -> tuple[str, ...]:
    items = [s.strip().lower() for s in text.split(",") if s.strip()]
    if items == ["none"]:
        return ()
    bad = [s for s in items if s not in SHOW_CHOICES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(SHOW_CHOICES)} (or none); received '{text}'")
    return tuple(items)


def to_dot(model: Model, *, expand: int | None = 0, rankdir: str = "TB",
           show: Iterable[str] = DEFAULT_SHOW) -> str:
    """The model's graph as DOT text: deterministic, every spec string escaped."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {RANKDIRS}; received {rankdir!r}")
    return _Writer(model, expand, rankdir, show).write()


def find_dot() -> str | None:
    import shutil

    return shutil.which("dot")


def render(dot_text: str, fmt: str, timeout: float = DOT_TIMEOUT_S) -> bytes:
    """Run Graphviz's `dot` on DOT text; the rendered bytes (svg, png or pdf)."""
    import subprocess

    exe = find_dot()
    if exe is None:
        raise DotMissing(f"rendering {fmt} needs Graphviz's `dot` program, which is not on PATH")
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DotFailed(f"`dot` did not finish in {timeout:g} s; try a smaller view (--expand none) "
                        "or write DOT text with -o OUT.dot") from None
    except OSError as exc:
        raise DotFailed(f"could not run {exe}: {exc}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise DotFailed(f"`dot` failed (exit {proc.returncode}): {err[-2000:]}")
    return proc.stdout


# --------------------------------------------------------------------------- CLI

def format_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    ext = "dot" if ext == "gv" else ext
    if ext not in FORMATS:
        raise argparse.ArgumentTypeError(
            f"cannot tell the format of '{path}': use a name ending in .svg, .png, .pdf or .dot")
    return ext


def cmd_diagram(args: argparse.Namespace) -> int:
    from specdsl.cli.main import EXIT_OK, EXIT_SPEC, EXIT_USAGE, _print_diagnostics

    fmt = "dot"
    if args.output:
        try:
            fmt = format_of(args.output)
        except argparse.ArgumentTypeError as exc:
            print(f"specdsl diagram: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if fmt != "dot" and find_dot() is None:
        print(f"specdsl diagram: writing {args.output} needs Graphviz's `dot` program, which is not "
              f"on PATH.\n  {INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE
    from specdsl.api import load

    model = load(args.spec, input=args.input, strict=False)  # parse/expansion errors raise: nothing to draw
    text = to_dot(model, expand=args.expand, rankdir=args.rankdir, show=args.show)
    try:
        data = text.encode("utf-8") if fmt == "dot" else render(text, fmt)
    except DotMissing:
        print(f"specdsl diagram: {INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE
    except DotFailed as exc:
        print(f"specdsl diagram: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.output:
        try:
            with open(args.output, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            print(f"specdsl diagram: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
    else:
        sys.stdout.write(text)
    _print_diagnostics(model.diagnostics, model.sources, False)
    errors = sum(d.is_error for d in model.diagnostics)
    if args.output:
        note = f" ({errors} error(s) drawn in red)" if errors else ""
        print(f"wrote {args.output}{note}", file=sys.stderr)
    return EXIT_SPEC if errors else EXIT_OK


def register(sub: Any) -> None:
    from specdsl.cli.main import _shape

    p = sub.add_parser(
        "diagram", help="draw the graph (svg, png, pdf with Graphviz's dot; or DOT text)",
        description="Draw a spec's graph: blocks as clusters (collapsed to a summary box or expanded), "
                    "edges labelled with tensor shapes, nodes coloured by op family. A spec with shape "
                    "errors still draws, the failing node in red. Exit codes: 0 ok, 1 spec errors (the "
                    "diagram is still written when the graph could be built), 2 usage, or Graphviz "
                    "missing or failing.")
    p.add_argument("spec", metavar="FILE|ZOO-NAME")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="OUT.svg, OUT.png, OUT.pdf (rendered by `dot`) or OUT.dot; DOT text on stdout if omitted")
    p.add_argument("--expand", type=parse_expand, default=0, metavar="all|none|N",
                   help="open blocks nested less than N deep; deeper ones are one summary box (default none)")
    p.add_argument("--rankdir", type=str.upper, choices=RANKDIRS, default="TB",
                   help="top to bottom (TB, default) or left to right (LR)")
    p.add_argument("--show", type=parse_show, default=DEFAULT_SHOW, metavar="LIST",
                   help="figures to write: shapes,params,macs,rf or none (default shapes,params,macs)")
    p.add_argument("--input", type=_shape, help="override the input shape, e.g. 3,299,299")
    p.set_defaults(func=cmd_diagram)
