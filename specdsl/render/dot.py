"""Graph diagrams: the checked graph as Graphviz DOT text.

The DOT text is generated here, deterministically (same spec, same bytes), with every piece of
spec text escaped; :mod:`specdsl.render.graphviz` runs the `dot` program on it. Blocks become
clusters, expanded or collapsed to a depth (:mod:`~specdsl.render.dot_layout`); ops and collapsed
blocks become boxes (:mod:`~specdsl.render.dot_nodes`), coloured by :mod:`~specdsl.render.dot_style`.

Edges carry tensor shapes where they change; edges into a merge are drawn by what the merge does
with them (its rule's traits): residual shortcuts of a sum dashed, inputs of a concatenation and
of an average coloured. A concatenation whose inputs begin with all the inputs of an earlier one
(a DenseNet layer) is drawn fed by that earlier one, the same tensor, so a dense block keeps one
edge per layer instead of one per earlier feature map.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from specdsl.ops import OPS
from specdsl.ops.channels import PART
from specdsl.ops.rule import Trait
from specdsl.render.dot_layout import Fold, Unit, fold, layout
from specdsl.render.dot_nodes import Boxes, item_id
from specdsl.render.dot_style import (
    CLUSTER_COLOURS,
    EDGE_COLOUR,
    FONT,
    STACKED,
    compact_shape,
    dot_attrs,
    html_label,
    legend,
    merge_input,
    merge_kind,
    quoted,
    tooltip,
)
from specdsl.render.figures import Checked, human

if TYPE_CHECKING:
    from specdsl.ir import Graph
    from specdsl.passes.analysis import NodeFigures

__all__ = ["DEFAULT_SHOW", "RANKDIRS", "SHOW_CHOICES", "to_dot"]

# A drawn edge: (source item, destination item, source node, destination node, input position).
Edge = tuple[str, str, int, int, int]

SHOW_CHOICES = ("shapes", "params", "macs", "rf")
DEFAULT_SHOW = ("shapes", "params", "macs")
RANKDIRS = ("TB", "LR")
MAX_LABELLED_MERGE = 4  # inputs of a merge above which its input edges go unlabelled


def concat_prefixes(graph: Graph, figs: list[NodeFigures]) -> dict[int, int]:
    """concat node -> an earlier concat whose inputs start its own (a DenseNet layer's features).

    concat(a, b, c) is concat(concat(a, b), c): drawing the earlier concat's output in place of
    its inputs shows the same tensor with one edge instead of one per earlier feature map, which
    keeps a DenseNet block linear in edges (and readable; `dot` chokes on the full fan-in).
    """
    seen: dict[tuple[Any, ...], int] = {}
    out: dict[int, int] = {}
    for node, fig in zip(graph.nodes, figs):
        rule = OPS.get(node.op)
        if rule is None or merge_kind(rule) is not STACKED or fig.shape is None:
            continue
        dim = getattr(fig.attrs, "dim", None)
        for k in range(len(node.inputs) - 1, 1, -1):
            earlier = seen.get((node.op, dim, node.inputs[:k]))
            if earlier is not None:
                out[node.index] = earlier
                break
        seen[(node.op, dim, node.inputs)] = node.index
    return out


class _Writer:
    def __init__(self, model: Checked, expand: int | str | None, rankdir: str, show: Iterable[str],
                 wrap: int | None):
        self.graph = model.graph
        self.figs = model.analysis.figures
        self.totals = model.analysis.totals
        self.show = set(show)
        self.rankdir = rankdir
        self.layout = layout(self.graph, expand)
        self.boxes = Boxes(self.graph, model.analysis, self.show)
        self.out: list[str] = []
        self.drawn = self.drawn_edges()
        self.fold = self.folded(wrap)

    def emit_items(self, items: list[tuple[str, Any]], depth: int, column: int | None = None) -> None:
        """The items' statements; with ``column``, only those drawn in that column of a folded graph."""
        indent = "    " * depth
        for kind, value in items:
            if kind in ("node", "box") and column is not None and self.fold.column_of[item_id((kind, value))] != column:
                continue
            if kind == "node":
                self.out.append(self.boxes.node_stmt(value, indent))
            elif kind == "box":
                self.out.append(self.boxes.box_stmt(value, indent))
            else:
                unit: Unit = value
                cols = sorted({self.fold.column_of[item_id(self.layout.owner[i])] for i in unit.nodes})
                if column is not None and column not in cols:
                    continue
                # A block cut by a fold is drawn as one cluster per column, the later ones "continued".
                more = column is not None and column != cols[0]
                fill, border = CLUSTER_COLOURS
                self.out.append(f"{indent}subgraph cluster_{unit.nodes[0]}{f'_{column}' if more else ''} {{")
                label = html_label([("b", unit.title + (" (continued)" if more else "")), ("s", unit.key)])
                params = sum(self.figs[i].params for i in unit.nodes)
                macs = sum(self.figs[i].macs for i in unit.nodes)
                tip = f"{unit.key}: {unit.title}, params {params:,}, MACs {macs:,}"
                attrs = [("label", label), ("tooltip", tooltip(tip)), ("style", quoted("rounded,filled")),
                         ("fillcolor", quoted(fill)), ("color", quoted(border)), ("labeljust", "l"), ("fontsize", "11")]
                self.out.append(f"{indent}    graph {dot_attrs(attrs)};")
                self.emit_items(unit.items, depth + 1, column)
                self.out.append(f"{indent}}}")

    def emit_columns(self) -> None:
        """A folded graph's items, one borderless cluster per column; the columns' first items share a
        rank and are chained by invisible edges, which sets them side by side, in order."""
        for c in range(self.fold.columns):
            self.out.append(f"    subgraph cluster_column{c} {{")
            self.out.append(f"        graph [label=\"\", peripheries=0, tooltip={tooltip(f'column {c + 1}')}];")
            self.emit_items(self.layout.items, 2, c)
            self.out.append("    }")
        heads = self.fold.heads
        self.out.append(f"    {{ rank=same; {'; '.join(heads)}; }}")
        self.out += [f"    {a} -> {b} [style=invis];" for a, b in pairwise(heads)]

    def label_edge(self, u: int, from_box: bool, into_merge: bool, n_inputs: int) -> bool:
        """Shapes go on edges where they change: out of the input, a box or a node that reshapes,
        and on every input of a merge; a chain of same-shape ops (bn, relu, ...) stays quiet.
        An edge out of a split always says which part it carries."""
        src = self.graph.nodes[u]
        if self.figs[u].shape is not None and src.op == PART:
            return True
        if n_inputs > MAX_LABELLED_MERGE or self.figs[u].shape is None:
            return False  # a DenseNet concat of 40 earlier maps: the concat's own output edge says it
        if into_merge:
            return True
        if from_box:
            return False  # the box says its output shape
        if not src.inputs:
            return True
        return self.figs[u].shape != self.figs[src.inputs[0]].shape

    def drawn_edges(self) -> list[Edge]:
        """Every edge drawn, in the graph's order; a DenseNet concat's earlier inputs come through the
        earlier concat that has them (:func:`concat_prefixes`)."""
        owner = self.layout.owner
        seen: set[tuple[str, str, int]] = set()
        prefixes = concat_prefixes(self.graph, self.figs)
        out: list[Edge] = []
        for node in self.graph.nodes:
            dst = item_id(owner[node.index])
            inputs: list[tuple[int, int]] = list(enumerate(node.inputs))
            via = prefixes.get(node.index)
            if via is not None:
                k = len(self.graph.nodes[via].inputs)
                inputs = [(0, via), *inputs[k:]]
            for pos, u in inputs:
                src = item_id(owner[u])
                if src == dst or (src, dst, u) in seen:
                    continue
                seen.add((src, dst, u))
                out.append((src, dst, u, node.index, pos))
        return out

    def folded(self, wrap: int | None) -> Fold:
        order: list[str] = []
        clusters: list[list[str]] = []

        def walk(items: list[tuple[str, Any]]) -> list[str]:
            ids: list[str] = []
            for kind, value in items:
                if kind == "unit":
                    inner = walk(value.items)
                    clusters.append(inner)
                    ids += inner
                else:
                    order.append(item_id((kind, value)))
                    ids.append(order[-1])
            return ids

        walk(self.layout.items)
        return fold(order, [(src, dst) for src, dst, *_ in self.drawn], clusters, wrap)

    def edges(self) -> None:
        labelled: set[int] = set()  # a tensor fanning out to plain ops is labelled on its first edge only
        prefixes = concat_prefixes(self.graph, self.figs)
        for src, dst, u, v, pos in self.drawn:
            node = self.graph.nodes[v]
            rule = OPS.get(node.op)
            into_merge = rule is not None and rule.has(Trait.MERGE)
            via = prefixes.get(v)
            n_inputs = len(node.inputs) if via is None else 1 + len(node.inputs) - len(self.graph.nodes[via].inputs)
            attrs: list[tuple[str, str]] = []
            if ("shapes" in self.show and self.label_edge(u, self.layout.owner[u][0] == "box", into_merge, n_inputs)
                    and (u not in labelled or into_merge)):
                part = f".{self.figs[u].attrs.index} " if self.graph.nodes[u].op == PART else ""
                attrs.append(("label", quoted(" " + part + compact_shape(self.figs[u].shape) + " ")))
                labelled.add(u)
            tip = f"{self.graph.nodes[u].path} → {node.path}"
            if u == via:
                tip += (f" (stands for inputs 1-{len(self.graph.nodes[via].inputs)} of this {node.op}, "
                        f"which are the inputs of {self.graph.nodes[via].path})")
            edge = merge_input(rule, pos) if rule is not None else None
            if edge is not None:
                attrs += edge.attrs()
                self.boxes.kinds_used.add(edge.kind)
                tip += " (" + edge.tip.format(op=node.op, n=pos + 1) + ")"
            if self.fold.crosses(src, dst):
                # Ranks are counted within each column: an edge into the next column does not push it down.
                attrs.append(("constraint", "false"))
            attrs.append(("tooltip", tooltip(tip)))
            self.out.append(f"    {src} -> {dst} {dot_attrs(attrs)};")

    def write(self) -> str:
        g, t = self.graph, self.totals
        head = len(self.out)
        if self.fold.columns == 1:
            self.emit_items(self.layout.items, 1)
        else:
            self.emit_columns()
        self.edges()
        n_err = len(self.boxes.status.errors)
        sub = f"{t.params:,} params · {human(t.macs)} MACs"
        if n_err:
            sub = f"{n_err} failing layer(s), in red · figures so far: {sub}"
        label = legend(f"{g.model} — input {compact_shape(g.input_shape)}", sub, self.boxes.families_used,
                       self.boxes.kinds_used)
        graph_attrs = [("rankdir", self.rankdir), ("label", label), ("labelloc", "t"),
                       ("labeljust", "l" if self.rankdir == "LR" else "c"),
                       ("fontname", quoted(FONT)), ("fontsize", "14"), ("newrank", "true"), ("nodesep", "0.25"),
                       ("ranksep", "0.3"), ("tooltip", tooltip(g.model))]
        node_attrs = [("shape", "box"), ("style", quoted("rounded,filled")), ("fontname", quoted(FONT)),
                      ("fontsize", "10"), ("margin", quoted("0.1,0.03")), ("height", "0.3")]
        edge_attrs = [("fontname", quoted(FONT)), ("fontsize", "8"), ("color", quoted(EDGE_COLOUR)),
                      ("fontcolor", quoted("#444444")), ("arrowsize", "0.6")]
        self.out[head:head] = [
            f"digraph {quoted(g.model)} {{",
            f"    graph {dot_attrs(graph_attrs)};",
            f"    node {dot_attrs(node_attrs)};",
            f"    edge {dot_attrs(edge_attrs)};",
        ]
        self.out.append("}")
        return "\n".join(self.out) + "\n"


def to_dot(model: Checked, *, expand: int | str | None = 0, rankdir: str = "TB",
           show: Iterable[str] = DEFAULT_SHOW, wrap: int | None = 1) -> str:
    """The model's graph as DOT text: deterministic, every spec string escaped.

    ``expand``: blocks nested this deep or deeper are drawn collapsed (None: none are); see
    :func:`~specdsl.render.dot_layout.layout` and :func:`parse_expand` for its textual form.
    ``wrap``: fold the graph into this many columns (rows with rankdir LR); None folds a graph too
    deep to read on a screen (:func:`~specdsl.render.dot_layout.auto_columns`), 1 never folds.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {RANKDIRS}; received {rankdir!r}")
    return _Writer(model, expand, rankdir, show, wrap).write()
