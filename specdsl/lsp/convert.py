"""SourceLocs and Diagnostics -> protocol types.

specdsl counts columns in code points from 1; the protocol counts UTF-16 code units from 0.
A diagnostic raised inside a user-block call is published twice: where the block says it (the
line to fix) and at the call that expanded it (the line the user may be looking at), linked to
each other as related information.
"""

from __future__ import annotations

import re

from lsprotocol import types as T

from specdsl.errors import Diagnostic, SourceLoc
from specdsl.lsp.index import CALL_NOTE, Span, span_of

__all__ = ["from_position", "lsp_diagnostics", "to_position", "to_range"]

_SEVERITY = {"error": T.DiagnosticSeverity.Error, "warning": T.DiagnosticSeverity.Warning,
             "note": T.DiagnosticSeverity.Information}
_DID_YOU_MEAN = re.compile(r"did you mean '([^']+)'\?")
_QUOTED = re.compile(r"'([^'\s]+)'")


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def to_position(lines: list[str], line: int, col: int) -> T.Position:
    """1-based (line, code-point column) -> the protocol's 0-based UTF-16 position."""
    row = max(line - 1, 0)
    text = lines[row] if row < len(lines) else ""
    return T.Position(row, _utf16(text[:max(col - 1, 0)]))


def from_position(lines: list[str], pos: T.Position) -> tuple[int, int]:
    """The protocol's position -> 1-based (line, code-point column)."""
    text = lines[pos.line] if 0 <= pos.line < len(lines) else ""
    units = 0
    for i, ch in enumerate(text):
        if units >= pos.character:
            return pos.line + 1, i + 1
        units += 2 if ord(ch) > 0xFFFF else 1
    return pos.line + 1, len(text) + 1


def to_range(lines: list[str], span: Span) -> T.Range:
    return T.Range(to_position(lines, span[0], span[1]), to_position(lines, span[2], span[3]))


def _loc_span(loc: SourceLoc | None, lines: list[str]) -> Span:
    if loc is None:
        return 1, 1, 1, 1
    if loc.end_line is None:  # a point: mark the word that starts there
        text = lines[loc.line - 1] if 0 < loc.line <= len(lines) else ""
        word = re.match(r"\w+|\S", text[loc.col - 1:])
        return loc.line, loc.col, loc.line, loc.col + (len(word.group()) if word else 1)
    return span_of(loc, lines)


def _message(d: Diagnostic) -> str:
    parts = [d.message]
    parts += [f"note: {n}" for n in d.notes]
    if d.hint:
        parts.append(f"hint: {d.hint}")
    return "\n".join(parts)


def _fix(d: Diagnostic, span: Span, lines: list[str]) -> dict[str, object] | None:
    """A did-you-mean hint as an edit: the quoted word of the message, inside the span, replaced."""
    m = _DID_YOU_MEAN.search(d.hint or "")
    if m is None or span[0] != span[2] or not 0 < span[0] <= len(lines):
        return None
    text = lines[span[0] - 1]
    marked = text[span[1] - 1:span[3] - 1]
    for word in _QUOTED.findall(d.message):
        at = re.search(rf"(?<![\w@]){re.escape(word)}(?!\w)", marked)
        if at is not None and word != m.group(1):
            col = span[1] + at.start()
            return {"word": word, "fix": m.group(1), "span": [span[0], col, span[0], col + len(word)]}
    return None


def lsp_diagnostics(diags: list[Diagnostic], file: str, uri: str, lines: list[str]) -> list[T.Diagnostic]:
    out: list[T.Diagnostic] = []
    for d in diags:
        if d.loc is not None and d.loc.file != file:
            continue
        span = _loc_span(d.loc, lines)
        rng = to_range(lines, span)
        message = _message(d)
        calls = [m for m in (CALL_NOTE.search(n) for n in d.notes) if m and m["file"] == file]
        related = [T.DiagnosticRelatedInformation(
            T.Location(uri, to_range(lines, _loc_span(SourceLoc(file, int(m["line"]), int(m["col"])), lines))),
            f"in block '{m['block']}' called here ({m['path']})") for m in calls]
        fix = _fix(d, span, lines)
        out.append(T.Diagnostic(rng, message, severity=_SEVERITY.get(d.severity, T.DiagnosticSeverity.Error),
                                code=d.code, source="specdsl", related_information=related or None,
                                data={"fix": fix} if fix else None))
        if calls:
            # The outermost call is the line in the model's layers; a nested call's line is in a block.
            m = calls[-1]
            at = _loc_span(SourceLoc(file, int(m["line"]), int(m["col"])), lines)
            out.append(T.Diagnostic(
                to_range(lines, at), f"{d.message}\n(inside block '{calls[0]['block']}', line {span[0]})",
                severity=_SEVERITY.get(d.severity, T.DiagnosticSeverity.Error), code=d.code, source="specdsl",
                related_information=[T.DiagnosticRelatedInformation(T.Location(uri, rng), message)]))
    return _unique(out)


def _unique(diags: list[T.Diagnostic]) -> list[T.Diagnostic]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for d in diags:
        key = (d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character, d.code,
               d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
