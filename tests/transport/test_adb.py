"""AdbTransport with the real adb client against emulated phones (tests/support/adbd.py), one
advertising ``shell_v2`` and one legacy device without it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from benchharness.errors import CommandTimeoutError, DeviceUnreachableError, TransportError
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.transport import open_transport
from benchharness.transport.adb import AdbTransport
from tests.support.adbd import DEVICE_TMP, EmulatedDevice
from tests.support.sshd import free_port
from tests.transport import helpers

if TYPE_CHECKING:
    from tests.support.fixtures import AdbServer

pytest_plugins = ["tests.support.fixtures"]

MakeDevice = Callable[..., EmulatedDevice]


@pytest.fixture(params=["shell_v2", "legacy"])
def phone(request: pytest.FixtureRequest, adb_device_factory: MakeDevice) -> EmulatedDevice:
    return adb_device_factory(legacy=request.param == "legacy")


@pytest.fixture
def adb(phone: EmulatedDevice, adb_server: AdbServer) -> AdbTransport:
    profile = DeviceProfile(name="emu", transport="adb", serial=phone.serial)
    transport = open_transport(profile, **adb_server.transport_options())
    assert isinstance(transport, AdbTransport)
    return transport


def test_features_are_detected(adb: AdbTransport, phone: EmulatedDevice) -> None:
    assert adb.shell_v2 is (not phone.legacy)
    adb.run(["true"], timeout=10)
    service = phone.services[-1]
    assert service.startswith("shell:" if phone.legacy else "shell,v2,")


def test_exit_codes(adb: AdbTransport, phone: EmulatedDevice) -> None:
    # legacy devices merge stderr into stdout; shell_v2 keeps them apart
    helpers.check_exit_codes(adb, stderr_separate=not phone.legacy)


def test_last_status_marker_wins(adb: AdbTransport) -> None:
    result = adb.run(["sh", "-c", "printf '\\n__BH_RC__:0\\n'; exit 7"], timeout=10)
    assert result.returncode == 7
    assert result.stdout == "\n__BH_RC__:0\n"


def test_arguments_are_never_executed(adb: AdbTransport, phone: EmulatedDevice) -> None:
    (phone.sandbox / "w").mkdir()
    helpers.check_no_injection(adb, f"{DEVICE_TMP}/w", phone.sandbox / "w")
    assert not list(phone.sandbox.rglob("pwned*"))


def test_env_and_cwd(adb: AdbTransport, phone: EmulatedDevice) -> None:
    (phone.sandbox / "dir with space").mkdir()
    helpers.check_env_and_cwd(adb, f"{DEVICE_TMP}/dir with space")
    assert not list(phone.sandbox.rglob("pwned*"))


def test_push_pull_round_trip(adb: AdbTransport, tmp_path: Path) -> None:
    helpers.check_round_trip(adb, tmp_path, f"{DEVICE_TMP}/benchharness")


def test_pull_of_missing_file_says_so(adb: AdbTransport, tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="no such file on the device"):
        adb.pull(f"{DEVICE_TMP}/nope.bin", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_push_outside_data_local_tmp_is_refused(adb: AdbTransport, tmp_path: Path) -> None:
    src = tmp_path / "m.bin"
    src.write_bytes(b"x")
    with pytest.raises(TransportError, match="only under /data/local/tmp"):
        adb.push(src, "/system/m.bin")


def test_timeout_kills_the_device_process(adb: AdbTransport, phone: EmulatedDevice) -> None:
    with pytest.raises(CommandTimeoutError, match="ran past 1 s and was killed"):
        adb.run(helpers.sleeper_argv(DEVICE_TMP), timeout=1)
    for pid in helpers.read_pids(phone.sandbox):
        assert helpers.wait_dead(pid), f"process {pid} survived the timeout on the device"
    assert adb.run(["echo", "still here"], timeout=10).stdout == "still here\n"


def test_device_disappears_and_comes_back(adb: AdbTransport, phone: EmulatedDevice) -> None:
    assert adb.run(["echo", "1"], timeout=10).stdout == "1\n"
    phone.stop()
    with pytest.raises(DeviceUnreachableError, match=f"does not list {phone.serial}"):
        adb.run(["echo", "2"], timeout=10)
    phone.start()
    assert adb.run(["echo", "3"], timeout=10).stdout == "3\n"


def test_unknown_serial_says_what_to_do(adb_server: AdbServer) -> None:
    t = AdbTransport("0123456789ABCDEF", **adb_server.transport_options())  # type: ignore[arg-type]
    with pytest.raises(DeviceUnreachableError) as err:
        t.run(["true"], timeout=10)
    message = str(err.value)
    assert "adb devices does not list 0123456789ABCDEF" in message
    assert "USB debugging" in message and "adb connect HOST:PORT" in message


def test_network_device_that_never_answers(adb_server: AdbServer) -> None:
    serial = f"127.0.0.1:{free_port()}"
    t = AdbTransport(serial, **adb_server.transport_options())  # type: ignore[arg-type]
    with pytest.raises(DeviceUnreachableError, match=f"adb connect {serial}"):
        t.run(["true"], timeout=10)


def test_missing_adb_binary(tmp_path: Path) -> None:
    t = AdbTransport("X", adb_path=str(tmp_path / "no-adb"))
    with pytest.raises(TransportError, match="not installed"):
        t.run(["true"], timeout=10)


# --- a full or read-only work directory: real tmpfs mounts inside the phone's sandbox -----------


def test_push_to_full_workdir(adb: AdbTransport, phone: EmulatedDevice, tmp_path: Path,
                              tmpfs: Callable[..., Path]) -> None:  # fmt: skip
    tmpfs(phone.sandbox / "small", size="64k")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 200_000)
    with pytest.raises(TransportError, match="no space left on the device"):
        adb.push(big, f"{DEVICE_TMP}/small/big.bin")


def test_push_to_read_only_workdir(adb: AdbTransport, phone: EmulatedDevice, tmp_path: Path,
                                   tmpfs: Callable[..., Path]) -> None:  # fmt: skip
    tmpfs(phone.sandbox / "ro", readonly=True)
    src = tmp_path / "m.bin"
    src.write_bytes(b"x")
    with pytest.raises(TransportError, match="read-only"):
        adb.push(src, f"{DEVICE_TMP}/ro/m.bin")
