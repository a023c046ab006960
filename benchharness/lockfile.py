"""An exclusive lock on a file that names its holder (device locks, a run being written).

``flock`` is released by the kernel when the holder dies, so a crash leaves no stale lock; the
holder writes who it is into the file, so a process that is refused can say who has it.
"""

from __future__ import annotations

import fcntl
import os

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
