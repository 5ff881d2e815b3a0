"""Replacing a file all at once, so a full disk, a file-size limit or an interrupt leaves the old one whole.

Shared by the commands (specdsl.cli.files, which turns failures into "could not write" messages) and
the backends that write files of their own (checkpoints, ONNX).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence


def replace_file(path: str | os.PathLike[str], data: str | bytes | Sequence[bytes | memoryview]) -> None:
    """Replace ``path`` by ``data``: a temporary file in the same folder, fsync, rename. ``data``
    may be a sequence of buffers written one after the other (a large file need not be joined first).

    An existing file keeps its permission bits; a link is followed, so the file it points at is the one
    replaced. On failure the destination is untouched, the temporary file is removed, and the OSError
    propagates.
    """
    target = os.path.realpath(os.fspath(path))
    payload = [data.encode("utf-8")] if isinstance(data, str) else [data] if isinstance(data, bytes) else data
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        _write(target, payload, mode)
    except OSError as exc:
        # A full disk or a size limit names no file; name the one being written, so the commands say
        # "could not write PATH: No space left on device" (exit 1) instead of reporting a bug.
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc), target) from exc
        raise


def _write(target: str, payload: Sequence[bytes | memoryview], mode: int) -> None:
    # Imported here: tempfile brings random, shutil, bz2 and lzma, and every command imports this module
    # (through specdsl.cli.files) while only those that write a file call it.
    import tempfile

    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp",
                                   dir=os.path.dirname(target) or ".")
        with os.fdopen(fd, "wb") as fh:
            for chunk in payload:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
        _sync_folder(os.path.dirname(target) or ".")
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
