"""`specdsl lsp` end to end: a pytest-lsp client drives the real server process over stdio."""

from __future__ import annotations

import asyncio
import sys

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
T = pytest.importorskip("lsprotocol.types")

from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

from specdsl.api import read_source  # noqa: E402

CONFIG = ClientServerConfig(server_command=[sys.executable, "-m", "specdsl", "lsp"])

BROKEN = """model m
input [3, 32, 32]

block unit(c: int) {
    conv(c, k=3, pad=1, groups=3) -> bn -> relu
}

layers {
    conv(8, k=3, pad=1) -> relu as stem
    unit(16)
    [@stem] -> maxpool(2)
}
"""
FIXED = BROKEN.replace(", groups=3", "")

pytestmark = pytest.mark.asyncio


@pytest_lsp.fixture(config=CONFIG)
async def client(lsp_client: LanguageClient):
    result = await lsp_client.initialize_session(T.InitializeParams(capabilities=T.ClientCapabilities()))
    lsp_client.init_result = result  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, uri: str, text: str, language: str = "specdsl") -> None:
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, language, 1, text)))


async def _diagnostics(client: LanguageClient, uri: str) -> list[T.Diagnostic]:
    await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    while uri not in client.diagnostics:
        await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


async def _open_checked(client: LanguageClient, uri: str, text: str, language: str = "specdsl") -> None:
    _open(client, uri, text, language)
    await _diagnostics(client, uri)


async def test_initialize_announces_the_features(client: LanguageClient) -> None:
    caps = client.init_result.capabilities  # type: ignore[attr-defined]
    assert client.init_result.server_info.name == "specdsl"  # type: ignore[attr-defined]
    assert caps.hover_provider and caps.definition_provider and caps.document_symbol_provider
    assert caps.inlay_hint_provider and caps.document_formatting_provider and caps.code_action_provider
    assert "@" in caps.completion_provider.trigger_characters


async def test_broken_file_then_fixed(client: LanguageClient) -> None:
    uri = "file:///work/broken.cnn"
    _open(client, uri, BROKEN)
    diags = await _diagnostics(client, uri)
    codes = {(d.code, d.range.start.line, d.range.start.character, d.range.end.character) for d in diags}
    # The error is where `check` puts it (the groups value in the block, line 5) and at the call (line 10).
    assert ("E303", 4, 31, 32) in codes
    assert ("E303", 9, 4, 8) in codes
    in_block = next(d for d in diags if d.range.start.line == 4)
    assert in_block.message.startswith("groups must divide the input channels; received groups=3, in_channels=8")
    assert "hint: pick groups from the divisors" in in_block.message
    assert in_block.severity == T.DiagnosticSeverity.Error and in_block.source == "specdsl"
    assert in_block.related_information[0].location.range.start.line == 9

    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [T.TextDocumentContentChangePartial(range=T.Range(T.Position(4, 22), T.Position(4, 32)), text="")]))
    client.diagnostics.pop(uri)
    assert await _diagnostics(client, uri) == []


async def test_yaml_diagnostics_and_did_you_mean_fix(client: LanguageClient) -> None:
    uri = "file:///work/spec.yaml"
    text = "model: m\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3, strides: 2}\n  - rleu\n"
    _open(client, uri, text, "yaml")
    diags = await _diagnostics(client, uri)
    assert [(d.code, d.range.start.line, d.range.start.character) for d in diags] == [("E201", 3, 25), ("E204", 4, 4)]
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), diags[1].range, T.CodeActionContext(diagnostics=diags)))
    titles = [a.title for a in actions]
    assert titles == ["Replace 'strides' with 'stride'", "Replace 'rleu' with 'relu'"]
    edit = actions[1].edit.changes[uri][0]
    assert (edit.range.start.line, edit.range.start.character, edit.range.end.character, edit.new_text) == \
        (4, 4, 8, "relu")


async def test_hover_op_block_and_ref(client: LanguageClient) -> None:
    uri = "file:///work/fixed.cnn"
    await _open_checked(client, uri, FIXED)
    conv = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(8, 6)))
    text = conv.contents.value
    assert "**conv**" in text and "output `[8, 32, 32]`" in text
    assert "`dilation=1` (default)" in text and "params 224" in text and "MACs 221,184" in text
    assert "RF 3/1/1" in text
    block = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(9, 6)))
    assert "**unit**" in block.contents.value
    assert "| c=16 | `[16, 32, 32]` | 1,200 |" in block.contents.value
    ref = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(10, 7)))
    assert ref.contents.value.startswith("`@stem` → `layers[1]`")
    assert (ref.range.start.line, ref.range.start.character, ref.range.end.character) == (10, 6, 10)


