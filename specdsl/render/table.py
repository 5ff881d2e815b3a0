"""The summary table of a checked model: one row per layer (or per folded block), then the totals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from specdsl.ops.rule import axes_text, fmt_shape
from specdsl.passes.receptive import global_suffix
from specdsl.render.figures import (
    FULL_CONVENTION,
    MACS_CONVENTION,
    Checked,
    human,
    node_figures,
    op_summary,
    path_segments,
    rf_text,
)

__all__ = ["Row", "human_bytes", "rows", "summary_lines", "table"]


def human_bytes(n: int) -> str:
    for scale, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {suffix}"
    return f"{n} B"


def path_depth(path: str) -> int:
    return len(path_segments(path))


def path_prefix(path: str, depth: int) -> str:
    out = ""
    for seg in path_segments(path)[:depth]:
        out += seg if seg.startswith("[") or not out else "." + seg
    return out


@dataclass
class Row:
    label: str
    op: str
    shape: str
    params: int
    macs: int
    rf: str
    failed: bool = False
    saved: int = 0  # bytes kept for backward (with --train)


def rows(model: Checked, depth: int | None = None, saved: Sequence[int] | None = None) -> list[Row]:
    """Table rows; with ``depth``, nodes deeper than it fold into their ancestor with subtotals.
    ``saved``: per node, the bytes it is first to keep for backward (a training step's memory)."""
    out: list[Row] = []
    groups: dict[str, Row] = {}
    copies: dict[str, set[str]] = {}
    shapes: dict[int, str] = {}
    for node, fig in node_figures(model):
        if node.is_input:
            out.append(Row("input", "input", fmt_shape(fig.shape or ()), 0, 0, rf_text(fig.rf)))
            continue
        label = node.path if not node.name or node.path == node.name else f"{node.path} ({node.name})"
        shape = fmt_shape(fig.shape) if fig.shape else "error" if not fig.failed else "—"
        shapes[node.index] = shape
        if depth is not None and path_depth(node.path) > depth:
            key = path_prefix(node.path, depth)
            row = groups.get(key)
            if row is None:
                kind = "list" if key in model.graph.lists else \
                    model.graph.blocks.get(key) or model.graph.blocks.get(key + "[0]", "block")
                row = Row(key, kind, shape, 0, 0, "")
                groups[key] = row
                copies[key] = set()
                out.append(row)
            rest = node.path[len(key):]
            if rest.startswith("[") and key not in model.graph.blocks:  # the copies of a named repeat
                copies[key].add(rest.split("]", 1)[0])
                row.op = f"{row.op.split(' ×')[0]} ×{len(copies[key])}"
            row.params += fig.params
            row.macs += fig.macs
            row.saved += saved[node.index] if saved else 0
            row.shape = shape
            row.rf = rf_text(fig.rf)
            row.failed |= fig.failed
            continue
        out.append(Row(label, op_summary(node, fig), shape, fig.params, fig.macs, rf_text(fig.rf), fig.failed,
                       saved[node.index] if saved else 0))
    for key, row in groups.items():  # a call with several outputs (or a repeat of one) shows each
        call = model.graph.calls.get(key) or model.graph.calls.get(f"{key}[{len(copies[key]) - 1}]")
        if call is not None and call.outputs:
            row.shape = ", ".join(shapes.get(i, "—") for i in call.outputs)
    return out


def table(model: Checked, depth: int | None = None, full_ops: bool = False,
          saved: Sequence[int] | None = None) -> str:
    """``saved``: per node, bytes kept for backward; adds a "Saved" column (``check --train``)."""
    body = rows(model, depth, saved)
    header: tuple[str, ...] = ("Layer", "Op", "Output", "Params", "MACs", "RF size/stride/pad")
    cells = [header] + [
        (r.label, r.op, r.shape, f"{r.params:,}" if r.params else "", f"{r.macs:,}" if r.macs else "", r.rf)
        for r in body
    ]
    right = {3, 4}
    if saved is not None:
        header = (*header[:5], "Saved", header[5])
        cells = [header] + [(*c[:5], human_bytes(r.saved) if r.saved else "", c[5]) for c, r in zip(cells[1:], body)]
        right = {3, 4, 5}
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]

    def line(c: tuple[str, ...]) -> str:
        return "  ".join(
            (v.rjust(w) if i in right else v.ljust(w)) for i, (v, w) in enumerate(zip(c, widths))
        ).rstrip()

    rule = "─" * (sum(widths) + 2 * (len(widths) - 1))
    g = model.graph
    t = model.analysis.totals
    out = [f"{g.model} — input {fmt_shape(g.input_shape)} {g.dtype}, batch {t.batch}", rule, line(header), rule]
    out += [line(c) for c in cells[1:]]
    out.append(rule)
    out += summary_lines(model, full_ops)
    return "\n".join(out)


def summary_lines(model: Checked, full_ops: bool = False) -> list[str]:
    t = model.analysis.totals
    out = [
        f"Params:      {t.params:,} (trainable {t.trainable:,}, frozen {t.frozen:,}); "
        f"buffers {t.buffers:,}",
        f"MACs:        {t.macs:,} ({human(t.macs)}) per sample — {MACS_CONVENTION}",
        f"FLOPs:       {t.flops:,} ({human(t.flops)}) = 2 × MACs",
    ]
    if full_ops:
        out.append(f"All ops:     {t.macs + t.extra_ops:,} ({human(t.macs + t.extra_ops)}) — {FULL_CONVENTION}")
    out += [
        f"Memory:      params {human_bytes(t.param_bytes)}, buffers {human_bytes(t.buffer_bytes)}, "
        f"input {human_bytes(t.input_bytes)} ({t.dtype}, batch {t.batch})",
        f"Activations: {t.activation_elements:,} elements = {human_bytes(t.activation_bytes)} in all; "
        f"peak live at inference {human_bytes(t.peak_bytes)}",
    ]
    if t.rf_node is not None:
        node = model.graph.nodes[t.rf_node]
        rf = model.analysis.figures[t.rf_node].rf
        assert rf is not None
        if all(a.stride == 0 for a in rf):  # specdsl.ops.merge.WHOLE
            extent = "×".join(map(str, model.graph.input_shape[1:]))
            out.append(f"Receptive field at {node.label}: the whole input ({extent}), through a global pool")
            return out
        sizes = "×".join("whole" if a.stride == 0 else str(a.size) for a in rf)
        strides = axes_text([a.stride for a in rf])
        pads = axes_text([a.pad for a in rf])
        gate = ", and the whole input through a global pool's gate" if global_suffix(rf) else ""
        out.append(f"Receptive field at {node.label}: {sizes}, effective stride {strides}, padding {pads}{gate}")
    return out
