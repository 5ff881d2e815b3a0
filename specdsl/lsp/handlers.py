"""The protocol's requests and notifications, registered on specdsl.lsp.server's `server`.

Each converts positions with the encoding negotiated at initialisation (`ls.encoding`) both ways,
and reads the analysis of the text the editor shows (`await ls.current(uri)`).
"""

from __future__ import annotations

from collections.abc import Callable

from lsprotocol import types as T

from specdsl.lsp import complete, convert, features
from specdsl.lsp.analysis import LSP_BUDGETS, is_spec_yaml
from specdsl.lsp.server import _KINDS, DocState, SpecServer, guarded, server

__all__ = ["main"]


@server.feature(T.TEXT_DOCUMENT_DID_OPEN)
@guarded
def did_open(ls: SpecServer, params: T.DidOpenTextDocumentParams) -> None:
    ls.start(params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
@guarded
def did_change(ls: SpecServer, params: T.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
@guarded
def did_close(ls: SpecServer, params: T.DidCloseTextDocumentParams) -> None:
    ls.forget(params.text_document.uri)


async def _at(ls: SpecServer, uri: str, pos: T.Position) -> tuple[DocState, int, int] | None:
    state = await ls.current(uri)
    if state is None:
        return None
    line, col = convert.from_position(state.analysis.lines, pos, ls.encoding)
    return state, line, col


@server.feature(T.TEXT_DOCUMENT_HOVER)
@guarded
async def hover(ls: SpecServer, params: T.HoverParams) -> T.Hover | None:
    found = await _at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    state, line, col = found
    result = features.hover(state.idx(), line, col)
    if result is None:
        return None
    text, span = result
    return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, text),
                   convert.to_range(state.analysis.lines, span, ls.encoding))


@server.feature(T.TEXT_DOCUMENT_INLAY_HINT, T.InlayHintOptions(resolve_provider=False))
@guarded
async def inlay_hints(ls: SpecServer, params: T.InlayHintParams) -> list[T.InlayHint]:
    state = await ls.current(params.text_document.uri)
    if state is None:
        return []
    lines = state.analysis.lines
    hints = features.inlay_hints(state.idx(), params.range.start.line + 1, params.range.end.line + 1)
    return [T.InlayHint(convert.to_position(lines, line, col, ls.encoding), label, kind=T.InlayHintKind.Type,
                        padding_left=True) for line, col, label in hints]


@server.feature(T.TEXT_DOCUMENT_DEFINITION)
@guarded
async def definition(ls: SpecServer, params: T.DefinitionParams) -> T.Location | None:
    found = await _at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    state, line, col = found
    span = features.definition(state.idx(), line, col)
    if span is None:
        return None
    return T.Location(params.text_document.uri, convert.to_range(state.analysis.lines, span, ls.encoding))


_SYMBOL_KINDS = {"block": T.SymbolKind.Class, "node": T.SymbolKind.Variable, "layers": T.SymbolKind.Namespace}


@server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@guarded
async def document_symbols(ls: SpecServer, params: T.DocumentSymbolParams) -> list[T.DocumentSymbol]:
    state = await ls.current(params.text_document.uri)
    if state is None:
        return []
    lines, encoding = state.analysis.lines, ls.encoding

    def convert_symbol(s: features.Symbol) -> T.DocumentSymbol:
        return T.DocumentSymbol(s.name, _SYMBOL_KINDS[s.kind], convert.to_range(lines, s.span, encoding),
                                convert.to_range(lines, s.selection, encoding), detail=s.detail,
                                children=[convert_symbol(c) for c in s.children])

    return [convert_symbol(s) for s in features.symbols(state.idx())]


_TRIGGERS = sorted(set(complete.DSL_TRIGGERS) | set(complete.YAML_TRIGGERS))


@server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=_TRIGGERS))
@guarded
def completion(ls: SpecServer, params: T.CompletionParams) -> T.CompletionList:
    """Answered at once from the text (no analysis): see specdsl.lsp.complete."""
    uri = params.text_document.uri
    doc = ls.document(uri)  # only a document the client opened: never a file read from disk
    if doc is None:
        return T.CompletionList(False, [])
    lines = doc.source.split("\n")
    line, col = convert.from_position(lines, params.position, ls.encoding)
    dsl = ls.file_of(uri, doc.language_id).endswith(".cnn")
    tracker = ls.docs.get(uri)
    if not dsl and not is_spec_yaml(doc.source):
        return T.CompletionList(False, [])  # a YAML file that is not a spec is left alone
    context = params.context
    trigger = context.trigger_character if context and context.trigger_kind == \
        T.CompletionTriggerKind.TriggerCharacter else None
    names: Callable[[int], list[str]] | None = None
    if not dsl and tracker is not None and tracker.parsed is not None:
        parsed = tracker.parsed
        names = lambda at: features.ref_names(parsed.idx(), at)  # noqa: E731
    items = complete.complete(doc.source, line, col, dsl, names, trigger)
    return T.CompletionList(False, [
        T.CompletionItem(i.label, kind=_KINDS[i.kind], detail=i.detail, insert_text=i.insert,
                         documentation=i.doc or None) for i in items])


@server.feature(T.TEXT_DOCUMENT_FORMATTING)
@guarded
async def formatting(ls: SpecServer, params: T.DocumentFormattingParams) -> list[T.TextEdit] | None:
    """`specdsl fmt` on a DSL document that is structurally valid; nothing for YAML (fmt is DSL only)."""
    from specdsl.lsp.fmt import format_dsl

    state = await ls.current(params.text_document.uri)
    if state is None or not state.analysis.dsl:
        return None
    text = state.analysis.text
    formatted = format_dsl(text, state.analysis.file, LSP_BUDGETS)
    if formatted is None or formatted == text:
        return []
    lines = state.analysis.lines
    end = convert.to_position(lines, len(lines), len(lines[-1]) + 1, ls.encoding)
    return [T.TextEdit(T.Range(T.Position(0, 0), end), formatted)]


@server.feature(T.TEXT_DOCUMENT_CODE_ACTION, T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.QuickFix]))
@guarded
async def code_actions(ls: SpecServer, params: T.CodeActionParams) -> list[T.CodeAction]:
    state = await ls.current(params.text_document.uri)
    if state is None:
        return []
    actions = []
    for diag in params.context.diagnostics:
        fix = diag.data.get("fix") if isinstance(diag.data, dict) else None
        edit = convert.fix_edit(fix, state.analysis.lines, ls.encoding)
        if edit is None or not isinstance(fix, dict):
            continue
        actions.append(T.CodeAction(
            f"Replace '{fix['word']}' with '{fix['fix']}'", kind=T.CodeActionKind.QuickFix, diagnostics=[diag],
            is_preferred=True, edit=T.WorkspaceEdit(changes={params.text_document.uri: [edit]})))
    return actions


def main() -> int:
    server.start_io()
    return 0
