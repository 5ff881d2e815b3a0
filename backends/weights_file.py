"""Opening an untrusted weight file: what it is, how big it may be, and ``.npz`` read within bounds.

Shared by the PyTorch backend (checkpoint.py) and the NumPy one (weights.py), so `build`, `export`
and `diff --weights` refuse the same files the same way, as located SpecErrors (exit 1):

* the path must name a regular file (a FIFO would block the read for good, ``/dev/zero`` never ends,
  a directory is no file), checked with ``stat`` before anything is opened;
* a file that is not a checkpoint is named for what it is (a spec, zero bytes, a NumPy array, text);
* its size, its count of tensors and, for ``.npz``, each member's *decompressed* size are bounded
  before the data is read, so a deflate bomb or 300,000 empty tensors cost nothing;
* ``.npz`` members are read from their headers: no pickles, numeric dtypes only, the size the
  header declares and not a byte more.
"""

from __future__ import annotations

import os
import stat
import zipfile
from typing import Any

from specdsl.errors import Diagnostic, SpecError

# A weight file may exceed the spec's own tensors (float32) by this factor (optimizer state, float64, EMA).
SIZE_FACTOR = 8
SIZE_SLACK = 64 << 20
# Tensors a checkpoint may hold beyond the spec's own (optimizer state, EMA copies): a factor and a slack.
COUNT_FACTOR = 8
COUNT_SLACK = 1_000
# Bytes of pickle (a PyTorch file's data.pkl) or header JSON (safetensors) per allowed tensor, plus slack.
INDEX_BYTES_PER_TENSOR = 512
INDEX_SLACK = 1 << 20
HINT = "save it with torch.save(model.state_dict(), path), as .safetensors, or as .npz (numpy.savez)"


class WeightsFileError(SpecError, ValueError):
    """A weight file that cannot be read safely (a SpecError; also a ValueError for the library's callers)."""


def refuse(message: str, hint: str | None = HINT, code: str = "E501") -> WeightsFileError:
    return WeightsFileError([Diagnostic("error", code, message, None, hint=hint)], {})


def regular_file(path: str | os.PathLike[str]) -> int:
    """The size of ``path`` if it is a regular file (links followed); else a WeightsFileError saying what it is."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise refuse(f"cannot read checkpoint {os.fspath(path)}: {exc.strerror or exc}", None) from None
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return info.st_size
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise refuse(f"weights {os.fspath(path)} is {kind}, not a file: it was not read",
                 "name a checkpoint file (.safetensors, .pt, .npz)")


def describe(path: str | os.PathLike[str]) -> str | None:
    """What a file that failed to load as a checkpoint is, from its first bytes (None: nothing recognised)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if not head:
        return "an empty file"
    if head.count(0) == len(head):
        return "zero bytes (no checkpoint starts so)"
    if head.startswith(b"\x93NUMPY"):
        return "a single NumPy array (.npy), not a mapping of names to arrays; save with numpy.savez"
    if head.startswith(b"PK\x03\x04"):
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    firsts = {line.split(None, 1)[0].rstrip(":") for line in text.splitlines() if line.strip()}
    if "model" in firsts:
        return "a spec (model text), not weights"
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return "text, not weights"
    return None


def not_a_checkpoint(path: str | os.PathLike[str], reason: str) -> WeightsFileError:
    """The refusal for a file that did not load: what it is when recognised, else the reader's reason."""
    what = describe(path)
    if what is not None:
        return refuse(f"weights {os.fspath(path)} is {what}: it was not read")
    return refuse(f"{os.fspath(path)} is not a weight file that can be read safely: {reason}")


def max_tensors(spec_tensors: int) -> int:
    return COUNT_FACTOR * spec_tensors + COUNT_SLACK


def check_count(path: str | os.PathLike[str], count: int, limit: int, what: str = "tensors") -> None:
    if count > limit:
        raise refuse(f"weights {os.fspath(path)} hold {count:,} {what}, far more than the spec's need "
                     f"(at most {limit:,} read): refused before reading them", "is it the checkpoint of "
                     "another, larger model?")


