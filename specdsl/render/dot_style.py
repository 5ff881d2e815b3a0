"""How the diagram looks: colours, escaping of spec text into DOT, HTML-like labels and the legend.

Colours of nodes follow the op's family (``OpRule.family``); colours of edges into a merge follow
the merge's traits (:func:`merge_input`), so a new op is drawn by what its rule says it is.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from specdsl.ops import OPS, OpRule
from specdsl.ops.rule import Trait

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
LEGEND_GAP = 8  # points between two entries of the legend, beside the cells' own spacing
FONT = "Helvetica,Arial,sans-serif"


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


# --------------------------------------------------------------------------- labels

def compact_shape(shape: Iterable[int] | None) -> str:
    return "?" if shape is None else "×".join(str(d) for d in shape)


def wrapped(text: str, width: int = 36, max_lines: int = 4) -> list[str]:
    """A message broken into short lines for a label (the full text is in the tooltip)."""
    lines = textwrap.wrap(text, width, break_long_words=True)
    if len(lines) > max_lines:
        lines = [*lines[:max_lines - 1], lines[max_lines - 1][: width - 1] + "…"]
    return lines


def html_label(lines: list[tuple[str, str]]) -> str:
    """An HTML-like label from (style, text) lines: 'b' bold, 's' small grey, 'e' error red, '' plain."""
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


def dot_attrs(pairs: Iterable[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in pairs) + "]"


# --------------------------------------------------------------------------- edges into merges

@dataclass(frozen=True)
class MergeInput:
    """How an edge into a merge is drawn, by what the merge does with that input."""

    kind: str  # the legend's key
    colour: str
    dashed: bool
    arrow: str  # the legend's sample of the edge
    legend: str  # the legend's text, before the names of the ops drawn so
    tip: str  # added to the edge's tooltip: {op} the merge, {n} the input's number

    def attrs(self) -> list[tuple[str, str]]:
        return [("color", quoted(self.colour)), ("fontcolor", quoted(self.colour)),
                *([("style", "dashed")] if self.dashed else []), ("penwidth", "1.5")]


# Second and later inputs of a sum (add): residual shortcuts, dashed.
SHORTCUT = MergeInput("shortcut-edge", "#d35400", True, "- - -▸", "shortcut into", "shortcut into {op}")
# Every input of a merge that stacks its inputs (concat): the output grows with each input.
STACKED = MergeInput("concat-edge", "#1f77b4", False, "——▸", "into", "{op} input {n}")
# Every input of an averaging merge (mean / join): FractalNet's columns are peers, not shortcuts.
PEER = MergeInput("mean-edge", "#7b3294", False, "——▸", "into", "{op} input {n}")
MERGE_INPUTS = (SHORTCUT, STACKED, PEER)  # in the legend's order


def merge_kind(rule: OpRule) -> MergeInput | None:
    """What a merge does with its inputs, from its traits; None for an op that is not a merge."""
    if not rule.has(Trait.MERGE):
        return None
    if rule.has(Trait.SUM):
        return SHORTCUT
    # The one merge that does not keep channels concatenates them.
    return PEER if rule.has(Trait.KEEPS_CHANNELS) else STACKED


def merge_input(rule: OpRule, pos: int) -> MergeInput | None:
    """How input ``pos`` of an op is drawn; None for a plain edge (the first input of a sum is the main path)."""
    kind = merge_kind(rule)
    return None if kind is SHORTCUT and pos == 0 else kind


# --------------------------------------------------------------------------- legend

def legend(title: str, sub: str, families: set[str], kinds: set[str]) -> str:
    """The title, a line of totals and a legend of the colours used, as one HTML table (the graph's label).

    ``families`` are the op families drawn; ``kinds`` the diagram's own kinds used: block, error,
    warning, skipped and the :class:`MergeInput` kinds.
    """
    cells = []

    def swatch(fill: str, border: str, text: str, dashed: bool = False) -> None:
        box = (f'<TD BGCOLOR="{fill}" COLOR="{border}" BORDER="1" WIDTH="16" HEIGHT="10" FIXEDSIZE="TRUE" ALIGN="LEFT"'
               + (' STYLE="dashed"' if dashed else "") + "></TD>")
        cells.append(f'{box}<TD ALIGN="LEFT">{html_text(text)}</TD>')

    for family in FAMILY_ORDER:
        if family in families:
            swatch(*FAMILY_COLOURS[family], family)
    if "block" in kinds:
        swatch(*BLOCK_COLOURS, "block (collapsed)")
    if "error" in kinds:
        swatch(*ERROR_COLOURS, "error")
    if "warning" in kinds:
        swatch("#ffffff", WARNING_BORDER, "warning")
    if "skipped" in kinds:
        swatch(*SKIPPED_COLOURS, "not checked", dashed=True)
    for edge in MERGE_INPUTS:
        if edge.kind in kinds:
            ops = " / ".join(name for name, rule in OPS.items() if merge_kind(rule) is edge)
            cells.append(f'<TD ALIGN="LEFT"><FONT COLOR="{edge.colour}">{edge.arrow}</FONT></TD>'
                         f'<TD ALIGN="LEFT">{html_text(f"{edge.legend} {ops}")}</TD>')
    per_row = 5
    # One grid: each entry's swatch and text start a column, so every row is spaced as the first. A
    # table per row spaced its entries unevenly: Graphviz stretches a narrower table to the width of its
    # cell, adding the same slack to every cell, around each swatch and after each text.
    gap = f'<TD WIDTH="{LEGEND_GAP}"></TD>'
    rows = ["<TR>" + gap.join(cells[i:i + per_row]) + "</TR>" for i in range(0, len(cells), per_row)]
    table = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="0">' + "".join(rows) + "</TABLE>"
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="0">'
            f'<TR><TD><B>{html_text(title)}</B></TD></TR>'
            f'<TR><TD><FONT POINT-SIZE="10" COLOR="#555555">{html_text(sub)}</FONT></TD></TR>'
            f'<TR><TD><FONT POINT-SIZE="9">{table}</FONT></TD></TR></TABLE>>')
