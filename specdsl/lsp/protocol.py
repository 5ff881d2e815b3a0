"""The JSON-RPC answers pygls leaves out, so a client (or a fuzzer) always hears why a request failed.

pygls drops a request whose parameters do not fit the protocol's types (a negative position, a
string for a line, a number for a document): the object hook that reads the message raises, and
nothing is sent. JSON-RPC requires ``-32602 InvalidParams``. It also answers requests sent before
``initialize`` as if they were fine (``result: null``), where LSP requires ``-32002
ServerNotInitialized`` (and notifications before it to be dropped, ``exit`` excepted).
:class:`SpecProtocol` adds both; everything else is pygls's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcServerNotInitialized
from pygls.protocol import LanguageServerProtocol

__all__ = ["SpecProtocol"]

_BEFORE_INITIALIZE = {"initialize", "exit"}


@dataclass
class _Unreadable:
    """A request whose parameters could not be read: answered with -32602, never run."""

    id: Any
    method: str
    jsonrpc: str = "2.0"


class SpecProtocol(LanguageServerProtocol):
    """pygls's protocol with the errors JSON-RPC and LSP require (see the module docstring)."""

    _specdsl_initialized = False

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException:
            if isinstance(data, dict) and "method" in data and "id" in data:
                msg_id = data["id"] if isinstance(data["id"], (int, str)) else None
                return _Unreadable(msg_id, str(data["method"]))
            raise  # a notification or response that does not fit: pygls logs it, nothing to answer

    def handle_message(self, message: Any) -> None:
        method = getattr(message, "method", None)
        is_request = method is not None and hasattr(message, "id")
        if not self._specdsl_initialized and method is not None and method not in _BEFORE_INITIALIZE:
            if is_request:
                self._send_response(message.id, None, JsonRpcServerNotInitialized().to_response_error())
            return  # a notification before initialize is dropped
        if isinstance(message, _Unreadable):
            self._send_response(message.id, None, JsonRpcInvalidParams(
                f"the parameters of {message.method} do not fit the protocol's types").to_response_error())
            return
        if method == "initialize":
            self._specdsl_initialized = True
        super().handle_message(message)
