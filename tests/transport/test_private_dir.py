"""The work directory is private: created 0700, and refused (with the fix in the message) when
someone else owns it or group/others may write to it, or, over SSH, when a parent lets others
swap it. Real sshd, real adb client against an emulated phone, and this host. Tests run as root,
so "someone else" is made with chown."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from benchharness.errors import TransportError
from benchharness.profiles.device_profile import DEFAULT_SSH_WORKDIR, DeviceProfile
from benchharness.transport import open_transport
from benchharness.transport.base import Transport
from tests.support.adbd import DEVICE_TMP, EmulatedDevice
from tests.support.sshd import SSHServer

if TYPE_CHECKING:
    from tests.support.fixtures import AdbServer

pytest_plugins = ["tests.support.fixtures"]

#: uid of "nobody" on Debian; any uid other than ours would do.
OTHER_UID = 65534


@dataclass
class Device:
    transport: Transport
    remote_dir: str
    local_dir: Path


@pytest.fixture(params=["ssh", "adb", "local"])
def device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    if request.param == "ssh":
        server: SSHServer = request.getfixturevalue("sshd_server")
        with open_transport(server.profile()) as t:
            yield Device(t, str(tmp_path), tmp_path)
    elif request.param == "adb":
        make: Callable[..., EmulatedDevice] = request.getfixturevalue("adb_device_factory")
        adb_server: AdbServer = request.getfixturevalue("adb_server")
        phone = make()
        profile = DeviceProfile(name="emu", transport="adb", serial=phone.serial)
        with open_transport(profile, **adb_server.transport_options()) as t:
            yield Device(t, DEVICE_TMP, phone.sandbox)
    else:
        with open_transport(DeviceProfile(name="here", transport="local")) as t:
            yield Device(t, str(tmp_path), tmp_path)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_missing_workdir_is_created_private(device: Device) -> None:
    got = device.transport.ensure_private_dir(f"{device.remote_dir}/a/bench")
    assert got == f"{device.remote_dir}/a/bench"
    assert _mode(device.local_dir / "a" / "bench") == 0o700
    # and a second call accepts what the first made
    assert device.transport.ensure_private_dir(got) == got


def test_world_writable_workdir_is_refused(device: Device) -> None:
    shared = device.local_dir / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(TransportError, match=r"writable by group or others \(mode 0777\)") as err:
        device.transport.ensure_private_dir(f"{device.remote_dir}/shared")
    assert "chmod 700" in str(err.value) and "workdir" in str(err.value)
    shared.chmod(0o700)
    assert device.transport.ensure_private_dir(f"{device.remote_dir}/shared")


def test_workdir_of_another_user_is_refused(device: Device) -> None:
    theirs = device.local_dir / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    with pytest.raises(TransportError, match=rf"owned by uid {OTHER_UID}"):
        device.transport.ensure_private_dir(f"{device.remote_dir}/theirs")


def test_symlink_to_a_shared_directory_is_refused(device: Device) -> None:
    target = device.local_dir / "target"
    target.mkdir()
    target.chmod(0o777)
    (device.local_dir / "link").symlink_to(target)
    with pytest.raises(TransportError, match="writable by group or others"):
        device.transport.ensure_private_dir(f"{device.remote_dir}/link")


@pytest.fixture
def ssh(sshd_server: SSHServer) -> Iterator[Transport]:
    with open_transport(sshd_server.profile()) as t:
        yield t


def test_parent_that_lets_others_swap_the_workdir_is_refused(
    ssh: Transport, tmp_path: Path
) -> None:
    parent = tmp_path / "open"
    parent.mkdir()
    parent.chmod(0o777)  # anyone may rename our directory away and put theirs in its place
    with pytest.raises(TransportError, match=rf"{parent}.* a parent of the work directory"):
        ssh.ensure_private_dir(str(parent / "bench"))
    parent.chmod(0o1777)  # sticky, like /tmp: others cannot rename what is ours
    assert ssh.ensure_private_dir(str(parent / "bench")) == str(parent / "bench")


def test_home_relative_workdir_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    with open_transport(DeviceProfile(name="here", transport="local")) as t:
        got = t.ensure_private_dir("~/.cache/benchharness")
    assert got == str(home / ".cache" / "benchharness")
    assert _mode(home / ".cache" / "benchharness") == 0o700


def test_default_workdir_lands_in_the_ssh_users_home(sshd_server: SSHServer) -> None:
    with open_transport(sshd_server.profile()) as t:
        got = t.ensure_private_dir(DEFAULT_SSH_WORKDIR)
    assert got == str(sshd_server.home / ".cache" / "benchharness")
    assert _mode(Path(got)) == 0o700