async def test_inlay_hints_show_shapes_and_repeats(client: LanguageClient) -> None:
    async def hints_of(name: str) -> tuple[list[str], dict[int, str], list[T.InlayHint]]:
        uri = f"file:///work/{name}.cnn"
        text = read_source(name)[1]
        await _open_checked(client, uri, text)
        hints = await client.text_document_inlay_hint_async(T.InlayHintParams(
            T.TextDocumentIdentifier(uri), T.Range(T.Position(0, 0), T.Position(80, 0))))
        lines = text.split("\n")
        assert all(h.position.character == len(lines[h.position.line].rstrip()) for h in hints)
        return lines, {h.position.line: h.label.strip() for h in hints}, hints

    lines, by_line, _ = await hints_of("resnet")  # a family file: its defaults, resnet50, are shown

    def line(snippet: str) -> int:
        return next(i for i, text in enumerate(lines) if snippet in text)

    assert by_line[line("conv(64, k=7")] == "[64, 112, 112]"  # conv -> bn -> relu
    assert by_line[line("unit(64) x(n1)")] == "×3 → [256, 56, 56]"  # resnet50's n1, an expression count
    assert by_line[line("as layer4")].endswith("[2048, 7, 7]")
    assert by_line[line("linear(classes)")] == "[1000]"
    # A block's line: one shape per call; a layer switched off by its `if` has none.
    assert by_line[line("conv(c * 4, k=1")].startswith("[256, 56, 56] | [512, 28, 28]")
    assert line("conv(c, k=3, stride=stride") not in by_line
    lines, by_line, _ = await hints_of("squeezenet")
    assert by_line[line("fire(16, e=64) x2")] == "×2 → [128, 54, 54]"


async def test_definition_of_block_call_and_ref(client: LanguageClient) -> None:
    uri = "file:///work/fixed.cnn"
    await _open_checked(client, uri, FIXED)
    call = await client.text_document_definition_async(T.DefinitionParams(T.TextDocumentIdentifier(uri),
                                                                         T.Position(9, 6)))
    assert (call.range.start.line, call.range.start.character, call.range.end.character) == (3, 6, 10)
    ref = await client.text_document_definition_async(T.DefinitionParams(T.TextDocumentIdentifier(uri),
                                                                        T.Position(10, 8)))
    assert (ref.range.start.line, ref.range.start.character, ref.range.end.character) == (8, 35, 39)


async def test_document_symbols(client: LanguageClient) -> None:
    uri = "file:///work/fixed.cnn"
    await _open_checked(client, uri, FIXED)
    symbols = await client.text_document_document_symbol_async(
        T.DocumentSymbolParams(T.TextDocumentIdentifier(uri)))
    assert [(s.name, s.kind) for s in symbols] == [("unit", T.SymbolKind.Class), ("layers", T.SymbolKind.Namespace)]
    assert [c.name for c in symbols[1].children] == ["stem"]


async def test_completion(client: LanguageClient) -> None:
    uri = "file:///work/typing.cnn"
    text = FIXED.replace("    [@stem] -> maxpool(2)\n", "    conv(4, \n    [@\n    ma\n")
    _open(client, uri, text)

    async def labels(line: int, character: int) -> dict[str, T.CompletionItem]:
        result = await client.text_document_completion_async(T.CompletionParams(
            T.TextDocumentIdentifier(uri), T.Position(line, character)))
        return {i.label: i for i in result.items}

    args = await labels(10, 12)
    assert {"k", "stride", "pad", "groups"} <= set(args)
    assert args["stride"].detail == "int > 0 | list[int > 0] (1..3) (default 1)"
    assert args["stride"].insert_text == "stride="
    assert set(await labels(11, 6)) == {"input", "stem"}
    ops = await labels(12, 6)
    assert {"maxpool", "conv", "residual", "unit"} <= set(ops)
    assert ops["unit"].kind == T.CompletionItemKind.Class


