"""YAML layout mistakes said as layout mistakes.

YAML turns a wrong indent into something else: a tab into a scanner error, an over-indented
``- gap`` into the text ``relu - gap``, keys meant for ``conv:`` into keys beside it. The parser's
and the schema's diagnostics are right about what they received; these rewrites say what the user
wrote and how to indent it, using the source text the diagnostic points at.
"""

from __future__ import annotations

import re
from dataclasses import replace

from specdsl.errors import Diagnostic

__all__ = ["explain_layout"]

_UNKNOWN_LAYER = re.compile(r"^unknown layer '([^']*)'")
_ONE_OP = re.compile(r"^a layer holds exactly one op; received (.*)$")
_EXPR = re.compile(r"^cannot evaluate '([^']*)'")
_AS = re.compile(r"^\s*(?:-\s+)?as:\s*(.*?)\s*$")


def explain_layout(diag: Diagnostic, text: str) -> Diagnostic:
    """The diagnostic, reworded where its cause is the YAML layout; unchanged otherwise."""
    if diag.loc is None:
        return diag
    lines = text.splitlines()
    if not 1 <= diag.loc.line <= len(lines):
        return diag
    if diag.code == "E101":
        return _tab(diag, lines)
    if diag.code == "E204":
        return _continued(diag, lines) or _as_key(diag, lines) or _siblings(diag, lines) or diag
    if diag.code == "E320":
        return _cut_by_comma(diag, lines) or diag
    return diag


def _tab(diag: Diagnostic, lines: list[str]) -> Diagnostic:
    line = lines[diag.loc.line - 1] if diag.loc else ""
    indent = line[: len(line) - len(line.lstrip())]
    if "\t" not in indent or "cannot start any token" not in diag.message:
        return diag
    return replace(diag, message=f"line {diag.loc.line if diag.loc else 0} is indented with a tab; "
                   "YAML indents with spaces only", hint="replace the tab with spaces (two per level)",
                   notes=())


def _continued(diag: Diagnostic, lines: list[str]) -> Diagnostic | None:
    """`- relu` followed by a deeper `- gap`: YAML continues the text `relu` with `- gap`."""
    m = _UNKNOWN_LAYER.match(diag.message)
    loc = diag.loc
    if m is None or loc is None or " - " not in m.group(1):
        return None
    first, _, rest = m.group(1).partition(" - ")
    for n in range(loc.line, min(len(lines), loc.line + 20)):
        stripped = lines[n].lstrip()
        if stripped.startswith("- " + rest.split(" - ")[0]):
            deeper = len(lines[n]) - len(stripped)
            item = lines[loc.line - 1]
            column = len(item) - len(item.lstrip())
            return replace(diag, message=f"'- {rest.split(' - ')[0]}' on line {n + 1} is indented deeper than "
                           f"the '- {first}' above it, so YAML reads both as one text '{m.group(1)}'",
                           hint=f"indent '- {rest.split(' - ')[0]}' by {column} spaces, like the item above "
                           f"it (now {deeper})")
    return None


def _siblings(diag: Diagnostic, lines: list[str]) -> Diagnostic | None:
    """`- conv:` with `out:` and `k:` on the lines below at the same indent as `conv`: they are its siblings."""
    m = _ONE_OP.match(diag.message)
    loc = diag.loc
    if m is None or loc is None:
        return None
    keys = re.findall(r"'([^']*)'", m.group(1))
    head = lines[loc.line - 1]
    if len(keys) < 2 or not head.rstrip().endswith(f"{keys[0]}:"):
        return None
    op, args = keys[0], keys[1:]
    column = loc.col - 1
    shown = ", ".join(f"'{a}:'" for a in args)
    return replace(diag, message=f"{shown} {'is' if len(args) == 1 else 'are'} indented like '{op}:', so "
                   f"YAML reads {'it' if len(args) == 1 else 'them'} as keys beside '{op}', not as its arguments",
                   hint=f"indent {shown} by {column + 2} spaces, two more than '{op}:' (or write "
                   f"`- {op}: {{{', '.join(f'{a}: ...' for a in args)}}}`)")


def _as_key(diag: Diagnostic, lines: list[str]) -> Diagnostic | None:
    """`as: stage3` beside a YAML layer: the DSL's `as NAME`, which YAML spells `name:`."""
    m = _ONE_OP.match(diag.message)
    loc = diag.loc
    if m is None or loc is None or "as" not in re.findall(r"'([^']*)'", m.group(1)):
        return None
    named = next((a.group(1) for n in range(loc.line - 1, min(len(lines), loc.line + 20))
                  if (a := _AS.match(lines[n]))), "") or "NAME"
    return replace(diag, hint=f"a YAML layer is named with `name: {named}` (`as {named}` is the DSL's way "
                   "of writing it)")


def _cut_by_comma(diag: Diagnostic, lines: list[str]) -> Diagnostic | None:
    """`{c: make_divisible(16 * width, 8)}`: in a flow mapping or list a comma ends the value, so the
    expression reaches the schema cut at its first comma."""
    m = _EXPR.match(diag.message)
    loc = diag.loc
    if m is None or loc is None or "missing ','" not in diag.message:
        return None
    line, start = lines[loc.line - 1], loc.col - 1
    cut = m.group(1)
    if not line.startswith(cut, start) or not line.startswith(",", start + len(cut)):
        return None
    opened = line[:start].count("{") + line[:start].count("[") - line[:start].count("}") - line[:start].count("]")
    if opened <= 0:
        return None
    rest, depth = line[start:], 0
    for end, ch in enumerate(rest):  # the whole expression: up to the comma or bracket at its own depth
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0 or (depth == 0 and ch in ",}]" and end >= len(cut) + 1):
            break
    else:
        end = len(rest)
    whole = rest[:end].strip()
    return replace(diag, hint=f"inside `{{...}}` or `[...]` a comma ends the YAML value, so the expression "
                   f"was cut at its first comma; quote it: '{whole}'")
