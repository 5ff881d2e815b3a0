"""The summary as HTML, for notebooks (``Model._repr_html_``): the text table's rows and totals, styled.

One self-contained fragment: a scoped stylesheet (light, and dark under the notebook's dark theme or
the system's), the title, the layers with each block folded into a ``<details>`` whose summary row
holds its subtotals, the totals once, the diagnostics, and the diagram as inline SVG when Graphviz's
``dot`` is installed. Every table shares one set of column widths, so the folded and unfolded rows
line up. Every string from the spec is escaped.
"""

from __future__ import annotations

from html import escape

from specdsl.ops.rule import fmt_shape
from specdsl.render.figures import Checked
from specdsl.render.table import Row, path_depth, path_prefix, rows, summary_lines

__all__ = ["model_html"]

_HEADER = ("Layer", "Op", "Output", "Params", "MACs", "RF size/stride/pad")
_NUMERIC = {3, 4}
_WIDTHS = ("30%", "14%", "16%", "11%", "14%", "15%")
# Above this many nodes the diagram is left out (Graphviz's layout time grows faster than the graph).
MAX_DIAGRAM_NODES = 600

# Scoped to .specdsl-summary; dark under JupyterLab's dark theme, VS Code's, or the system's preference.
_STYLE = """<style>
.specdsl-summary{--fg:#1f2328;--muted:#656d76;--bg:#ffffff;--head:#f6f8fa;--line:#d0d7de;--hover:#f3f6fa;
--err:#cf222e;--warn:#9a6700;font:13px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);
background:var(--bg);max-width:1100px;padding:4px 0}
@media (prefers-color-scheme:dark){.specdsl-summary{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--head:#161b22;
--line:#30363d;--hover:#1c2330;--err:#ff7b72;--warn:#d29922}}
body[data-jp-theme-light="false"] .specdsl-summary,body.vscode-dark .specdsl-summary,
html[theme="dark"] .specdsl-summary{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--head:#161b22;--line:#30363d;
--hover:#1c2330;--err:#ff7b72;--warn:#d29922}
.specdsl-summary .title{font-weight:600;font-size:14px;margin:2px 0 6px}
.specdsl-summary .title span{font-weight:400;color:var(--muted)}
.specdsl-summary table{width:100%;table-layout:fixed;border-collapse:collapse;margin:0}
.specdsl-summary th,.specdsl-summary td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:left;
overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-variant-numeric:tabular-nums}
.specdsl-summary th{background:var(--head);font-weight:600;border-bottom:2px solid var(--line)}
.specdsl-summary td.num,.specdsl-summary th.num{text-align:right}
.specdsl-summary td.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.specdsl-summary tr:hover td{background:var(--hover)}
.specdsl-summary tr.failed td{color:var(--err)}
.specdsl-summary details>summary{list-style:none;cursor:pointer}
.specdsl-summary details>summary::-webkit-details-marker{display:none}
.specdsl-summary details>summary td:first-child::before{content:"\\25B8";display:inline-block;width:1.1em;
color:var(--muted)}
.specdsl-summary details[open]>summary td:first-child::before{content:"\\25BE"}
.specdsl-summary details>summary td{font-weight:600}
.specdsl-summary details table td:first-child{padding-left:2.1em}
.specdsl-summary dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:10px 0 4px}
.specdsl-summary dt{color:var(--muted)}
.specdsl-summary dd{margin:0;font-variant-numeric:tabular-nums}
.specdsl-summary ul.diags{margin:8px 0;padding-left:1.2em}
.specdsl-summary li.error{color:var(--err)}
.specdsl-summary li.warning{color:var(--warn)}
.specdsl-summary .diagram{margin-top:8px}
.specdsl-summary .diagram>summary{color:var(--muted);font-weight:600}
.specdsl-summary .diagram svg{max-width:100%;height:auto;background:#fff;border-radius:4px}
</style>"""


