"""A pte job's operator rows: its ETDump fetched from the device and read beside the ETRecord.

The runner (python or ``executor_runner``) leaves the ETDump on the device; it is pulled here
(read in place on this host), removed there (``dispatch/fetch``), and read with the devtools
Inspector and the ETRecord that the host keeps beside the artifact (``parse/etdump.py``).
"""

from __future__ import annotations

from pathlib import Path

from benchharness.dispatch.fetch import ProfileKind, Session, checked, fetch_profile
from benchharness.errors import ParseError
from benchharness.ondevice.protocol import Profile, ProfiledOp
from benchharness.parse.etdump import read_etdump

#: The ETDumps the runners write.
ETDUMP = ProfileKind(".etdp")


def etdump_ops(session: Session, artifact: Path, profile: Profile) -> list[ProfiledOp]:
    """The operators of ``profile``'s ETDump aligned to ``artifact``'s graph (ParseError if the
    file cannot be read)."""
    remote = profile.profile_file
    if not remote:
        raise ParseError("the ETDump profile names no file")
    warmup = profile.warmup_runs or 0

    def read(path: Path) -> list[ProfiledOp]:
        return read_etdump(checked(path, "ETDump"), artifact, warmup).ops

    return fetch_profile(session, remote, ETDUMP, read)
