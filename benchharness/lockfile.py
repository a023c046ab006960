"""An exclusive lock on a file that names its holder (device locks, a run being written).

``flock`` is released by the kernel when the holder dies, so a crash leaves no stale lock; the
holder writes who it is into the file, so a process that is refused can say who has it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

#: Bytes of a holder's description read back: a pid, a host and a profile name fit in far less.
HOLDER_BYTES = 512


def claim(fd: int, holder: str) -> str | None:
    """Lock the open file ``fd`` for this process, without waiting, and write ``holder`` into it.

    Returns None once held (closing ``fd`` releases it), or what the file says of the process
    that holds it instead."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, HOLDER_BYTES, 0).decode(errors="replace").strip() or "another process"
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode(), 0)
    return None


@contextlib.contextmanager
def held(
    path: Path,
    holder: str,
    *,
    mode: int,
    busy: Callable[[str], Exception],
    unopened: Callable[[OSError], Exception],
    ignore_umask: bool = False,
) -> Iterator[None]:
    """Hold the lock file ``path`` (created with ``mode``, exactly so with ``ignore_umask``) for
    the ``with`` block; raise ``busy(what the holder wrote)`` when another process holds it and
    ``unopened(error)`` when it cannot be opened."""
    try:
        old = os.umask(0) if ignore_umask else None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
        finally:
            if old is not None:
                os.umask(old)
    except OSError as exc:
        raise unopened(exc) from exc
    try:
        other = claim(fd, holder)
        if other is not None:
            raise busy(other)
        yield
    finally:
        os.close(fd)  # closing releases the lock
