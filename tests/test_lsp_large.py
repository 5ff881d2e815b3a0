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
    # With the version the client knew the server had read when it came (see test below).
    client.published.append((params.uri, params.version, client.shown))  # type: ignore[attr-defined]


def _client() -> LanguageClient:
    client = LanguageClient(converter_factory=default_converter)
    client.published = []  # type: ignore[attr-defined]
    client.shown = 0  # type: ignore[attr-defined]
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
    # The server reads messages in order, so once completion at version v has answered, the server has
    # read version v: any publication that arrives later must be of version v or newer. Whether an
    # intermediate version publishes at all depends on how fast the machine is (its pause is short),
    # so that is not asserted; publishing one that is stale is.
    column = 0
    for version, text in enumerate(("    ", "co", "nv", "(4", ", k", "=1)", " -> "), start=2):
        at = T.Position(3, column)
        client.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [T.TextDocumentContentChangePartial(range=T.Range(at, at), text=text)]))
        column += len(text)
        # Completion answers from the text, without waiting for an analysis.
        items = await client.text_document_completion_async(T.CompletionParams(T.TextDocumentIdentifier(uri), at))
        client.shown = version  # type: ignore[attr-defined]
        assert items is not None
    # A request waits for the analysis of the text the editor shows (version 8).
    hover = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(3, 5)))
    assert hover.contents.value.startswith("**conv**") and "output `[4, 16, 16]`" in hover.contents.value
    while not client.published or client.published[-1][1] != 8:  # type: ignore[attr-defined]
        await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    published = client.published  # type: ignore[attr-defined]
    assert all(version >= shown for _, version, shown in published), published  # none stale
    assert [v for _, v, _ in published] == sorted(v for _, v, _ in published)
    assert published[-1][:2] == (uri, 8)
