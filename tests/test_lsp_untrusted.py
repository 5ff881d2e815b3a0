"""The language server under hostile input (issue 30, item 5), driven over raw stdio.

What an editor never sends but a fuzzer (or a broken client) does: requests before initialize,
parameters of the wrong types, bad Content-Length headers, URIs of files the client never opened
(/dev/zero, a FIFO, a file outside the workspace), a 30 KB line, a 100,000-node document. Each must
get the answer the protocol requires, quickly, and the server must keep answering.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("pygls")

SPEC = "model m\ninput [3, 8, 8]\nlayers {\n  conv(4, k=1)\n}\n"


def _frame(obj: Any = None, header: bytes | None = None) -> bytes:
    body = json.dumps(obj).encode()
    return (header if header is not None else f"Content-Length: {len(body)}\r\n\r\n".encode()) + body


class Raw:
    """The server's stdin and stdout, one JSON-RPC frame at a time, every read with a deadline."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "specdsl", "lsp"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.buf = b""
        self.next_id = 100

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _message(self, deadline: float) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        while True:
            if b"\r\n\r\n" in self.buf:
                head, rest = self.buf.split(b"\r\n\r\n", 1)
                length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n")
                              if h.lower().startswith(b"content-length"))
                if len(rest) >= length:
                    self.buf = rest[length:]
                    return json.loads(rest[:length])
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                return None
            self.buf += chunk

    def wait(self, pred: Any, timeout: float = 10.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while (message := self._message(deadline)) is not None:
            if pred(message):
                return message
        return None

    def request(self, method: str, params: Any, timeout: float = 10.0, header: bytes | None = None) -> Any:
        self.next_id += 1
        msg_id = self.next_id
        self.send(_frame({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}, header))
        return self.wait(lambda m: m.get("id") == msg_id and "method" not in m, timeout)

    def notify(self, method: str, params: Any) -> None:
        self.send(_frame({"jsonrpc": "2.0", "method": method, "params": params}))

    def initialize(self, root: str | None = None) -> None:
        answer = self.request("initialize", {"processId": None, "capabilities": {},
                                             "rootUri": f"file://{root}" if root else None}, 60)
        assert answer is not None and "result" in answer
        self.notify("initialized", {})

    def open(self, uri: str, text: str) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "specdsl", "version": 1,
                                                              "text": text}})

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def raw():
    client = Raw()
    yield client
    client.close()


def _pos(line: int, character: int, uri: str = "file:///w/a.cnn") -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


def test_a_request_before_initialize_is_32002(raw: Raw) -> None:
    answer = raw.request("textDocument/hover", _pos(0, 0), 60)
    assert answer is not None and answer["error"]["code"] == -32002
    raw.initialize()
    assert "result" in raw.request("textDocument/hover", _pos(0, 0))


@pytest.mark.parametrize("params", [
    _pos(-1, 0), _pos(0, -3), {"textDocument": {"uri": "file:///w/a.cnn"}, "position": {"line": "a", "character": 0}},
    {"textDocument": 5, "position": {"line": 0, "character": 0}}, None, [1, 2], {"position": {"line": 0}},
])
def test_parameters_of_the_wrong_types_are_32602_and_the_server_goes_on(raw: Raw, params: Any) -> None:
    raw.initialize()
    raw.open("file:///w/a.cnn", SPEC)
    for method in ("textDocument/hover", "textDocument/definition", "textDocument/completion"):
        answer = raw.request(method, params)
        assert answer is not None and answer.get("error", {}).get("code") == -32602, (method, answer)
    assert raw.request("textDocument/hover", _pos(3, 3))["result"]["contents"]["value"].startswith("**conv**")


@pytest.mark.parametrize("header", [b"Content-Length: abc\r\n\r\n", b"Content-Length: -5\r\n\r\n",
                                    b"Content-Type: x\r\n\r\n", b"Content-Length: 10\r\n\r\n{not json}"])
def test_a_bad_header_is_skipped_and_the_server_keeps_answering(raw: Raw, header: bytes) -> None:
    raw.initialize()
    raw.open("file:///w/a.cnn", SPEC)
    raw.send(header)
    answer = raw.request("textDocument/hover", _pos(3, 3))
    assert answer is not None and answer["result"]["contents"]["value"].startswith("**conv**")


def test_files_the_client_never_opened_are_never_read(raw: Raw, tmp_path) -> None:
    fifo = tmp_path / "pipe.cnn"
    os.mkfifo(fifo)
    outside = tmp_path / "secret.cnn"
    outside.write_text("model secret\ninput [3, 8, 8]\nlayers {\n  conv(4,  k=1)\n}\n", encoding="utf-8")
    raw.initialize(str(tmp_path / "workspace"))
    for uri in ("file:///dev/zero", f"file://{fifo}", f"file://{outside}", "file:///proc/self/fd/0"):
        for method, params in (("textDocument/definition", _pos(3, 3, uri)), ("textDocument/hover", _pos(3, 3, uri)),
                               ("textDocument/completion", _pos(3, 3, uri)),
                               ("textDocument/formatting", {"textDocument": {"uri": uri},
                                                            "options": {"tabSize": 4, "insertSpaces": True}})):
            answer = raw.request(method, params, 5)
            assert answer is not None, (method, uri)
            assert "secret" not in json.dumps(answer) and answer.get("result") in (None, [], {"isIncomplete": False,
                                                                                         "items": []}), answer
    assert raw.proc.poll() is None


def test_completion_on_a_30_kb_line_answers_at_once(raw: Raw) -> None:
    line = "  " + "a" * 30_000 + "!("
    raw.initialize()
    raw.open("file:///w/a.cnn", f"model m\ninput [3, 8, 8]\nlayers {{\n{line}\n}}\n")
    answer = raw.request("textDocument/completion", {**_pos(3, len(line)), "context": {"triggerKind": 2,
                                                                                      "triggerCharacter": "("}})
    assert answer is not None and "result" in answer
    assert raw.request("textDocument/hover", _pos(0, 0)) is not None


def test_a_100000_node_document_is_refused_with_a_diagnostic_at_once(raw: Raw) -> None:
    raw.initialize()
    raw.open("file:///w/big.cnn", "model m\ninput [4, 8, 8]\nlayers {\n  conv(4, k=1) x100000\n}\n")
    published = raw.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                         and m["params"]["uri"] == "file:///w/big.cnn", 10)
    assert published is not None  # within wait()'s 10 s: the refusal comes before any expansion
    assert [d["code"] for d in published["params"]["diagnostics"]] == ["E330"]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(body=st.text(alphabet="ab_1 (),=@[]{}:'\"#-!>", min_size=0, max_size=40), repeat=st.integers(1, 3000),
       dsl=st.booleans())
def test_completion_answers_on_any_line(body: str, repeat: int, dsl: bool) -> None:
    from specdsl.lsp.complete import complete

    line = (body * repeat)[:60_000]
    text = ("model m\ninput [3, 8, 8]\nlayers {\n" if dsl else "model: m\ninput: [3, 8, 8]\nlayers:\n") + line + "\n"
    for col in (len(line) + 1, len(line) // 2 + 1):
        complete(text, 4, col, dsl, None, None)
