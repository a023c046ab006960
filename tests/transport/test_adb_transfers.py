"""adb pulls are bounded by their size and leave nothing behind when they fail: a phone whose
link stalls mid-transfer (the emulated device stops sending) ends in a TransportError within the
bound, with no partial file."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from benchharness.errors import TransportError
from benchharness.transport.adb import AdbTransport
from benchharness.transport.base import Bounds
from tests.support.adbd import DEVICE_TMP, EmulatedDevice
from tests.transport import helpers

if TYPE_CHECKING:
    from tests.support.fixtures import AdbServer

pytest_plugins = ["tests.support.fixtures"]

#: The floor rules (the rate is high): a stall shows after 3 s.
TEST_BOUNDS = Bounds(control_s=10.0, transfer_floor_s=3.0, transfer_min_rate=1e9)


def test_stalled_pull_ends_within_its_bound_and_leaves_no_file(
    adb_device_factory: Callable[..., EmulatedDevice], adb_server: AdbServer, tmp_path: Path
) -> None:
    phone = adb_device_factory(stall_recv_after=256 * 1024)
    (phone.sandbox / "big.bin").write_bytes(os.urandom(2 * 2**20))
    t = AdbTransport(phone.serial, bounds=TEST_BOUNDS, **adb_server.transport_options())  # type: ignore[arg-type]
    dest = tmp_path / "pulled" / "big.bin"
    start = time.monotonic()
    outcome = helpers.finishes_within(60, lambda: t.pull(f"{DEVICE_TMP}/big.bin", dest))
    assert isinstance(outcome, TransportError), outcome
    assert time.monotonic() - start >= TEST_BOUNDS.transfer_floor_s * 0.9
    assert "did not finish within 3 s" in str(outcome) and "big.bin" in str(outcome)
    assert list(dest.parent.iterdir()) == []  # no partial file, under any name
    phone.stall_recv_after = None
    t.pull(f"{DEVICE_TMP}/big.bin", dest)
    assert helpers.sha256(dest) == helpers.sha256(phone.sandbox / "big.bin")
