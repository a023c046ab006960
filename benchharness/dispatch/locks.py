"""Device locks: one ``bench`` process at a time on a physical device, machine-wide.

The lock is keyed on the device itself (``DeviceProfile.lock_key``: ssh host and port, adb
serial, or this host), not on the profile's name, so two profiles for one board, or two users
of this machine, never run on it at once. The folder is shared by every user (sticky and
world-writable, like /tmp) unless BENCH_LOCK_DIR names another.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from benchharness.errors import DeviceLockError
from benchharness.lockfile import held
from benchharness.profiles.device_profile import DeviceProfile

#: One folder for the whole machine, so every user's bench sees every lock.
DEFAULT_LOCK_DIR = Path("/tmp/benchharness-locks")
#: Sticky and world-writable: anyone may add a lock, only its owner may remove it.
SHARED_DIR_MODE = 0o1777
#: Lock files are readable and writable by all, so another user's process can take a free lock.
LOCK_FILE_MODE = 0o666


def lock_dir() -> Path:
    return Path(os.environ.get("BENCH_LOCK_DIR", DEFAULT_LOCK_DIR))


def _shared_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        info = directory.stat()
        ours = info.st_uid == os.getuid()
        if directory == DEFAULT_LOCK_DIR and ours and stat.S_IMODE(info.st_mode) != SHARED_DIR_MODE:
            directory.chmod(SHARED_DIR_MODE)
    except OSError as exc:
        raise DeviceLockError(
            f"cannot use the lock folder {directory}: {exc.strerror or exc}; set BENCH_LOCK_DIR "
            "to a folder every bench user can write"
        ) from exc


@contextlib.contextmanager
def device_lock(profile: DeviceProfile) -> Iterator[None]:
    """Hold the physical device for this process; another process gets a clear DeviceLockError."""
    directory = lock_dir()
    _shared_dir(directory)
    path = directory / f"{profile.lock_key}.lock"
    with held(
        path,
        f"bench pid {os.getpid()} as {profile.name}",
        mode=LOCK_FILE_MODE,
        ignore_umask=True,
        busy=lambda holder: DeviceLockError(
            f"device {profile.name} ({profile.physical_id}) is busy: {holder} is running on "
            f"it; wait for it to finish (or remove {path} if that process is gone)"
        ),
        unopened=lambda exc: DeviceLockError(
            f"cannot open the device lock {path}: {exc.strerror or exc}"
        ),
    ):
        yield
