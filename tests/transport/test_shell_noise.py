"""A login shell that prints text before every command (an rc file that echoes, a banner) does
not hide the PID line, so output stays clean and timed-out commands are still killed. Real sshd
with a ``~/.bashrc`` that prints (Debian's bash reads it for commands sshd runs) and the real adb
client against phones whose shell prints first."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from benchharness.errors import CommandTimeoutError, TransportError
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.transport import open_transport
from benchharness.transport.ssh import SSHTransport
from tests.support.adbd import DEVICE_TMP, EmulatedDevice
from tests.support.sshd import SFTP_SERVER, SSHServer
from tests.transport import helpers

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(12)

if TYPE_CHECKING:
    from tests.support.fixtures import AdbServer

pytest_plugins = ["tests.support.fixtures"]

WELCOME = "Welcome to the board"
#: The last line has no newline and looks like the start of a PID line.
RC_TEXT = f'echo "{WELCOME}"\nprintf "motd, no newline __BH_PID__:"\n'


def _chatty_sshd(make: Callable[..., SSHServer], tmp_path: Path, **options: object) -> SSHServer:
    server = make(bashrc=RC_TEXT, **options)
    # the real OpenSSH client shows what any client gets: the noise comes before the output
    seen = subprocess.run(
        ["ssh", "-p", str(server.port), "-i", str(server.client_key), "-o", "BatchMode=yes",
         "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={server.known_hosts}",
         f"{server.user}@{server.host}", "echo hi"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if WELCOME not in seen.stdout:
        pytest.skip(f"the login shell of {server.user} does not read ~/.bashrc under sshd")
    assert seen.stdout.rstrip().endswith("hi")
    return server


def test_chatty_ssh_login_shell(sshd_factory: Callable[..., SSHServer], tmp_path: Path) -> None:
    server = _chatty_sshd(sshd_factory, tmp_path)
    with SSHTransport(server.profile()) as t:
        assert t.run(["echo", "x"], timeout=30).stdout == "x\n"
        with pytest.raises(CommandTimeoutError):
            t.run(helpers.sleeper_argv(str(tmp_path)), timeout=5)
        assert helpers.all_dead(helpers.read_pids(tmp_path)), "the timed-out command survived"


def test_chatty_shell_that_breaks_sftp_is_explained(
    sshd_factory: Callable[..., SSHServer], tmp_path: Path
) -> None:
    # sshd starts an external sftp-server through the login shell, whose text then corrupts
    # the SFTP stream (paramiko: "Garbage packet received")
    server = _chatty_sshd(sshd_factory, tmp_path, sftp_server=SFTP_SERVER)
    src = tmp_path / "m.bin"
    src.write_bytes(b"x")
    with (
        pytest.raises(TransportError, match=r"prints text.*non-interactive") as err,
        SSHTransport(server.profile()) as t,
    ):
        t.push(src, str(tmp_path / "copy.bin"))
    assert "SFTP" in str(err.value)


@pytest.fixture(params=["shell_v2", "legacy"])
def chatty_phone(
    request: pytest.FixtureRequest, adb_device_factory: Callable[..., EmulatedDevice]
) -> EmulatedDevice:
    text = f"{WELCOME}\nmotd, no newline __BH_PID__:".encode()
    return adb_device_factory(legacy=request.param == "legacy", rc_text=text)


def test_chatty_adb_shell(chatty_phone: EmulatedDevice, adb_server: AdbServer) -> None:
    profile = DeviceProfile(name="emu", transport="adb", serial=chatty_phone.serial)
    with open_transport(profile, **adb_server.transport_options()) as t:
        assert t.run(["echo", "x"], timeout=30).stdout == "x\n"
        assert t.run(["sh", "-c", "exit 3"], timeout=30).returncode == 3
        with pytest.raises(CommandTimeoutError):
            t.run(helpers.sleeper_argv(DEVICE_TMP), timeout=3)
    assert helpers.all_dead(helpers.read_pids(chatty_phone.sandbox))
