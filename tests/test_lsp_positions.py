"""Every position that crosses the protocol, under each position encoding a client may negotiate.

The lines hold multi-byte (ö ß →) and astral-plane (😀) characters before the positions, where
utf-8, utf-16 and utf-32 columns all differ. The expected columns come from Python's own codecs
(the oracle), never from the server's conversion code.
"""

from __future__ import annotations

import sys

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
T = pytest.importorskip("lsprotocol.types")

from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

CONFIG = ClientServerConfig(server_command=[sys.executable, "-m", "specdsl", "lsp"])
ENCODINGS = ["utf-8", "utf-16", "utf-32"]
S = '"größe→😀"'

DOC = f"""model m
input [3, 32, 32]

block unit(c: int) {{
    conv(c, k=3, pad=1, padding_mode={S}) -> relu
}}

layers {{
    conv(8, k=3, pad=1) -> relu as stem  # größe → 😀
    unit(16)
    conv(16, k=3, padding_mode={S}) -> maxpoool(2) as mid
    [@mid] -> relu
}}  # größe😀"""
LINES = DOC.split("\n")

pytestmark = pytest.mark.asyncio


def units(text: str, encoding: str) -> int:
    """The oracle: the text's length in the encoding's code units, by Python's codecs."""
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    return len(text)


def col(line: str, character: int, encoding: str) -> int:
    """A position's character (code units) -> the index of the code point it is at."""
    for i in range(len(line) + 1):
        if units(line[:i], encoding) >= character:
            return i
    return len(line)


def rng(row: int, text: str, encoding: str, occurrence: int = -1) -> tuple[int, int, int, int]:
    """(line, start, line, end) of `text` on the row, in the encoding's units (the last occurrence by default)."""
    line = LINES[row]
    at = line.rfind(text) if occurrence == -1 else line.find(text)
    assert at >= 0, (row, text)
    return row, units(line[:at], encoding), row, units(line[:at + len(text)], encoding)


def tup(r: T.Range) -> tuple[int, int, int, int]:
    return r.start.line, r.start.character, r.end.line, r.end.character


@pytest_lsp.fixture(config=CONFIG, params=ENCODINGS)
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest):
    caps = T.ClientCapabilities(general=T.GeneralClientCapabilities(position_encodings=[request.param]))
    result = await lsp_client.initialize_session(T.InitializeParams(capabilities=caps))
    assert result.capabilities.position_encoding == request.param
    lsp_client.encoding = request.param  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def _open(client: LanguageClient, uri: str, text: str, language: str = "specdsl") -> list[T.Diagnostic]:
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, language, 1, text)))
    while uri not in client.diagnostics:
        await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics.pop(uri))


def _at(row: int, before: str, encoding: str, lines: list[str] = LINES) -> T.Position:
    """The position just after the first `before` on the row."""
    line = lines[row]
    return T.Position(row, units(line[:line.index(before) + len(before)], encoding))


async def test_diagnostics_related_information_and_the_quick_fix(client: LanguageClient) -> None:
    enc = client.encoding  # type: ignore[attr-defined]
    uri = "file:///work/positions.cnn"
    diags = await _open(client, uri, DOC)
    got = {(d.code, tup(d.range)) for d in diags}
    assert ("E202", rng(4, S, enc)) in got  # inside the block; its end is past the non-ASCII
    assert ("E202", rng(10, S, enc)) in got
    assert ("E204", rng(10, "maxpoool", enc)) in got  # its start is past the non-ASCII
    assert ("E202", rng(9, "unit", enc)) in got  # the block's error, at its call
    in_block = next(d for d in diags if d.range.start.line == 4)
    assert tup(in_block.related_information[0].location.range) == rng(9, "unit", enc)
    at_call = next(d for d in diags if d.range.start.line == 9)
    assert tup(at_call.related_information[0].location.range) == rng(4, S, enc)

    unknown = next(d for d in diags if d.code == "E204")
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), unknown.range, T.CodeActionContext(diagnostics=[unknown])))
    assert [a.title for a in actions] == ["Replace 'maxpoool' with 'maxpool'"]
    (edit,) = actions[0].edit.changes[uri]
    line = LINES[edit.range.start.line]
    fixed = line[:col(line, edit.range.start.character, enc)] + edit.new_text + line[col(line, edit.range.end.character,
                                                                                          enc):]
    assert fixed == f"    conv(16, k=3, padding_mode={S}) -> maxpool(2) as mid"

    # The editor applies it as an incremental change in the same units: the error is gone.
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [T.TextDocumentContentChangePartial(range=edit.range, text=edit.new_text)]))
    while uri not in client.diagnostics:
        await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert "E204" not in {d.code for d in client.diagnostics[uri]}


