"""The summary table as HTML, for notebooks (``Model._repr_html_``): the same rows and totals as the text table."""

from __future__ import annotations

from html import escape

from specdsl.ops.rule import fmt_shape
from specdsl.render.figures import Checked
from specdsl.render.table import rows, summary_lines

__all__ = ["model_html"]

_HEADER = ("Layer", "Op", "Output", "Params", "MACs", "RF size/stride/pad")
_RIGHT = {3, 4}


def model_html(model: Checked, depth: int | None = None) -> str:
    g = model.graph
    t = model.analysis.totals
    head = "".join(f'<th style="text-align:{"right" if i in _RIGHT else "left"}">{escape(h)}</th>'
                   for i, h in enumerate(_HEADER))
    body = []
    for r in rows(model, depth):
        cells = (r.label, r.op, r.shape, f"{r.params:,}" if r.params else "", f"{r.macs:,}" if r.macs else "", r.rf)
        style = ' style="color:#b00"' if r.failed or r.shape == "error" else ""
        body.append(f"<tr{style}>" + "".join(
            f'<td style="text-align:{"right" if i in _RIGHT else "left"}">{escape(c)}</td>'
            for i, c in enumerate(cells)) + "</tr>")
    totals = "<br>".join(escape(line) for line in summary_lines(model))
    title = f"{g.model} — input {fmt_shape(g.input_shape)} {g.dtype}, batch {t.batch}"
    diags = "".join(f"<li>{escape(d.severity)} {escape(d.code)}: {escape(d.message)}</li>"
                    for d in model.analysis.diagnostics)
    return (f"<div><strong>{escape(title)}</strong>"
            f'<table style="font-family:monospace"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
            f'<p style="font-family:monospace">{totals}</p>'
            + (f"<ul>{diags}</ul>" if diags else "") + "</div>")
