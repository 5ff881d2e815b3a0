"""Writing a command's output without ever losing a user's file.

Every command that writes a file (fmt, convert -o, build -o, diagram -o) goes through
:func:`write_atomic`: the bytes go to a temporary file in the destination's folder, are
flushed to disk (fsync), and only then renamed over the destination, so a full disk, a
file-size limit or an interrupt leaves the old file whole. :func:`refuse_input` stops a
command from writing its output over the spec it reads.
"""

from __future__ import annotations

import os

from specdsl.atomic import replace_file
from specdsl.cli.common import EXIT_SPEC, EXIT_USAGE

__all__ = ["OutputError", "refuse_input", "same_file", "write_atomic"]


class OutputError(Exception):
    """An output the command could not (or would not) write; main prints it and exits with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file (links and relative spellings included)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        try:
            return os.path.realpath(a) == os.path.realpath(b)
        except (OSError, ValueError):
            return False


def refuse_input(output: str | os.PathLike[str] | None, inputs: list[str | os.PathLike[str]],
                 command: str) -> None:
    """Raise OutputError (exit 2) when ``output`` is one of the files the command reads."""
    if output is None:
        return
    for source in inputs:
        if os.path.exists(str(source)) and same_file(output, source):
            raise OutputError(f"refusing to write over {source}, which this command reads; "
                              "name another file with -o", EXIT_USAGE)


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Replace ``path`` by ``data`` all at once (specdsl.atomic.replace_file); on failure the destination
    is untouched and OutputError (exit 1) says "could not write PATH: REASON"."""
    try:
        replace_file(path, data)
    except OSError as exc:
        raise OutputError(f"could not write {os.fspath(path)}: {exc.strerror or exc}", EXIT_SPEC) from None
