"""This host's side of a pull: land the bytes beside the target and rename them into place only
when the pull succeeded, and say plainly when it is this host's disk that failed."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from benchharness.errors import TransportError

#: errno of a failed local write -> what it means here.
_HOST_WRITE_ADVICE = {
    errno.ENOSPC: "no space left on this host",
    errno.EDQUOT: "over the disk quota of this host's user",
    errno.EFBIG: "over this host's file size limit (ulimit -f)",
    errno.EROFS: "this host's file system is read-only there",
    errno.EACCES: "permission denied on this host",
}


@contextlib.contextmanager
def landing(local: Path) -> Iterator[Path]:
    """A temporary file beside ``local`` for a pull to write into: renamed to ``local`` when the
    block ends normally, removed otherwise, so a failed pull leaves nothing, partial or not."""
    try:
        local.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise host_write_error(local.parent, exc) from exc
    part = local.with_name(f".{local.name}.{secrets.token_hex(4)}.part")
    try:
        yield part
        os.replace(part, local)
    except OSError as exc:
        raise host_write_error(local, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            part.unlink()


def host_write_error(local: Path, exc: OSError) -> TransportError:
    """A failed write on THIS host while pulling (not the device's disk)."""
    advice = _HOST_WRITE_ADVICE.get(exc.errno or -1, exc.strerror or str(exc))
    fix = (
        f"; free space in {local.parent} or pull somewhere else"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT)
        else ""
    )
    return TransportError(f"cannot write {local}: {advice}{fix}")


class HostWriteError(OSError):
    """A local write failed during a pull (kept apart from the device's errors)."""


class CappedWriter:
    """A file-like sink for a pull: refuses bytes past ``max_bytes`` (the file grew while being
    pulled) and marks local write failures as HostWriteError."""

    def __init__(self, fh: object, max_bytes: int | None) -> None:
        self.fh = fh
        self.max_bytes = max_bytes
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.max_bytes is not None and self.written > self.max_bytes:
            raise SizeCapExceeded(self.written)
        try:
            return int(self.fh.write(data))  # type: ignore[attr-defined]
        except OSError as exc:
            raise HostWriteError(exc.errno, exc.strerror) from exc


class SizeCapExceeded(Exception):
    """A pulled file passed its cap while arriving."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def size_cap_error(remote: str, where: str, size: int, cap: int) -> TransportError:
    return TransportError(
        f"{remote} on {where} is {size} bytes, over the cap of {cap} bytes for a pull "
        "(max_bytes); not pulled. A runner's result file is far smaller: check what wrote it, "
        "or raise max_bytes if it is really that large"
    )


def describe_mode(mode: int) -> str:
    """What kind of file a mode is, for a refusal message."""
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def not_regular_error(remote: str, where: str, kind: str) -> TransportError:
    return TransportError(
        f"refusing to pull {remote} from {where}: not a regular file (a {kind}), whose reading "
        "may never end; pull only files the runner wrote"
    )
