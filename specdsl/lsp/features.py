"""Hover text, inlay hints, definitions and document symbols, read off a document's Index.

Plain data in and out (1-based spans, markdown strings); the server turns them into protocol types.
Shapes are written as code (`` `[256, 56, 56]` ``): a bracketed list in markdown prose or a table
is link syntax to some renderers (Neovim's), which hide the brackets.
The figures are the ones `check` prints, from the same passes: op summaries and receptive fields
come from specdsl.render.figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specdsl.blocks.registry import BLOCKS
from specdsl.lsp.index import Index, Site, Span
from specdsl.ops import lookup
from specdsl.ops.rule import fmt_shape
from specdsl.render.figures import human, op_summary, rf_text
from specdsl.render.printer import dsl_scalar
from specdsl.source import format_path

__all__ = ["Symbol", "definition", "hover", "inlay_hints", "ref_names", "symbols"]

_MAX_SHAPES = 3  # distinct shapes shown for a layer expanded by several calls


def _shapes(ix: Index, nodes: list[int]) -> list[str]:
    figures = ix.doc.figures or []
    seen: list[str] = []
    for i in nodes:
        shape = figures[i].shape if i < len(figures) else None
        text = fmt_shape(shape) if shape is not None else "?"
        if text not in seen:
            seen.append(text)
    return seen


def _final_outputs(site: Site) -> list[int]:
    """The output of each repeat run: a layer written `x3` is one line, and its result is the third copy's."""
    return site.outputs[site.repeat - 1::site.repeat] if site.repeat > 1 else site.outputs


def inlay_hints(ix: Index, first: int = 1, last: int | None = None) -> list[tuple[int, int, str]]:
    """(line, column after the line's text, label): the output shape of the last layer on each line."""
    out: list[tuple[int, int, str]] = []
    for line, sites in ix.by_line():
        if line < first or (last is not None and line > last):
            continue
        site = max((s for s in sites if s.outputs), key=lambda s: s.key[1], default=None)
        if site is None:
            continue
        shapes = _shapes(ix, _final_outputs(site))
        label = " | ".join(shapes[:_MAX_SHAPES]) + (" | …" if len(shapes) > _MAX_SHAPES else "")
        if site.repeat > 1:
            label = f"×{site.repeat} → {label}"
        text = ix.lines[line - 1] if line <= len(ix.lines) else ""
        out.append((line, len(text.rstrip()) + 1, f"  {label}"))
    return out


def _args_text(args: Any) -> list[str]:
    given = args.model_fields_set
    out = []
    for name, f in type(args).model_fields.items():
        key = f.alias or name
        value = getattr(args, name)
        if value is None and name not in given:
            continue
        out.append(f"`{key}={dsl_scalar(value)}`" + ("" if name in given else " (default)"))
    return out


def _static_args(op: str) -> list[str]:
    rule = lookup(op)
    model = rule.args if rule else BLOCKS[op].args if op in BLOCKS else None
    if model is None:
        return []
    return [f"`{f.alias or n}`" if f.is_required() else f"`{f.alias or n}={dsl_scalar(f.default)}`"
            for n, f in model.model_fields.items()]


def _op_text(ix: Index, site: Site) -> str:
    rule = lookup(site.op)
    lines = [f"**{site.op}** — {rule.doc if rule else 'not an op or block of specdsl (`specdsl ops` lists them)'}"]
    graph, figures = ix.doc.graph, ix.doc.figures
    if graph is None or figures is None or not site.outputs:
        args = _static_args(site.op)
        if args:
            lines.append("arguments: " + ", ".join(args))
        lines.append(_no_figures(ix))
        return "\n\n".join(x for x in lines if x)
    node, fig = graph.nodes[site.outputs[0]], figures[site.outputs[0]]
    lines[0] += f" · `{op_summary(node, fig)}`"
    if node.args is not None:
        lines.append("arguments: " + ", ".join(_args_text(node.args)))
    shapes = _shapes(ix, site.outputs)
    figs = ["output " + " | ".join(f"`{x}`" for x in shapes[:_MAX_SHAPES])]
    if fig.params:
        figs.append(f"params {fig.params:,}" + (f" ({fig.frozen:,} frozen)" if fig.frozen else ""))
    if fig.buffers:
        figs.append(f"buffers {fig.buffers:,}")
    if fig.macs:
        figs.append(f"MACs {fig.macs:,} ({human(fig.macs)})")
    if fig.rf is not None:
        figs.append(f"RF {rf_text(fig.rf)} (size/stride/pad)")
    lines.append(" · ".join(figs))
    if len(site.outputs) > 1:
        lines.append(f"expanded {len(site.outputs)} times (block calls and repeats); figures of the first")
    return "\n\n".join(lines)


