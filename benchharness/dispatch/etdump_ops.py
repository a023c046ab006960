"""A pte job's operator rows: its ETDump fetched from the device and read beside the ETRecord.

The runner (python or ``executor_runner``) leaves the ETDump on the device; it is pulled here
(read in place on this host), removed there, and read with the devtools Inspector and the ETRecord
that the host keeps beside the artifact (``parse/etdump.py``).
"""

from __future__ import annotations

import contextlib
import posixpath
import tempfile
from pathlib import Path
from typing import Protocol

from benchharness.device import protocol
from benchharness.device.protocol import Profile, ProfiledOp
from benchharness.errors import HarnessError, ParseError
from benchharness.parse.etdump import read_etdump
from benchharness.transport.base import Transport

#: Most bytes of an ETDump pulled back: 50 profiled runs of a large model are a few MB; more is
#: not a profile (a device pointing ``profile_file`` at /dev/zero must not fill this disk).
MAX_ETDUMP_BYTES = 256 * 1024 * 1024
#: Names of the files the runners write (only those are removed, whatever path a device reports).
ETDUMP_SUFFIX = ".etdp"


class Session(Protocol):
    """What of ``dispatch.session.DeviceSession`` this module uses."""

    transport: Transport
    local: bool


def _is_etdump(name: str) -> bool:
    return name.endswith(ETDUMP_SUFFIX)


def _read(etdump: Path, artifact: Path, warmup_runs: int) -> list[ProfiledOp]:
    if not etdump.is_file():
        raise ParseError(f"the ETDump {etdump} is not a regular file")
    if etdump.stat().st_size > MAX_ETDUMP_BYTES:
        raise ParseError(f"the ETDump {etdump} holds more than {MAX_ETDUMP_BYTES} bytes")
    return read_etdump(etdump, artifact, warmup_runs).ops


def etdump_ops(session: Session, artifact: Path, profile: Profile) -> list[ProfiledOp]:
    """The operators of ``profile``'s ETDump aligned to ``artifact``'s graph (ParseError if the
    file cannot be read)."""
    remote = profile.profile_file
    if not remote:
        raise ParseError("the ETDump profile names no file")
    warmup = profile.warmup_runs or 0
    if session.local:
        path = Path(remote)
        try:
            return _read(path, artifact, warmup)
        finally:
            if _is_etdump(path.name) and path.is_file():
                path.unlink(missing_ok=True)
            # the runner made a private temp directory when the run had no workdir
            if path.parent.name.startswith(protocol.PROFILE_TMP_PREFIX):
                with contextlib.suppress(OSError):
                    path.parent.rmdir()
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "profile.etdp"
        session.transport.pull(remote, local)
        if _is_etdump(posixpath.basename(remote)):
            with contextlib.suppress(HarnessError):
                session.transport.run(["rm", "-f", remote], timeout=60)
        return _read(local, artifact, warmup)
