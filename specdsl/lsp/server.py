"""`specdsl lsp`: the language server (pygls, over stdio) for `.cnn` and spec `.yaml` files.

Each open document is analysed by the `check` pipeline (specdsl.lsp.analysis) when it opens and
after edits: the first edit after a pause at once, then at most one analysis per DEBOUNCE_S while
the user keeps typing (a pause counts from the end of the last analysis). Requests (hover, inlay
hints, ...) first bring a stale analysis up to date, so they never answer from text the editor no
longer shows. Only the latest analysis of a document is kept. A handler that fails answers
nothing and logs why; the server stays up.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from specdsl import __version__
from specdsl.errors import Diagnostic
from specdsl.lsp import complete, convert, features
from specdsl.lsp.analysis import LSP_BUDGETS, DocAnalysis, analyse
from specdsl.lsp.index import Index

__all__ = ["DEBOUNCE_S", "SpecServer", "main"]

DEBOUNCE_S = 0.05
_DSL_LANGUAGES = ("specdsl", "cnn")
# A YAML document is taken for a spec when it has one of a spec's top-level keys.
_SPEC_YAML = re.compile(r"^(model|layers|input|blocks)\s*:", re.M)
_KINDS = {"op": T.CompletionItemKind.Function, "block": T.CompletionItemKind.Module,
          "user_block": T.CompletionItemKind.Class, "arg": T.CompletionItemKind.Property,
          "ref": T.CompletionItemKind.Reference, "keyword": T.CompletionItemKind.Keyword}
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class DocState:
    version: int | None
    analysis: DocAnalysis
    index: Index | None = None

    def idx(self) -> Index:
        if self.index is None:
            self.index = Index(self.analysis)
        return self.index


class SpecServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("specdsl", __version__, text_document_sync_kind=T.TextDocumentSyncKind.Incremental)
        self.states: dict[str, DocState] = {}
        self.pending: dict[str, asyncio.TimerHandle] = {}
        self.last_change: dict[str, float] = {}
        self.last_run: dict[str, float] = {}

    # -- analysis ----------------------------------------------------------------------

    def file_of(self, uri: str, language: str | None) -> str:
        path = to_fs_path(uri) or uri
        if not path.endswith((".cnn", ".yaml", ".yml")):
            path += ".cnn" if language in _DSL_LANGUAGES else ".yaml"
        return path

    def refresh(self, uri: str) -> DocState | None:
        """Analyse the document now if its analysis is older than its text; publish the diagnostics."""
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        try:
            doc = self.workspace.get_text_document(uri)
        except Exception:  # closed, or never opened
            return self.states.get(uri)
        state = self.states.get(uri)
        if state is not None and state.version == doc.version and state.analysis.text == doc.source:
            return state
        file = self.file_of(uri, doc.language_id)
        if not file.endswith(".cnn") and not _SPEC_YAML.search(doc.source):
            # Editors attach the server to every YAML file; only specs get diagnostics.
            result = DocAnalysis(file, doc.source, False)
        else:
            result = self.analyse(doc.source, file)
        state = DocState(doc.version, result)
        self.states[uri] = state
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(
            uri, convert.lsp_diagnostics(result.diagnostics, file, uri, result.lines), doc.version))
        self.last_run[uri] = time.monotonic()
        return state

    def analyse(self, text: str, file: str) -> DocAnalysis:
        try:
            return analyse(text, file, LSP_BUDGETS)
        except Exception as exc:  # a bug in specdsl: say so in the editor, keep serving
            return DocAnalysis(file, text, file.endswith(".cnn"), [Diagnostic(
                "error", "E000", f"internal error — this is a bug: {type(exc).__name__}: {exc}",
                hint="please report it with the spec that triggered it")])

    def schedule(self, uri: str) -> None:
        # Changes that queued up while an analysis ran look spaced out when they are finally read:
        # the pause is counted from the later of the last change and the end of the last analysis.
        now = time.monotonic()
        quiet = now - max(self.last_change.get(uri, 0.0), self.last_run.get(uri, 0.0)) > DEBOUNCE_S
        self.last_change[uri] = now
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.refresh(uri)
            return
        self.pending[uri] = loop.call_later(0 if quiet else DEBOUNCE_S, self.refresh, uri)

    def forget(self, uri: str) -> None:
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        self.states.pop(uri, None)
        self.last_change.pop(uri, None)
        self.last_run.pop(uri, None)
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri, []))


server = SpecServer()


def guarded(fn: F) -> F:
    """A failing handler logs and answers nothing: a garbage document never takes the server down."""

    @wraps(fn)
    def run(ls: SpecServer, params: Any) -> Any:
        try:
            return fn(ls, params)
        except Exception as exc:
            ls.window_log_message(T.LogMessageParams(
                T.MessageType.Error, f"specdsl lsp: {fn.__name__} failed: {type(exc).__name__}: {exc}"))
            return None

    return run  # type: ignore[return-value]


@server.feature(T.TEXT_DOCUMENT_DID_OPEN)
@guarded
def did_open(ls: SpecServer, params: T.DidOpenTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
@guarded
def did_change(ls: SpecServer, params: T.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
@guarded
def did_close(ls: SpecServer, params: T.DidCloseTextDocumentParams) -> None:
    ls.forget(params.text_document.uri)


def _at(ls: SpecServer, uri: str, pos: T.Position) -> tuple[DocState, int, int] | None:
    state = ls.refresh(uri)
    if state is None:
        return None
    line, col = convert.from_position(state.analysis.lines, pos)
    return state, line, col


@server.feature(T.TEXT_DOCUMENT_HOVER)
@guarded
def hover(ls: SpecServer, params: T.HoverParams) -> T.Hover | None:
    found = _at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    state, line, col = found
    result = features.hover(state.idx(), line, col)
    if result is None:
        return None
    text, span = result
    return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, text), convert.to_range(state.analysis.lines, span))


@server.feature(T.TEXT_DOCUMENT_INLAY_HINT, T.InlayHintOptions(resolve_provider=False))
@guarded
def inlay_hints(ls: SpecServer, params: T.InlayHintParams) -> list[T.InlayHint]:
    state = ls.refresh(params.text_document.uri)
    if state is None:
        return []
    lines = state.analysis.lines
    hints = features.inlay_hints(state.idx(), params.range.start.line + 1, params.range.end.line + 1)
    return [T.InlayHint(convert.to_position(lines, line, col), label, kind=T.InlayHintKind.Type,
                        padding_left=True) for line, col, label in hints]


@server.feature(T.TEXT_DOCUMENT_DEFINITION)
@guarded
def definition(ls: SpecServer, params: T.DefinitionParams) -> T.Location | None:
    found = _at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    state, line, col = found
    span = features.definition(state.idx(), line, col)
    if span is None:
        return None
    return T.Location(params.text_document.uri, convert.to_range(state.analysis.lines, span))


_SYMBOL_KINDS = {"block": T.SymbolKind.Class, "node": T.SymbolKind.Variable, "layers": T.SymbolKind.Namespace}


@server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@guarded
def document_symbols(ls: SpecServer, params: T.DocumentSymbolParams) -> list[T.DocumentSymbol]:
    state = ls.refresh(params.text_document.uri)
    if state is None:
        return []
    lines = state.analysis.lines

    def convert_symbol(s: features.Symbol) -> T.DocumentSymbol:
        return T.DocumentSymbol(s.name, _SYMBOL_KINDS[s.kind], convert.to_range(lines, s.span),
                                convert.to_range(lines, s.selection), detail=s.detail,
                                children=[convert_symbol(c) for c in s.children])

    return [convert_symbol(s) for s in features.symbols(state.idx())]


@server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=["@", "(", ",", "{", " "]))
@guarded
def completion(ls: SpecServer, params: T.CompletionParams) -> T.CompletionList:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    lines = doc.source.split("\n")
    line, col = convert.from_position(lines, params.position)
    dsl = ls.file_of(params.text_document.uri, doc.language_id).endswith(".cnn")
    items = complete.complete(doc.source, line, col, dsl)
    return T.CompletionList(False, [
        T.CompletionItem(i.label, kind=_KINDS[i.kind], detail=i.detail, insert_text=i.insert,
                         documentation=i.doc or None) for i in items])


@server.feature(T.TEXT_DOCUMENT_FORMATTING)
@guarded
def formatting(ls: SpecServer, params: T.DocumentFormattingParams) -> list[T.TextEdit] | None:
    """`specdsl fmt` on a DSL document that is structurally valid; nothing for YAML (fmt is DSL only)."""
    from specdsl.lsp.fmt import format_dsl

    state = ls.refresh(params.text_document.uri)
    if state is None or not state.analysis.dsl:
        return None
    text = state.analysis.text
    formatted = format_dsl(text, state.analysis.file, LSP_BUDGETS)
    if formatted is None or formatted == text:
        return []
    lines = state.analysis.lines
    end = convert.to_position(lines, len(lines), len(lines[-1]) + 1)
    return [T.TextEdit(T.Range(T.Position(0, 0), end), formatted)]


@server.feature(T.TEXT_DOCUMENT_CODE_ACTION, T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.QuickFix]))
@guarded
def code_actions(ls: SpecServer, params: T.CodeActionParams) -> list[T.CodeAction]:
    state = ls.refresh(params.text_document.uri)
    if state is None:
        return []
    actions = []
    for diag in params.context.diagnostics:
        fix = diag.data.get("fix") if isinstance(diag.data, dict) else None
        if not isinstance(fix, dict):
            continue
        span = tuple(fix["span"])
        edit = T.TextEdit(convert.to_range(state.analysis.lines, span), str(fix["fix"]))  # type: ignore[arg-type]
        actions.append(T.CodeAction(
            f"Replace '{fix['word']}' with '{fix['fix']}'", kind=T.CodeActionKind.QuickFix, diagnostics=[diag],
            is_preferred=True, edit=T.WorkspaceEdit(changes={params.text_document.uri: [edit]})))
    return actions


def main() -> int:
    server.start_io()
    return 0
