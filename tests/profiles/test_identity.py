"""Profile names are safe to use as file names, and the device lock is keyed on the physical
device (machine-wide), not on the profile's name: two profiles for one board share one key."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from benchharness.errors import DeviceProfileError
from benchharness.profiles.device_profile import (
    DEFAULT_SSH_WORKDIR,
    DeviceProfile,
    load_profile,
    lock_key,
    physical_identity,
)

#: What a lock key may contain: one path component, no dot files, no separators.
SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", "x y", "", "é" * 3, "a" * 65])
def test_unsafe_profile_names_are_refused(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "board", f'name = "{name}"\ntransport = "local"\n')
    with pytest.raises(DeviceProfileError) as err:
        load_profile(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: field 'name'"), message
    assert "letters, digits" in message or "missing" in message


def test_unsafe_names_are_refused_when_built_in_code_too() -> None:
    with pytest.raises(DeviceProfileError, match="field 'name'"):
        DeviceProfile(name="../../x", transport="local")


def test_ordinary_names_load(tmp_path: Path) -> None:
    for name in ("pixel4", "rpi4-lab_2", "gpu.host"):
        path = write(tmp_path, name, 'transport = "local"\n')
        assert load_profile(str(path)).name == name


def ssh(
    name: str, host: str = "10.0.0.7", port: int = 22, user: str | None = "pi"
) -> DeviceProfile:
    return DeviceProfile(name=name, transport="ssh", host=host, port=port, user=user)


def test_physical_identity_names_the_device() -> None:
    assert physical_identity(ssh("a", port=2222)) == "ssh:10.0.0.7:2222"
    assert physical_identity(ssh("a", host="Board.LAN.")) == "ssh:board.lan:22"
    adb = DeviceProfile(name="p", transport="adb", serial="9A1B2C")
    assert physical_identity(adb) == "adb:9A1B2C"
    wifi = DeviceProfile(name="p", transport="adb", serial="192.168.1.9:5555")
    assert physical_identity(wifi) == "adb:192.168.1.9:5555"
    local = DeviceProfile(name="here", transport="local")
    assert physical_identity(local) == f"local:{socket.gethostname().lower()}"
    assert ssh("a").physical_id == physical_identity(ssh("a"))


def test_two_profiles_for_one_board_share_a_lock_key() -> None:
    assert lock_key(ssh("rpi4")) == lock_key(ssh("rpi4-quiet", user="bench"))
    assert lock_key(ssh("rpi4")) != lock_key(ssh("rpi4", port=2222))
    assert lock_key(ssh("rpi4")) != lock_key(ssh("rpi4", host="10.0.0.8"))
    here = [DeviceProfile(name=n, transport="local") for n in ("local", "cpu-only")]
    assert lock_key(here[0]) == lock_key(here[1])
    phone = DeviceProfile(name="p", transport="adb", serial="9A1B2C")
    assert lock_key(phone) != lock_key(DeviceProfile(name="p", transport="adb", serial="9A1B2D"))
    assert ssh("a").lock_key == lock_key(ssh("a"))


@pytest.mark.parametrize(
    "profile",
    [
        ssh("a", host="../../etc/passwd"),
        ssh("a", host="host;rm -rf /"),
        ssh("a", host="[fe80::1%eth0]"),
        DeviceProfile(name="p", transport="adb", serial="../../../x"),
        DeviceProfile(name="p", transport="adb", serial="." * 300),
    ],
)
def test_lock_keys_are_safe_file_names(profile: DeviceProfile) -> None:
    key = lock_key(profile)
    assert SAFE_KEY.match(key), key
    assert len(key) <= 80 and ".." not in key


def test_default_ssh_workdir_is_private_to_the_user(tmp_path: Path) -> None:
    # a fixed /tmp path can be pre-created by anyone; the user's home cannot
    assert DEFAULT_SSH_WORKDIR.startswith("~/")
    profile = load_profile(str(write(tmp_path, "b", 'transport = "ssh"\nhost = "h"\n')))
    assert profile.workdir == DEFAULT_SSH_WORKDIR
    home = load_profile(str(write(tmp_path, "c", 'transport = "ssh"\nhost = "h"\n'
                                  'workdir = "~/bench"\n')))  # fmt: skip
    assert home.workdir == "~/bench"
    with pytest.raises(DeviceProfileError, match="an absolute path"):
        load_profile(str(write(tmp_path, "d", 'transport = "adb"\nserial = "x"\n'
                               'workdir = "~/bench"\n')))  # fmt: skip
