"""Writing a command's output without ever losing a user's file.

Every command that writes a file (fmt, convert -o, build -o, diagram -o) goes through
:func:`write_atomic`: the bytes go to a temporary file in the destination's folder, are
flushed to disk (fsync), and only then renamed over the destination, so a full disk, a
file-size limit or an interrupt leaves the old file whole. :func:`refuse_input` stops a
command from writing its output over the spec it reads.
"""

from __future__ import annotations

import os
import stat
import tempfile

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
            raise OutputError(f"refusing to write over the input spec {source}; "
                              "name another file with -o", EXIT_USAGE)


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Replace ``path`` by ``data`` all at once: a temporary file in the same folder, fsync, rename.

    An existing file keeps its permission bits; a link is followed, so the file it points at is the one
    replaced. On any failure the destination is untouched, the temporary file is removed, and
    OutputError (exit 1) says "could not write PATH: REASON".
    """
    shown = os.fspath(path)
    target = os.path.realpath(shown)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp",
                                   dir=os.path.dirname(target) or ".")
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
        _sync_folder(os.path.dirname(target) or ".")
    except OSError as exc:
        raise OutputError(f"could not write {shown}: {exc.strerror or exc}", EXIT_SPEC) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (where the platform lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