def model_html(model: Checked, depth: int | None = None, diagram: bool = True) -> str:
    """The fragment; ``depth`` folds rows nested deeper into their block (the default folds each
    top-level block into a ``<details>``), ``diagram`` adds the inline SVG when ``dot`` is installed."""
    g, t = model.graph, model.analysis.totals
    title = (f'<div class="title">{escape(g.model)} <span>— input {escape(fmt_shape(g.input_shape))} '
             f"{escape(g.dtype)}, batch {t.batch}</span></div>")
    parts = ['<div class="specdsl-summary">', _STYLE, title, _table([_header()], head=True)]
    parts += _layers(model, depth)
    parts.append(_totals(model))
    diags = "".join(f'<li class="{escape(d.severity)}">{escape(d.severity)} {escape(d.code)}: '
                    f"{escape(d.message)}</li>" for d in model.analysis.diagnostics)
    if diags:
        parts.append(f'<ul class="diags">{diags}</ul>')
    if diagram:
        parts.append(_diagram(model))
    parts.append("</div>")
    return "".join(parts)


def _layers(model: Checked, depth: int | None) -> list[str]:
    """Top-level rows as tables, each block a <details> holding its own rows (or nothing deeper at ``depth``)."""
    top = rows(model, 1 if depth is None else depth)
    leaves = rows(model, None if depth is None else depth + 1)
    members: dict[str, list[Row]] = {}
    for r in leaves:
        path = r.label.split(" (", 1)[0]
        if path_depth(path) > (1 if depth is None else depth):
            members.setdefault(path_prefix(path, 1 if depth is None else depth), []).append(r)
    out: list[str] = []
    plain: list[str] = []
    for r in top:
        inside = members.get(r.label)
        if not inside:
            plain.append(_row(r))
            continue
        if plain:
            out.append(_table(plain))
            plain = []
        out.append(f"<details><summary>{_table([_row(r)])}</summary>{_table([_row(m) for m in inside])}</details>")
    if plain:
        out.append(_table(plain))
    return out


def _header() -> str:
    return "<tr>" + "".join(f'<th class="{"num" if i in _NUMERIC else ""}">{escape(h)}</th>'
                            for i, h in enumerate(_HEADER)) + "</tr>"


def _row(r: Row) -> str:
    cells = (r.label, r.op, r.shape, f"{r.params:,}" if r.params else "", f"{r.macs:,}" if r.macs else "", r.rf)
    kinds = ("mono", "", "mono", "num", "num", "mono")
    css = ' class="failed"' if r.failed or r.shape == "error" else ""
    return f"<tr{css}>" + "".join(f'<td class="{k}" title="{escape(c)}">{escape(c)}</td>'
                                  for k, c in zip(kinds, cells)) + "</tr>"


def _table(body: list[str], head: bool = False) -> str:
    cols = "".join(f'<col style="width:{w}">' for w in _WIDTHS)
    section = "thead" if head else "tbody"
    return f"<table><colgroup>{cols}</colgroup><{section}>{''.join(body)}</{section}></table>"


def _totals(model: Checked) -> str:
    """The text table's summary lines once, as a definition list (`Params:  ...`)."""
    items = []
    for line in summary_lines(model):
        key, sep, value = line.partition(":")
        items.append(f"<dt>{escape(key)}</dt><dd>{escape(value.strip())}</dd>" if sep else
                     f"<dt></dt><dd>{escape(line)}</dd>")
    return f"<dl>{''.join(items)}</dl>"


def _diagram(model: Checked) -> str:
    """The graph as inline SVG in a folded <details>, or nothing without Graphviz (or for a huge graph)."""
    from specdsl.render.dot import to_dot
    from specdsl.render.graphviz import DotFailed, find_dot, render

    if find_dot() is None or len(model.graph.nodes) > MAX_DIAGRAM_NODES:
        return ""
    try:
        svg = render(to_dot(model), "svg").decode("utf-8")
    except DotFailed:
        return ""
    start = svg.find("<svg")  # drop the XML prolog and doctype: the SVG sits inside HTML
    return "" if start < 0 else f'<details class="diagram"><summary>Diagram</summary>{svg[start:]}</details>'