async def test_a_stale_quick_fix_is_not_offered(client: LanguageClient) -> None:
    enc = client.encoding  # type: ignore[attr-defined]
    uri = "file:///work/stale.cnn"
    diags = await _open(client, uri, DOC)
    unknown = next(d for d in diags if d.code == "E204")
    # The user edits the word before asking for the fix the old diagnostic carries.
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [T.TextDocumentContentChangePartial(range=unknown.range, text="maxpooo")]))
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), unknown.range, T.CodeActionContext(diagnostics=[unknown])))
    assert not actions, enc


async def test_yaml_diagnostics(client: LanguageClient) -> None:
    enc = client.encoding  # type: ignore[attr-defined]
    text = f"model: m\ninput: [3, 8, 8]\nlayers:\n  - conv: {{out: 4, k: 3, padding_mode: {S}, strides: 2}}\n"
    diags = await _open(client, "file:///work/positions.yaml", text, "yaml")
    line = text.split("\n")[3]
    start = line.index("strides")
    assert ("E201", (3, units(line[:start], enc))) in {(d.code, (d.range.start.line, d.range.start.character))
                                                       for d in diags}


async def test_hover_definition_symbols_and_inlay_hints(client: LanguageClient) -> None:
    enc = client.encoding  # type: ignore[attr-defined]
    uri = "file:///work/features.cnn"
    doc = T.TextDocumentIdentifier(uri)
    await _open(client, uri, DOC)

    hover = await client.text_document_hover_async(T.HoverParams(doc, _at(10, "-> maxp", enc)))
    assert hover.contents.value.startswith("**maxpoool**")
    assert tup(hover.range) == rng(10, "maxpoool", enc)
    arrow = await client.text_document_hover_async(T.HoverParams(doc, _at(10, f"{S}) -", enc)))
    assert arrow is None or "maxpoool" not in arrow.contents.value
    # The layers before the first error keep their figures.
    stem = await client.text_document_hover_async(T.HoverParams(doc, _at(8, "conv(", enc)))
    assert "output `[8, 32, 32]`" in stem.contents.value
    later = await client.text_document_hover_async(T.HoverParams(doc, _at(10, "co", enc)))
    assert "downstream of the first error" in later.contents.value

    target = await client.text_document_definition_async(T.DefinitionParams(doc, _at(11, "[@m", enc)))
    assert tup(target.range) == rng(10, "mid", enc)

    symbols = await client.text_document_document_symbol_async(T.DocumentSymbolParams(doc))
    layers = next(s for s in symbols if s.name == "layers")
    mid = next(c for c in layers.children if c.name == "mid")
    assert tup(mid.selection_range) == rng(10, "mid", enc)
    assert tup(layers.range)[2:] == (12, 1)  # the closing brace; the comment after it is not the block's

    hints = await client.text_document_inlay_hint_async(T.InlayHintParams(
        doc, T.Range(T.Position(0, 0), T.Position(len(LINES), 0))))
    by_line = {h.position.line: h for h in hints}
    assert by_line[8].position.character == units(LINES[8], enc)  # after the comment, not inside it
    assert by_line[8].label.strip() == "[8, 32, 32]"


TYPING = f"""model m
input [3, 8, 8]
layers {{
    conv(8, padding_mode={S}, bias=, k=3)
    conv(8) as a  # as taught 😀 today
    [@
}}"""


async def test_completion(client: LanguageClient) -> None:
    enc = client.encoding  # type: ignore[attr-defined]
    uri = "file:///work/typing.cnn"
    await _open(client, uri, TYPING)
    lines = TYPING.split("\n")

    async def labels(pos: T.Position, trigger: str | None = None) -> set[str]:
        context = T.CompletionContext(T.CompletionTriggerKind.TriggerCharacter, trigger) if trigger else None
        result = await client.text_document_completion_async(T.CompletionParams(
            T.TextDocumentIdentifier(uri), pos, context=context))
        return {i.label for i in result.items}

    assert await labels(_at(3, "bias=", enc, lines), "=") == {"true", "false"}
    assert {"bias", "stride"} <= await labels(_at(3, f"{S}, ", enc, lines))
    assert await labels(_at(3, "größe→😀", enc, lines)) == set()  # in a string
    assert await labels(_at(4, "taught 😀", enc, lines)) == set()  # in a comment
    assert await labels(_at(5, "[@", enc, lines), "@") == {"input", "a"}


async def test_formatting_edit_covers_the_whole_document(client: LanguageClient) -> None:
    enc = client.encoding  # type: ignore[attr-defined]
    uri = "file:///work/messy.cnn"
    messy = "model m\ninput [3,8,8]\nlayers {\n  conv( 4 ,k=3)->relu   # größe 😀\n}  # größe😀"
    await _open(client, uri, messy)
    (edit,) = await client.text_document_formatting_async(T.DocumentFormattingParams(
        T.TextDocumentIdentifier(uri), T.FormattingOptions(4, True)))
    assert tup(edit.range) == (0, 0, 4, units("}  # größe😀", enc))
    assert "    conv(4, k=3) -> relu  # größe 😀\n" in edit.new_text
