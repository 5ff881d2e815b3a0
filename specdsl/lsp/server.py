"""`specdsl lsp`: the language server (pygls, over stdio) for `.cnn` and spec `.yaml` files.

Each open document is analysed by the `check` pipeline (specdsl.lsp.analysis) in a thread of its
own (specdsl.lsp.jobs), so the server keeps reading messages while it runs. When it opens the
document is analysed at once; after an edit, a small document (under LARGE_BYTES) is analysed at
once after a pause and at most once per DEBOUNCE_S while the user keeps typing (a pause counts
from the end of the last analysis); a larger one waits for a pause that grows with its size
(DEBOUNCE_S + PAUSE_PER_MIB_S per MiB), and an edit stops its analysis if one is running.
Requests (hover, inlay hints, ...) wait for the analysis of the text the editor shows; only
completion answers at once, from the text. Only the latest analysis of a document is kept, and
only an analysis of the current version publishes diagnostics. A handler that fails answers
nothing and logs why; the server stays up.

Positions cross the protocol in the encoding negotiated at initialisation (utf-8, utf-16 or
utf-32): every handler converts with `ls.encoding` (specdsl.lsp.convert).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from specdsl.errors import Diagnostic
from specdsl.lsp import convert
from specdsl.lsp.analysis import LSP_BUDGETS, DocAnalysis, analyse, is_spec_yaml
from specdsl.lsp.index import Index
from specdsl.lsp.jobs import Job
from specdsl.version import __version__

__all__ = ["DEBOUNCE_S", "LARGE_BYTES", "PAUSE_PER_MIB_S", "SpecServer", "guarded", "server"]

DEBOUNCE_S = 0.05
LARGE_BYTES = 64 * 1024  # about 2,000 lines: its analysis takes longer than the pause between keys
PAUSE_PER_MIB_S = 0.5
_DSL_LANGUAGES = ("specdsl", "cnn")
_KINDS = {"op": T.CompletionItemKind.Function, "block": T.CompletionItemKind.Module,
          "user_block": T.CompletionItemKind.Class, "arg": T.CompletionItemKind.Property,
          "value": T.CompletionItemKind.EnumMember, "ref": T.CompletionItemKind.Reference,
          "keyword": T.CompletionItemKind.Keyword}
# A feature handler, plain or async: (server, params) -> the result, or an awaitable of it.
Handler = Callable[["SpecServer", Any], Any]


@dataclass
class DocState:
    version: int | None
    analysis: DocAnalysis
    index: Index | None = None

    def idx(self) -> Index:
        if self.index is None:
            self.index = Index(self.analysis)
        return self.index


@dataclass
class Tracker:
    """One open document: its latest analysis, the one running, the one scheduled."""

    state: DocState | None = None
    parsed: DocState | None = None  # the latest analysis that got as far as plain data (YAML completion)
    job: Job[DocAnalysis] | None = None
    timer: asyncio.TimerHandle | None = None
    again: bool = False  # start another analysis when the running one ends
    last_change: float = 0.0
    last_run: float = 0.0
    waiting: list[asyncio.Future[None]] = field(default_factory=list)


class SpecServer(LanguageServer):
    def __init__(self) -> None:
        from specdsl.lsp.protocol import SpecProtocol

        super().__init__("specdsl", __version__, text_document_sync_kind=T.TextDocumentSyncKind.Incremental,
                         protocol_cls=SpecProtocol)
        self.docs: dict[str, Tracker] = {}

    @property
    def encoding(self) -> str:
        kind = self.workspace.position_encoding
        return str(getattr(kind, "value", kind) or convert.UTF16)

    def file_of(self, uri: str, language: str | None) -> str:
        path = to_fs_path(uri) or uri
        if not path.endswith((".cnn", ".yaml", ".yml")):
            path += ".cnn" if language in _DSL_LANGUAGES else ".yaml"
        return path

    def document(self, uri: str) -> Any:
        """The open document at ``uri``, or None: only documents the client opened are served (pygls's
        get_text_document would read any other URI from disk: /dev/zero, a FIFO, a file outside the workspace)."""
        from urllib.parse import unquote

        try:
            docs = self.workspace.text_documents
        except Exception:  # before initialize: no workspace yet
            return None
        return docs.get(uri) or docs.get(unquote(uri))

    # -- analysis ----------------------------------------------------------------------

    def start(self, uri: str) -> None:
        """Start analysing the document's current text, unless that is under way."""
        t = self.docs.setdefault(uri, Tracker())
        if t.timer is not None:
            t.timer.cancel()
            t.timer = None
        doc = self.document(uri)
        if doc is None:
            return
        if t.job is not None:
            if t.job.version == doc.version:
                return
            if len(doc.source) < LARGE_BYTES:
                t.again = True  # a small document's analysis ends within milliseconds: let it
                return
            t.job.stop()
        text, file = doc.source, self.file_of(uri, doc.language_id)
        if not file.endswith(".cnn") and not is_spec_yaml(text):
            # Editors attach the server to every YAML file; only specs get diagnostics (README: Editors).
            self.finished(uri, None, doc.version, DocAnalysis(file, text, False))
            return
        job = Job(lambda: self.analyse(text, file), doc.version, asyncio.get_running_loop())
        job.future.add_done_callback(lambda f: self.finished(uri, job, job.version, f.result()))
        t.job = job
        job.start()

    def finished(self, uri: str, job: Job[DocAnalysis] | None, version: int | None,
                 result: DocAnalysis | None) -> None:
        t = self.docs.get(uri)
        if t is None:
            return  # closed meanwhile
        if job is not None and t.job is job:
            t.job = None
        t.last_run = time.monotonic()
        doc = self.document(uri)
        if result is not None and doc is not None and (t.state is None or t.state.version is None
                                                       or (version or 0) >= t.state.version):
            t.state = DocState(version, result)
            if result.data is not None:
                t.parsed = t.state
            if version == doc.version:
                self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri, convert.lsp_diagnostics(
                    result.diagnostics, result.file, uri, result.lines, self.encoding), version))
        for waiter in t.waiting:
            if not waiter.done():
                waiter.set_result(None)
        t.waiting.clear()
        if t.again:
            t.again = False
            self.start(uri)

    def analyse(self, text: str, file: str) -> DocAnalysis:
        try:
            return analyse(text, file, LSP_BUDGETS)
        except Exception as exc:  # a bug in specdsl: say so in the editor, keep serving
            return DocAnalysis(file, text, file.endswith(".cnn"), [Diagnostic(
                "error", "E000", f"internal error — this is a bug: {type(exc).__name__}: {exc}",
                hint="please report it with the spec that triggered it")])

    def schedule(self, uri: str) -> None:
        """After an edit: start the next analysis when the pause the document's size asks for is over."""
        t = self.docs.setdefault(uri, Tracker())
        doc = self.document(uri)
        size = len(doc.source) if doc is not None else 0
        now = time.monotonic()
        # Changes that queued up while an analysis ran look spaced out when they are finally read:
        # the pause is counted from the later of the last change and the end of the last analysis.
        quiet = now - max(t.last_change, t.last_run) > DEBOUNCE_S
        t.last_change = now
        if size >= LARGE_BYTES:
            if t.job is not None:
                t.job.stop()
            delay = DEBOUNCE_S + PAUSE_PER_MIB_S * size / (1024 * 1024)
        else:
            delay = 0 if quiet else DEBOUNCE_S
        if t.timer is not None:
            t.timer.cancel()
        t.timer = asyncio.get_running_loop().call_later(delay, self.start, uri)

    async def current(self, uri: str) -> DocState | None:
        """The analysis of the text the editor shows, waiting for it if need be."""
        t = self.docs.get(uri)
        if t is None:
            return None
        for _ in range(16):
            doc = self.document(uri)
            if doc is None:
                return t.state
            if t.state is not None and t.state.version == doc.version and t.state.analysis.text == doc.source:
                return t.state
            self.start(uri)
            if t.job is None:
                continue  # done at once (a YAML file that is not a spec): nothing to wait for
            waiter = asyncio.get_running_loop().create_future()
            t.waiting.append(waiter)
            await waiter
        return t.state

    def forget(self, uri: str) -> None:
        t = self.docs.pop(uri, None)
        if t is not None:
            if t.timer is not None:
                t.timer.cancel()
            if t.job is not None:
                t.job.stop()
            for waiter in t.waiting:
                if not waiter.done():
                    waiter.set_result(None)
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri, []))


server = SpecServer()


def guarded(fn: Handler) -> Handler:
    """A failing handler logs and answers nothing: a garbage document never takes the server down."""

    def failed(ls: SpecServer, exc: Exception) -> None:
        ls.window_log_message(T.LogMessageParams(
            T.MessageType.Error, f"specdsl lsp: {fn.__name__} failed: {type(exc).__name__}: {exc}"))

    if inspect.iscoroutinefunction(fn):
        @wraps(fn)
        async def run_async(ls: SpecServer, params: Any) -> Any:
            try:
                return await fn(ls, params)
            except Exception as exc:
                failed(ls, exc)
                return None

        return run_async

    @wraps(fn)
    def run(ls: SpecServer, params: Any) -> Any:
        try:
            return fn(ls, params)
        except Exception as exc:
            failed(ls, exc)
            return None

    return run
