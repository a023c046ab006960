"""Limits every transport keeps, checked on all of them with real parts: this host, a real sshd,
and the real adb client against emulated phones. A command that prints without end is cut at the
output cap and killed; a pull over its size cap, or of something that is not a regular file, is
refused and leaves no file; a full disk on this host while pulling is blamed on this host."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from benchharness.errors import RunnerError, TransportError
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.transport import open_transport
from benchharness.transport.base import Transport
from tests.support.adbd import DEVICE_TMP, EmulatedDevice
from tests.support.sshd import SSHServer
from tests.transport import helpers

if TYPE_CHECKING:
    from tests.support.fixtures import AdbServer

pytest_plugins = ["tests.support.fixtures"]

#: Small enough that the flood is cut in well under a second on any transport.
TEST_OUTPUT_CAP = 4 * 2**20


@dataclass
class Device:
    transport: Transport
    #: a directory on the device, and the same directory as seen from this host
    remote_dir: str
    local_dir: Path


def _device(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    if kind == "local":
        with open_transport(DeviceProfile(name="here", transport="local")) as t:
            yield Device(t, str(tmp_path), tmp_path)
    elif kind == "ssh":
        server: SSHServer = request.getfixturevalue("sshd_server")
        with open_transport(server.profile()) as t:
            yield Device(t, str(tmp_path), tmp_path)
    else:
        make: Callable[..., EmulatedDevice] = request.getfixturevalue("adb_device_factory")
        adb_server: AdbServer = request.getfixturevalue("adb_server")
        phone = make(legacy=kind == "adb-legacy")
        profile = DeviceProfile(name="emu", transport="adb", serial=phone.serial)
        with open_transport(profile, **adb_server.transport_options()) as t:
            yield Device(t, DEVICE_TMP, phone.sandbox)


@pytest.fixture(params=["local", "ssh", "adb", "adb-legacy"])
def device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    yield from _device(request.param, request, tmp_path)


@pytest.fixture(params=["ssh", "adb"])
def remote_device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    yield from _device(request.param, request, tmp_path)


def test_output_flood_is_cut_at_the_cap_and_killed(device: Device) -> None:
    t = device.transport
    with pytest.raises(RunnerError, match=r"exceeded the 4 MiB output cap") as err:
        t.run(helpers.flood_argv(device.remote_dir), timeout=120, max_output_bytes=TEST_OUTPUT_CAP)
    assert "killed" in str(err.value) and "yes" in str(err.value)
    pid = int((device.local_dir / "flood.pid").read_text())
    assert helpers.wait_dead(pid), "the flooding command survived"
    assert t.run(["echo", "still here"], timeout=20).stdout == "still here\n"


def test_output_under_the_cap_is_whole(device: Device) -> None:
    result = device.transport.run(
        ["head", "-c", "300000", "/dev/zero"], timeout=60, max_output_bytes=TEST_OUTPUT_CAP
    )
    assert result.returncode == 0 and len(result.stdout) == 300_000


def test_pull_over_the_size_cap_is_refused(device: Device, tmp_path: Path) -> None:
    (device.local_dir / "big.bin").write_bytes(os.urandom(300_000))
    dest = tmp_path / "pulled" / "big.bin"
    with pytest.raises(TransportError, match=r"big\.bin.* 300000 bytes.*cap of 100000") as err:
        device.transport.pull(f"{device.remote_dir}/big.bin", dest, max_bytes=100_000)
    assert "max_bytes" in str(err.value)
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
    # under the cap it arrives whole
    device.transport.pull(f"{device.remote_dir}/big.bin", dest, max_bytes=300_000)
    assert helpers.sha256(dest) == helpers.sha256(device.local_dir / "big.bin")


def test_pull_of_a_device_file_is_refused(device: Device, tmp_path: Path) -> None:
    dest = tmp_path / "zero.bin"
    outcome = helpers.finishes_within(60, lambda: device.transport.pull("/dev/zero", dest))
    assert isinstance(outcome, TransportError), outcome
    assert "/dev/zero" in str(outcome) and "not a regular file" in str(outcome)
    assert not dest.exists()


def test_full_disk_here_while_pulling_is_blamed_on_this_host(
    remote_device: Device, tmp_path: Path, tmpfs: Callable[..., Path]
) -> None:
    small = tmpfs(tmp_path / "small", size="64k")
    (remote_device.local_dir / "big.bin").write_bytes(os.urandom(200_000))
    with pytest.raises(TransportError, match="no space left on this host") as err:
        remote_device.transport.pull(f"{remote_device.remote_dir}/big.bin", small / "big.bin")
    assert "on the device" not in str(err.value)
    assert str(small) in str(err.value)
    assert list(small.iterdir()) == []  # no partial file
