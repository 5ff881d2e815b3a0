"""One analysis run off the event loop, in a thread of its own, that can be stopped when stale.

The pipeline is pure Python and a large document takes seconds (the 20,000-line case of the
README's limits), so it runs outside the event loop: the server keeps reading the editor's
messages meanwhile. An analysis whose text has been edited since is of no use, and waiting for
it would delay the next one, so stop() ends it: CPython raises `Stale` in its thread at the next
bytecode boundary (PyThreadState_SetAsyncExc; C code, such as a regex match, finishes first).
`Stale` is a BaseException so that the pipeline's `except Exception` handlers let it through.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Job", "Stale"]

R = TypeVar("R")


class Stale(BaseException):
    """Raised inside an analysis thread whose document has changed since it started."""


class Job(Generic[R]):
    """fn() in a new daemon thread; `future` gets its result, or None if it was stopped."""

    def __init__(self, fn: Callable[[], R], version: int | None, loop: asyncio.AbstractEventLoop) -> None:
        self.fn, self.version, self.loop = fn, version, loop
        self.future: asyncio.Future[R | None] = loop.create_future()
        self.started = time.monotonic()
        # `running` turns False, under the lock, before the thread leaves the try that catches
        # Stale; stop() raises only while it is True, and only once, so Stale never escapes.
        self._lock = threading.Lock()
        self._running = True
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name="specdsl-analysis", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _work(self) -> None:
        result: R | None = None
        try:
            try:
                result = self.fn()
            finally:
                with self._lock:
                    self._running = False
        except Stale:
            result = None
        try:
            self.loop.call_soon_threadsafe(self._finish, result)
        except RuntimeError:  # the event loop has closed: the server is exiting
            pass

    def _finish(self, result: R | None) -> None:
        if not self.future.done():
            self.future.set_result(result)

    def stop(self) -> None:
        with self._lock:
            ident = self._thread.ident
            if self._running and not self._stopped and ident is not None:
                self._stopped = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(Stale))
