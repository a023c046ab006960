"""Atomic file writes: readers see the old file or the new one, never half of either.

Low level on purpose (standard library only, nothing from the rest of the harness), so every stage
can write through it: the results folder (``results/store.py``) and the export cache
(``export/cache.py``) each turn its OSError into their own error, with their own advice.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


#: What ``open(..., "w")`` would give a new file under this process's umask.
_CREATE_MODE = _umask_mode()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` as ``write_bytes_atomic`` does."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a uniquely named temporary file renamed over it.

    The folder is synced after the rename, so the new name survives a power cut too. Raises the
    OSError of a failed write (a full disk, a read-only or foreign folder); the old file then
    stays as it was and no temporary file is left behind.
    """
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, _CREATE_MODE)  # mkstemp makes 0600; results and reports are for sharing
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _sync_dir(path.parent)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