def zip_entries(path: str | os.PathLike[str]) -> int | None:
    """The entry count a zip file's end record declares (zip64 too), read from its last bytes: what
    zipfile would otherwise learn by building an object per entry (300,000 entries: 177 MiB, 1.9 s)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        tail_size = min(size, 22 + 65_535 + 20)
        fh.seek(size - tail_size)
        tail = fh.read(tail_size)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            return None
        count = int.from_bytes(tail[at + 10:at + 12], "little")
        if count != 0xFFFF or at < 20 or tail[at - 20:at - 16] != b"PK\x06\x07":
            return count
        fh.seek(int.from_bytes(tail[at - 12:at - 4], "little"))  # the zip64 end record
        record = fh.read(56)
        return int.from_bytes(record[32:40], "little") if record[:4] == b"PK\x06\x06" else None


def check_torch_zip(path: str | os.PathLike[str], tensor_limit: int) -> None:
    """Bound a PyTorch zip checkpoint's tensor records and pickle before torch.load reads them."""
    declared = zip_entries(path)
    if declared is not None:
        check_count(path, declared, tensor_limit + 16, "records")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip: the legacy format, or not a checkpoint (torch.load's own message)
    check_count(path, len(infos), tensor_limit + 16, "records")
    pickle_limit = INDEX_BYTES_PER_TENSOR * tensor_limit + INDEX_SLACK
    for info in infos:
        if info.filename.endswith("data.pkl") and info.file_size > pickle_limit:
            raise refuse(f"weights {os.fspath(path)} have a {info.file_size:,}-byte index of tensors, far more "
                         f"than the spec's need (at most {pickle_limit:,} read)",
                         "is it the checkpoint of another, larger model?")


def check_safetensors_header(path: str | os.PathLike[str], size: int, tensor_limit: int) -> None:
    """Bound a safetensors header (its length and entry count) before the library parses it."""
    import json

    with open(path, "rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise not_a_checkpoint(path, "shorter than a safetensors header")
        length = int.from_bytes(prefix, "little")
        limit = INDEX_BYTES_PER_TENSOR * tensor_limit + INDEX_SLACK
        if length > min(limit, size - 8):
            raise not_a_checkpoint(path, f"its header claims {length:,} bytes (the file has {size:,}; "
                                   f"at most {limit:,} read)")
        try:
            header = json.loads(fh.read(length))
        except ValueError:
            raise not_a_checkpoint(path, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise not_a_checkpoint(path, "its header is not a mapping")
    check_count(path, len(header) - ("__metadata__" in header), tensor_limit)


def read_npz(path: str | os.PathLike[str], max_bytes: int | None = None,
             tensor_limit: int | None = None) -> dict[str, Any]:
    """The arrays of an ``.npz`` file, each read from its header within ``max_bytes`` in all (see the module)."""
    import numpy as np

    size = regular_file(path)
    if max_bytes is not None and size > max_bytes:
        raise refuse(f"weights {os.fspath(path)} are {size:,} bytes, far more than this spec's tensors need "
                     f"(at most {max_bytes:,} read)", "is it the checkpoint of another, larger model?")
    declared = zip_entries(path)
    if tensor_limit is not None and declared is not None:
        check_count(path, declared, tensor_limit, "arrays")  # before zipfile builds an object per entry
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise not_a_checkpoint(path, f"not an .npz (zip) archive ({exc})") from None
    out: dict[str, Any] = {}
    total = 0
    with archive:
        infos = archive.infolist()
        if tensor_limit is not None:
            check_count(path, len(infos), tensor_limit, "arrays")
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            try:
                array, nbytes = _member(archive, info, np, None if max_bytes is None else max_bytes - total)
            except (ValueError, EOFError, OSError, zipfile.BadZipFile, NotImplementedError) as exc:
                raise refuse(f"{os.fspath(path)}: array '{_short(key)}' cannot be read safely: {exc}") from None
            total += nbytes
            out[key] = array
    return out


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, np: Any, budget: int | None) -> tuple[Any, int]:
    """One ``.npy`` member: header checked (numeric dtype, size within ``budget``), then exactly its bytes."""
    fmt = np.lib.format
    with archive.open(info) as fh:
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise ValueError(f"unknown .npy version {version}")
        reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0,
                  (3, 0): fmt.read_array_header_2_0}[version]
        shape, fortran, dtype = reader(fh, max_header_size=10_000)
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
            raise ValueError(f"it holds {dtype} values (pickled Python objects are never loaded; numeric "
                             "arrays only)")
        count = 1
        for n in shape:
            count *= int(n)
        nbytes = count * dtype.itemsize
        if budget is not None and nbytes > budget:
            raise ValueError(f"it declares {nbytes:,} bytes, more than the spec's tensors need (at most "
                             f"{max(budget, 0):,} left to read)")
        data = fh.read(nbytes)  # decompresses at most nbytes, whatever the archive claims
        if len(data) != nbytes:
            raise ValueError(f"it holds {len(data):,} of the {nbytes:,} bytes its header declares")
    array = np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")
    return array.copy(), nbytes


def _short(text: str) -> str:
    from specdsl.errors import shorten

    return shorten(text)


__all__ = ["WeightsFileError", "check_count", "check_safetensors_header", "check_torch_zip", "describe",
           "max_tensors", "not_a_checkpoint", "read_npz", "refuse", "regular_file", "zip_entries"]