def _block_text(ix: Index, site: Site) -> str:
    user = site.op in ix.block_names
    doc = "user block" if site.op in ix.block_names else BLOCKS[site.op].doc if site.op in BLOCKS else ""
    lines = [f"**{site.op}** — {doc}"]
    graph, figures = ix.doc.graph, ix.doc.figures
    if graph is None or figures is None or not site.instances:
        args = [] if user else _static_args(site.op)
        if args:
            lines.append("arguments: " + ", ".join(args))
        lines.append(_no_figures(ix))
        return "\n\n".join(x for x in lines if x)
    rows = []
    total_params = total_macs = 0
    for call, nodes, out in zip(site.calls, site.instances, site.outputs, strict=True):
        params = sum(figures[i].params for i in nodes)
        macs = sum(figures[i].macs for i in nodes)
        total_params += params
        total_macs += macs
        shape = figures[out].shape
        given = graph.calls[call].params if call in graph.calls else {}
        shown = ", ".join(f"{k}={dsl_scalar(v)}" for k, v in given.items())
        rows.append(f"| `{call}` | {shown} | `{fmt_shape(shape) if shape else '?'}` | {params:,} | {macs:,} |")
    lines.append("| call | arguments | output | params | MACs |\n|---|---|---|---:|---:|\n" + "\n".join(rows[:8])
                 + (f"\n| … {len(rows) - 8} more | | | | |" if len(rows) > 8 else ""))
    if len(rows) > 1:
        lines.append(f"subtotal of {len(rows)} calls: params {total_params:,} · MACs {total_macs:,} "
                     f"({human(total_macs)})")
    return "\n\n".join(lines)


def _no_figures(ix: Index) -> str:
    if ix.doc.upstream_of is not None:
        return "_no figures: downstream of the first error (the layers before it have theirs)_"
    return "_no figures: the spec has errors_" if ix.doc.diagnostics else ""


def site_text(ix: Index, site: Site) -> str:
    if site.op in ix.block_names or site.op in BLOCKS:
        return _block_text(ix, site)
    return _op_text(ix, site)


def hover(ix: Index, line: int, col: int) -> tuple[str, Span] | None:
    ref = ix.ref_at(line, col)
    if ref is not None:
        name, scope, span = ref
        base = name.partition(".")[0]
        target = ix.named(base, scope)
        if target is not None:
            return f"`@{name}` → `{format_path(target.path)}`\n\n" + site_text(ix, target), span
        if base == "input" or ix.block_input(scope, base):
            what = f"the input of block '{scope}'" if scope else "the model's input"
            shape = ix.doc.graph.input_shape if ix.doc.graph is not None and scope is None else None
            return f"`@{name}`: {what}" + (f" `{fmt_shape(shape)}`" if shape else ""), span
        return None
    site = ix.site_at(line, col)
    if site is None:
        return None
    return site_text(ix, site), site.key


def ref_names(ix: Index, line: int) -> list[str]:
    """The names an `@ref` (YAML: an `inputs:` entry) on the line may use: `input`, the inputs a block
    declares and the named layers of the scope the line is in (a block's body, or the model's layers)."""
    smap = ix.doc.smap
    scope = None
    for name in ix.block_names:
        loc = smap.values.get(("blocks", name)) if smap is not None else None
        if loc is not None and loc.line <= line <= (loc.end_line or loc.line):
            scope = name
    names = ["input"]
    if scope is not None and isinstance(ix.doc.data, dict):
        declared = (ix.doc.data.get("blocks") or {}).get(scope)
        inputs = declared.get("inputs") if isinstance(declared, dict) else None
        names += [n for n in inputs or () if isinstance(n, str)]
    names += [s.name for s in ix.sites if s.name and s.scope == scope]
    return list(dict.fromkeys(names))


def definition(ix: Index, line: int, col: int) -> Span | None:
    """Where the block called, or the node referred to, at the cursor is defined."""
    ref = ix.ref_at(line, col)
    if ref is not None:
        name, scope, _ = ref
        # The longest prefix that names a layer: `@convs.1` is the list member `convs.1`, `@stage2.0.1`
        # an output of the call `stage2.0`, `@s.0` a part of the split `s`.
        parts = name.split(".")
        for k in range(len(parts), 0, -1):
            target = ix.named(".".join(parts[:k]), scope)
            if target is not None:
                return target.name_span or target.span
        return ix.block_input(scope, parts[0])
    site = ix.site_at(line, col)
    if site is not None and site.op in ix.block_names:
        return ix.block_def(site.op)
    return None


@dataclass
class Symbol:
    name: str
    detail: str
    kind: str  # "block" | "node" | "layers"
    span: Span
    selection: Span
    children: list[Symbol]


def symbols(ix: Index) -> list[Symbol]:
    """The user blocks (with the named nodes inside them) and the model's named nodes."""
    smap = ix.doc.smap
    if smap is None:
        return []
    from specdsl.lsp.index import span_of

    def named(scope: str | None) -> list[Symbol]:
        return [Symbol(s.name or "", s.op, "node", _union(s.span, s.name_span or s.key), s.name_span or s.key, [])
                for s in ix.sites if s.name and s.scope == scope]

    out = []
    for name in ix.block_names:
        whole = smap.values.get(("blocks", name))
        key = smap.keys.get(("blocks", name)) or whole
        if whole is None or key is None:
            continue
        sel = span_of(key, ix.lines)
        out.append(Symbol(name, "block", "block", _union(span_of(whole, ix.lines), sel), sel, named(name)))
    layers = smap.values.get(("layers",))
    if layers is not None:
        key = smap.keys.get(("layers",)) or layers
        sel = span_of(key, ix.lines)
        out.append(Symbol("layers", f"{len(ix.doc.data.get('layers') or [])} layers", "layers",
                          _union(span_of(layers, ix.lines), sel), sel, named(None)))
    return out


def _union(a: Span, b: Span) -> Span:
    start = min(a[:2], b[:2])
    end = max(a[2:], b[2:])
    return start[0], start[1], end[0], end[1]
