"""SourceLocs and Diagnostics -> protocol types.

specdsl counts columns in code points from 1; the protocol counts from 0 in the code units of the
position encoding the client and server agreed on at initialisation (utf-8, utf-16 or utf-32;
utf-16 when the client names none). Every position and range that crosses the protocol, in either
direction, goes through to_position / from_position with that encoding.
A diagnostic raised inside a user-block call is published twice: where the block says it (the
line to fix) and at the call that expanded it (the line the user may be looking at), linked to
each other as related information.
"""

from __future__ import annotations

import re

from lsprotocol import types as T

from specdsl.errors import Diagnostic, SourceLoc, shortened
from specdsl.lsp.index import CALL_NOTE, Span, span_of

__all__ = ["UTF16", "fix_edit", "from_position", "lsp_diagnostics", "to_position", "to_range", "units"]

_SEVERITY = {"error": T.DiagnosticSeverity.Error, "warning": T.DiagnosticSeverity.Warning,
             "note": T.DiagnosticSeverity.Information}
_DID_YOU_MEAN = re.compile(r"did you mean '([^']+)'\?")
_QUOTED = re.compile(r"'([^'\s]+)'")


UTF16 = "utf-16"


def _units(ch: str, encoding: str) -> int:
    """Code units of one code point in the encoding (lone surrogates count as their 3-byte UTF-8 form)."""
    code = ord(ch)
    if encoding == "utf-32":
        return 1
    if encoding == "utf-8":
        return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
    return 2 if code > 0xFFFF else 1


def units(text: str, encoding: str = UTF16) -> int:
    """The length of the text in the encoding's code units."""
    if encoding == "utf-32" or text.isascii():
        return len(text)
    return sum(_units(ch, encoding) for ch in text)


def to_position(lines: list[str], line: int, col: int, encoding: str = UTF16) -> T.Position:
    """1-based (line, code-point column) -> the protocol's 0-based position in the encoding's units."""
    row = max(line - 1, 0)
    text = lines[row] if row < len(lines) else ""
    return T.Position(row, units(text[:max(col - 1, 0)], encoding))


def from_position(lines: list[str], pos: T.Position, encoding: str = UTF16) -> tuple[int, int]:
    """The protocol's position -> 1-based (line, code-point column). A position inside a character
    (between the bytes of one UTF-8 sequence) is taken as the start of the next character."""
    text = lines[pos.line] if 0 <= pos.line < len(lines) else ""
    count = 0
    for i, ch in enumerate(text):
        if count >= pos.character:
            return pos.line + 1, i + 1
        count += _units(ch, encoding)
    return pos.line + 1, len(text) + 1


def to_range(lines: list[str], span: Span, encoding: str = UTF16) -> T.Range:
    return T.Range(to_position(lines, span[0], span[1], encoding), to_position(lines, span[2], span[3], encoding))


def _loc_span(loc: SourceLoc | None, lines: list[str]) -> Span:
    if loc is None:
        return 1, 1, 1, 1
    if loc.end_line is None:  # a point: mark the word that starts there
        text = lines[loc.line - 1] if 0 < loc.line <= len(lines) else ""
        word = re.match(r"\w+|\S", text[loc.col - 1:])
        return loc.line, loc.col, loc.line, loc.col + (len(word.group()) if word else 1)
    return span_of(loc, lines)


def _message(d: Diagnostic) -> str:
    d = shortened(d)  # a 30,000-character token is quoted cut, as the CLI quotes it
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


def fix_edit(fix: object, lines: list[str], encoding: str = UTF16) -> T.TextEdit | None:
    """The edit of a diagnostic's fix (its `data`, as the client hands it back), if the text still
    holds the word it replaces there: a fix of an older version of the document is never applied."""
    if not isinstance(fix, dict) or not isinstance(fix.get("fix"), str) or not isinstance(fix.get("word"), str):
        return None
    span = fix.get("span")
    if not (isinstance(span, list) and len(span) == 4 and all(isinstance(x, int) for x in span)):
        return None
    line, col, _, end = span
    if not 0 < line <= len(lines) or lines[line - 1][col - 1:end - 1] != fix["word"] or col < 1:
        return None
    return T.TextEdit(to_range(lines, (line, col, line, end), encoding), fix["fix"])


def lsp_diagnostics(diags: list[Diagnostic], file: str, uri: str, lines: list[str],
                    encoding: str = UTF16) -> list[T.Diagnostic]:
    out: list[T.Diagnostic] = []
    for d in diags:
        if d.loc is not None and d.loc.file != file:
            continue
        span = _loc_span(d.loc, lines)
        rng = to_range(lines, span, encoding)
        message = _message(d)
        calls = [m for m in (CALL_NOTE.search(n) for n in d.notes) if m and m["file"] == file]
        related = [T.DiagnosticRelatedInformation(
            T.Location(uri, to_range(lines, _loc_span(SourceLoc(file, int(m["line"]), int(m["col"])), lines),
                                    encoding)),
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
                to_range(lines, at, encoding), f"{d.message}\n(inside block '{calls[0]['block']}', line {span[0]})",
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
