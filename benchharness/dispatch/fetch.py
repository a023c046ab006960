"""A profile file a runner left on the device: read where it lies, or pulled back; then removed.

Both per-operator paths use it: the ORT trace (``dispatch/op_profile``) and the ETDump
(``dispatch/etdump_ops``). On this host the file is read in place; from a device it is pulled into
a temporary folder. Either way it is removed from the device afterwards, but only when its name
is one our runners write, whatever path a device reports.
"""

from __future__ import annotations

import contextlib
import posixpath
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from benchharness.errors import HarnessError, ParseError
from benchharness.ondevice import protocol
from benchharness.transport.base import Transport

#: Most bytes of a profile read back: 50 profiled runs of a large model are a few MB; more is
#: not a profile (a device pointing ``profile_file`` at /dev/zero must not fill this disk).
MAX_PROFILE_BYTES = 256 * 1024 * 1024

T = TypeVar("T")


class Session(Protocol):
    """What of ``dispatch.session.DeviceSession`` this module uses."""

    transport: Transport
    local: bool


def checked(path: Path, what: str) -> Path:
    """``path`` when it is a regular file of at most MAX_PROFILE_BYTES, else ParseError."""
    if not path.is_file():
        raise ParseError(f"the {what} {path} is not a regular file")
    if path.stat().st_size > MAX_PROFILE_BYTES:
        raise ParseError(f"the {what} {path} holds more than {MAX_PROFILE_BYTES} bytes")
    return path


@dataclass(frozen=True)
class ProfileKind:
    """The files of one kind of profile our runners write: the names that start with ``prefix``
    and end with ``suffix`` (only those are removed, whatever path a device reports)."""

    suffix: str
    prefix: str = ""

    def ours(self, name: str) -> bool:
        return name.startswith(self.prefix) and name.endswith(self.suffix)


def fetch_profile(session: Session, remote: str, kind: ProfileKind, read: Callable[[Path], T]) -> T:
    """``read`` of the file ``remote`` on the session's device (a local copy when the device is
    remote); the file is removed there afterwards when it is of our ``kind``."""
    if session.local:
        path = Path(remote)
        try:
            return read(path)
        finally:
            if kind.ours(path.name) and path.is_file():
                path.unlink(missing_ok=True)
            # the runner made a private temp directory when the run had no workdir
            if path.parent.name.startswith(protocol.PROFILE_TMP_PREFIX):
                with contextlib.suppress(OSError):
                    path.parent.rmdir()
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / f"profile{kind.suffix}"
        session.transport.pull(remote, local)
        if kind.ours(posixpath.basename(remote)):
            with contextlib.suppress(HarnessError):
                session.transport.run(["rm", "-f", remote], timeout=60)
        return read(local)
