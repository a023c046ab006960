"""Device locks: one ``bench`` process at a time on a device, across this host."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from benchharness.errors import DeviceLockError

#: Where device locks live unless BENCH_LOCK_DIR says otherwise.
DEFAULT_LOCK_DIR = Path.home() / ".cache" / "benchharness" / "locks"


def lock_dir() -> Path:
    return Path(os.environ.get("BENCH_LOCK_DIR", DEFAULT_LOCK_DIR))


@contextlib.contextmanager
def device_lock(name: str) -> Iterator[None]:
    """Hold the device for this process; another process gets a clear DeviceLockError."""
    directory = lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.lock"
    fh = path.open("a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise DeviceLockError(
                f"device {name} is busy: {holder} is running on it; wait for it to finish "
                f"(or remove {path} if that process is gone)"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"bench pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
