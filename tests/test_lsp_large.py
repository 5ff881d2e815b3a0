"""Large documents: analyses run off the event loop, stale ones are stopped, and only the version
the editor shows publishes diagnostics; completion answers while an analysis runs."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
T = pytest.importorskip("lsprotocol.types")

from pygls.protocol import default_converter  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features  # noqa: E402

from specdsl.lsp.jobs import Job  # noqa: E402
from specdsl.lsp.server import LARGE_BYTES  # noqa: E402


def _published(client: LanguageClient, params: T.PublishDiagnosticsParams) -> None:
    """As pytest-lsp's own handler, and every publication's version kept in order."""
    client.diagnostics[params.uri] = params.diagnostics
    client.published.append((params.uri, params.version))  # type: ignore[attr-defined]


def _client() -> LanguageClient:
    client = LanguageClient(converter_factory=default_converter)
    client.published = []  # type: ignore[attr-defined]
    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: _published})
    return client


CONFIG = ClientServerConfig(server_command=[sys.executable, "-m", "specdsl", "lsp"], client_factory=_client)
LINE = "    conv(8, k=3, pad=1) -> relu\n"
LARGE = "model m\ninput [8, 16, 16]\nlayers {\n" + LINE * (LARGE_BYTES // len(LINE) + 50) + "}\n"

pytestmark = pytest.mark.asyncio


@pytest_lsp.fixture(config=CONFIG)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(T.InitializeParams(capabilities=T.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


async def test_a_stale_job_is_stopped() -> None:
    def spin() -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pass
        return 1

    job = Job(spin, 1, asyncio.get_running_loop())
    job.start()
    await asyncio.sleep(0.05)
    job.stop()
    assert await asyncio.wait_for(job.future, 5) is None


async def test_only_the_shown_version_publishes(client: LanguageClient) -> None:
    uri = "file:///work/large.cnn"
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "specdsl", 1, LARGE)))
    while uri not in client.diagnostics:
        await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert not client.diagnostics.pop(uri)
    client.published.clear()  # type: ignore[attr-defined]
    # Typing at the start of a layer line: each keystroke makes the previous analysis stale.
    column = 0
    for version, text in enumerate(("    ", "co", "nv", "(4", ", k", "=1)", " -> "), start=2):
        at = T.Position(3, column)
        client.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [T.TextDocumentContentChangePartial(range=T.Range(at, at), text=text)]))
        column += len(text)
        # Completion answers from the text, before any analysis of it ends (none has published yet).
        items = await client.text_document_completion_async(T.CompletionParams(T.TextDocumentIdentifier(uri), at))
        assert uri not in client.diagnostics and items is not None
    # A request waits for the analysis of the text the editor shows (version 8).
    hover = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(3, 5)))
    assert hover.contents.value.startswith("**conv**") and "output `[4, 16, 16]`" in hover.contents.value
    while uri not in client.diagnostics:
        await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert client.published == [(uri, 8)]  # type: ignore[attr-defined]  # no stale version published