async def test_formatting(client: LanguageClient) -> None:
    uri = "file:///work/messy.cnn"
    messy = "model m\ninput [3,8,8]\nlayers {\n  conv( 4 ,k=3)->relu   # keep me\n}\n"
    await _open_checked(client, uri, messy)
    edits = await client.text_document_formatting_async(T.DocumentFormattingParams(
        T.TextDocumentIdentifier(uri), T.FormattingOptions(4, True)))
    assert len(edits) == 1
    assert edits[0].new_text == "model m\ninput [3, 8, 8]\n\nlayers {\n    conv(4, k=3) -> relu  # keep me\n}\n"


GARBAGE = [
    "", "\x00\x01\x02", "{{{{((((", "layers {" * 2000, "model: [\n" * 500, "- - - -\n:::\n\t\t@@@",
    "model m\ninput [3, 8, 8]\nlayers {\n    conv(8, k=3) x999999999\n}\n",
    "model: m\ninput: [3, 8, 8]\nlayers:\n  - &a relu\n  - *a\n", "!!python/object/apply:os.system ['ls']",
    "model m\ninput [3, 8, 8]\nlayers {\n    @@ -> @ -> ( ]\n}\n", "\ufeff\u202e\U0001f600 model",
]


@pytest.mark.parametrize("language", ["specdsl", "yaml"])
async def test_garbage_never_crashes_the_server(client: LanguageClient, language: str) -> None:
    ext = "cnn" if language == "specdsl" else "yaml"
    for i, text in enumerate(GARBAGE):
        uri = f"file:///work/garbage{i}.{ext}"
        _open(client, uri, text, language)
        diags = await _diagnostics(client, uri)
        if language == "specdsl" and text.strip("\ufeff\u202e\U0001f600 model"):
            assert diags, text[:40]
        doc = T.TextDocumentIdentifier(uri)
        for line, character in ((0, 0), (0, 3), (2, 5), (50, 50)):
            pos = T.Position(line, character)
            await client.text_document_hover_async(T.HoverParams(doc, pos))
            await client.text_document_completion_async(T.CompletionParams(doc, pos))
            await client.text_document_definition_async(T.DefinitionParams(doc, pos))
        await client.text_document_inlay_hint_async(T.InlayHintParams(doc, T.Range(T.Position(0, 0),
                                                                                     T.Position(100, 0))))
        await client.text_document_document_symbol_async(T.DocumentSymbolParams(doc))
        await client.text_document_formatting_async(T.DocumentFormattingParams(doc, T.FormattingOptions(4, True)))
        client.text_document_did_close(T.DidCloseTextDocumentParams(doc))
    # Still serving: a good document gets its figures.
    uri = "file:///work/after.cnn"
    await _open_checked(client, uri, FIXED)
    hover = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(8, 6)))
    assert "output `[8, 32, 32]`" in hover.contents.value


async def test_yaml_that_is_not_a_spec_is_left_alone(client: LanguageClient) -> None:
    uri = "file:///work/docker-compose.yml"
    _open(client, uri, "services:\n  web:\n    image: nginx\n", "yaml")
    assert await _diagnostics(client, uri) == []
    # A Hydra / Lightning config: `model:` is its commonest key.
    uri = "file:///work/config.yaml"
    hydra = "model: {name: resnet50, lr: 0.1}\ninput: {size: 224}\ntrainer:\n  max_epochs: 10\n"
    _open(client, uri, hydra, "yaml")
    assert await _diagnostics(client, uri) == []
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [T.TextDocumentContentChangePartial(range=T.Range(T.Position(3, 14), T.Position(3, 16)), text="20")]))
    doc = T.TextDocumentIdentifier(uri)
    # Requests right after the edit answer (nothing) at once: no analysis to wait for.
    hover = client.text_document_hover_async(T.HoverParams(doc, T.Position(0, 9)))
    assert await asyncio.wait_for(hover, 5) is None
    completion = await client.text_document_completion_async(T.CompletionParams(doc, T.Position(1, 9)))
    assert not completion.items


async def test_shutdown_and_exit() -> None:
    lsp = await CONFIG.start()
    await lsp.initialize_session(T.InitializeParams(capabilities=T.ClientCapabilities()))
    await lsp.shutdown_session()
    assert lsp._server.returncode == 0
    await lsp.stop()
