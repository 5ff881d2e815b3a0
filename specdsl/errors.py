"""Source locations, diagnostics and the one exception type for user errors.

Every user mistake becomes a :class:`Diagnostic`; a batch of them travels in a
:class:`SpecError`. Rendering is separate from collection so the CLI, the JSON
output and the tests all see the same data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True, slots=True)
class SourceLoc:
    """A span in a source file; every number is 1-based, end_col is exclusive."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "end_line": self.end_line,
            "end_col": self.end_col,
        }


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    loc: SourceLoc | None = None
    hint: str | None = None
    notes: tuple[str, ...] = ()
    path: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "location": self.loc.to_json() if self.loc else None,
            "path": self.path,
            "hint": self.hint,
            "notes": list(self.notes),
        }


class SpecError(Exception):
    """The one exception for mistakes in a spec or in how specdsl was called.

    Carries every diagnostic found, not just the first, plus the source texts
    needed to draw caret snippets.
    """

    def __init__(
        self,
        diagnostics: Iterable[Diagnostic],
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        self.sources: dict[str, str] = dict(sources or {})
        super().__init__(self.render(full=False))

    def __str__(self) -> str:
        # The full rendering, hints and notes included: a traceback or a notebook shows all of it.
        # Computed when asked, since callers add source texts after construction.
        return self.render(full=True)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def render(self, full: bool = True) -> str:
        return render_all(self.diagnostics, self.sources, full=full)


class SpecWarning(UserWarning):
    """A warning about a spec (e.g. W302), issued through :mod:`warnings` by ``specdsl.load``.

    ``diagnostic`` is the warning's data; ``str()`` is its full rendering, as ``specdsl check`` prints it.
    """

    def __init__(self, diagnostic: Diagnostic, sources: Mapping[str, str] | None = None) -> None:
        self.diagnostic = diagnostic
        self.sources: dict[str, str] = dict(sources or {})
        super().__init__(render_full(diagnostic, sources or {}))


# A hostile spec can hold a name or a number of megabytes; a message quotes it cut to this many
# characters, saying how long it was (the CLI, the API's str(SpecError) and the editor alike).
MAX_WORD = 80
# A quoted source line longer than LONG_LINE is shown as a WINDOW of characters around the caret.
LONG_LINE = 1000
WINDOW = 160
_LONG_WORD = re.compile(r"[^\s'\"]{" + str(MAX_WORD + 1) + ",}")


def shorten(text: str) -> str:
    """``text`` with each run of more than MAX_WORD non-blank characters cut, saying how long it was."""
    return _LONG_WORD.sub(lambda m: f"{m.group()[:MAX_WORD - 20]}…({len(m.group()):,} characters)", text)


def shortened(diag: Diagnostic) -> Diagnostic:
    """The diagnostic with its message, hint, notes and path shortened (see :func:`shorten`)."""
    from dataclasses import replace

    return replace(diag, message=shorten(diag.message), hint=shorten(diag.hint) if diag.hint else diag.hint,
                   notes=tuple(shorten(n) for n in diag.notes), path=shorten(diag.path) if diag.path else None)


def render_concise(diag: Diagnostic) -> str:
    where = f"{diag.loc}: " if diag.loc else ""
    return f"{where}{diag.severity} {diag.code}: {diag.message}"


def _snippet(loc: SourceLoc, sources: Mapping[str, str]) -> list[str]:
    text = sources.get(loc.file)
    if text is None:
        return []
    lines = text.splitlines()
    if not 1 <= loc.line <= len(lines):
        return []
    source_line = lines[loc.line - 1].expandtabs(1)
    col = loc.col
    if loc.end_line == loc.line and loc.end_col and loc.end_col > loc.col:
        width = loc.end_col - loc.col
    else:
        # A multi-line span: underline to the end of the first line.
        width = max(1, len(source_line.rstrip()) - loc.col + 1)
    if len(source_line) > LONG_LINE:  # a window around the caret, marked with … where it is cut
        start = max(0, col - 1 - 40)
        shown = source_line[start:start + WINDOW]
        source_line = ("…" if start else "") + shown + ("…" if start + WINDOW < len(source_line) else "")
        col = col - start + (1 if start else 0)
        width = max(1, min(width, len(source_line) - col + 1))
    gutter = f"{loc.line:>4} | "
    pad = " " * (len(gutter) - 2) + "| "
    return [gutter + source_line, pad + " " * (col - 1) + "^" * width]


def render_full(diag: Diagnostic, sources: Mapping[str, str]) -> str:
    diag = shortened(diag)
    out = [render_concise(diag)]
    if diag.loc:
        out.extend(_snippet(diag.loc, sources))
    if diag.path:
        out.append(f"  = at: {diag.path}")
    for note in diag.notes:
        out.append(f"  = note: {note}")
    if diag.hint:
        out.append(f"  = hint: {diag.hint}")
    return "\n".join(out)


def render_all(
    diagnostics: Iterable[Diagnostic], sources: Mapping[str, str], full: bool = True
) -> str:
    diags = list(diagnostics)
    if full:
        return "\n\n".join(render_full(d, sources) for d in diags)
    return "\n".join(render_concise(shortened(d)) for d in diags)


def listing(items: Iterable[str], limit: int = 12) -> str:
    """``a, b, c`` — at most ``limit`` of them, then how many more (a family may have thousands)."""
    shown = list(items)
    if len(shown) <= limit:
        return ", ".join(shown)
    return ", ".join(shown[:limit]) + f", ... and {len(shown) - limit:,} more"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    import difflib

    best = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return best[0] if best else None
