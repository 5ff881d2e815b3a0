"""The diagram's boxes: one DOT statement per drawn op or collapsed block, with its label, colours and tooltip.

A node whose shape rule failed is drawn in red with the diagnostic in its label and tooltip;
nodes after it (not checked) are dashed grey; a node with a warning gets an orange border.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from specdsl.ops import OPS
from specdsl.render.dot_layout import Unit
from specdsl.render.dot_style import (
    BLOCK_COLOURS,
    ERROR_COLOURS,
    FAMILY_COLOURS,
    SKIPPED_COLOURS,
    WARNING_BORDER,
    compact_shape,
    dot_attrs,
    html_label,
    quoted,
    tooltip,
    wrapped,
)
from specdsl.render.figures import human, op_detail, op_summary, rf_text

if TYPE_CHECKING:
    from specdsl.errors import Diagnostic
    from specdsl.ir import Graph, Node
    from specdsl.passes.analysis import Analysis

MAX_TITLE = 28  # characters of "op summary, detail" kept on one line


@dataclass
class Status:
    """The diagnostics drawn on each node, and the nodes left unchecked after a failure."""

    errors: dict[int, list[Diagnostic]]
    warnings: dict[int, list[Diagnostic]]
    skipped: set[int]


def node_status(graph: Graph, analysis: Analysis) -> Status:
    figures, diagnostics = analysis.figures, analysis.diagnostics
    by_path: dict[str, int] = {n.path: n.index for n in graph.nodes}
    errors: dict[int, list[Diagnostic]] = {}
    warnings: dict[int, list[Diagnostic]] = {}
    for d in diagnostics:
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
            same = [d for d in diagnostics if d.is_error and d.loc is not None and d.loc == node.loc]
            errors[node.index] = same or []
    return Status(errors, warnings, skipped)


def _diag_text(diags: list[Diagnostic]) -> str:
    return "\n".join(f"{d.severity} {d.code}: {d.message}" + (f"\nhint: {d.hint}" if d.hint else "")
                     for d in diags)


def _args_text(node: Node) -> str:
    """The arguments as written (non-default ones), for a node whose figures are unknown."""
    if node.args is None:
        return ""
    try:
        data = node.args.model_dump(exclude_defaults=True, by_alias=True)
    except Exception:  # pragma: no cover - defensive: a label must never stop the diagram
        return ""
    return " ".join(f"{k}={v}" for k, v in data.items())


def node_id(index: int) -> str:
    return f"n{index}"


def box_id(unit: Unit) -> str:
    return f"b{unit.nodes[0]}"


def item_id(item: tuple[str, Any]) -> str:
    return node_id(item[1]) if item[0] == "node" else box_id(item[1])


class Boxes:
    """Writes node and box statements, noting the families and kinds drawn for the legend."""

    def __init__(self, graph: Graph, analysis: Analysis, show: Iterable[str]):
        self.graph = graph
        self.figs = analysis.figures
        self.show = set(show)
        self.status = node_status(graph, analysis)
        self.consumers = graph.consumers()
        self.families_used: set[str] = set()
        self.kinds_used: set[str] = set()

    def figure_lines(self, params: int, macs: int, rf: str) -> list[tuple[str, str]]:
        bits = []
        if "params" in self.show and params:
            bits.append(f"{params:,} params")
        if "macs" in self.show and macs:
            bits.append(f"{human(macs)} MACs")
        if "rf" in self.show and rf:
            bits.append(f"RF {rf}")
        return [("s", " · ".join(bits))] if bits else []

    def node_stmt(self, index: int, indent: str) -> str:
        node, fig = self.graph.nodes[index], self.figs[index]
        family = "input" if node.is_input else OPS[node.op].family
        fill, border = FAMILY_COLOURS.get(family, FAMILY_COLOURS["shape"])
        style = "rounded,filled"
        penwidth = "1"
        fontcolor = "#000000"
        lines: list[tuple[str, str]] = []
        title = op_summary(node, fig)
        detail = op_detail(node, fig)
        one_line = len(title) + len(detail) <= MAX_TITLE
        lines.append(("b", f"{title}, {detail}" if detail and one_line else title))
        if detail and not one_line:
            lines.append(("", detail))
        if node.name and not node.is_input:
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
            lines += [("e", line) for line in wrapped(diags[0].message if diags else "")]
            tip.append(_diag_text(diags) if diags else "error: this op's rule failed")
        elif node.index in self.status.skipped:
            fill, border = SKIPPED_COLOURS
            style = "rounded,dashed"
            fontcolor = "#777777"
            self.kinds_used.add("skipped")
            tip.append("not checked: an earlier layer failed")
        else:
            self.families_used.add(family)
            if node.is_input:
                lines.append(("", compact_shape(fig.shape)))
            elif index in self.graph.output_nodes:
                key = next((k for k, i in self.graph.outputs if i == index and k), None)
                label = f"output {key}" if key else "output"
                lines.append(("", f"{label} {compact_shape(fig.shape)}"))
                penwidth = "2"
            lines += self.figure_lines(fig.params, fig.macs, rf_text(fig.rf))
            figures = []
            if fig.shape is not None:
                figures.append(f"output {compact_shape(fig.shape)}")
            if fig.params:
                figures.append(f"params {fig.params:,}")
            if fig.macs:
                figures.append(f"MACs {fig.macs:,}")
            if fig.rf is not None:
                figures.append(f"receptive field {rf_text(fig.rf)}")
            tip.append(", ".join(figures))
        if node.index in self.status.warnings:
            if node.index not in self.status.errors:
                border = WARNING_BORDER
                penwidth = "2"
                self.kinds_used.add("warning")
            tip.append(_diag_text(self.status.warnings[node.index]))
        attrs = [("label", html_label(lines)), ("tooltip", tooltip("\n".join(t for t in tip if t)))]
        if node.is_input:
            attrs.append(("shape", "oval"))
            style = "filled"
        attrs += [("style", quoted(style)), ("fillcolor", quoted(fill)), ("color", quoted(border))]
        if penwidth != "1":
            attrs.append(("penwidth", penwidth))
        if fontcolor != "#000000":
            attrs.append(("fontcolor", quoted(fontcolor)))
        return f"{indent}{node_id(index)} {dot_attrs(attrs)};"

    def box_stmt(self, unit: Unit, indent: str) -> str:
        figs = [self.figs[i] for i in unit.nodes]
        node_set = set(unit.nodes)
        outputs = [i for i in unit.nodes
                   if i in self.graph.output_nodes or any(c not in node_set for c in self.consumers[i])]
        last = outputs[-1] if outputs else unit.nodes[-1]
        params = sum(f.params for f in figs)
        macs = sum(f.macs for f in figs)
        errors = [i for i in unit.nodes if i in self.status.errors]
        skipped = [i for i in unit.nodes if i in self.status.skipped]
        warned = [i for i in unit.nodes if i in self.status.warnings]
        # A box's path is already its name where the spec named the block (`as layer1`).
        names = [n for i in outputs if (n := self.graph.nodes[i].name) and n != unit.key]
        lines: list[tuple[str, str]] = [("b", unit.title)]
        lines.append(("s", unit.key + "".join(f" as {n}" for n in names)))
        shape = self.figs[last].shape
        if "shapes" in self.show or last in self.graph.output_nodes:
            lines.append(("", compact_shape(shape)))
        lines += self.figure_lines(params, macs, rf_text(self.figs[last].rf))
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
            lines += [("e", line) for line in wrapped(diags[0].message if diags else "")]
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
        attrs = [("label", html_label(lines)), ("tooltip", tooltip("\n".join(tip))), ("shape", "box3d"),
                 ("margin", quoted("0.15,0.07")), ("style", quoted(style)), ("fillcolor", quoted(fill)),
                 ("color", quoted(border)), ("penwidth", penwidth)]
        if fontcolor != "#000000":
            attrs.append(("fontcolor", quoted(fontcolor)))
        return f"{indent}{box_id(unit)} {dot_attrs(attrs)};"
