"""Nothing keeps running on a device after we gave up on it: Ctrl-C during a command, and a
connection dropped in the middle of one, leave no process behind on the device, at once when the
device can be reached, else before anything else runs there. Real parts throughout: a real sshd on
loopback and the real adb client against emulated phones (whose commands are processes here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from benchharness.errors import TransportError
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.transport import open_transport
from benchharness.transport.adb import AdbTransport
from benchharness.transport.ssh import SSHTransport
from tests.support.adbd import DEVICE_TMP, EmulatedDevice
from tests.support.sshd import SSHServer, pid_alive
from tests.transport import helpers

if TYPE_CHECKING:
    from tests.support.fixtures import AdbServer

pytest_plugins = ["tests.support.fixtures"]

ROOT = Path(__file__).resolve().parents[2]

#: The child that runs one long command through a transport until it is interrupted.
CHILD = """
import json, sys
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.transport import open_transport
spec = json.loads(sys.argv[1])
with open_transport(DeviceProfile(**spec["profile"]), **spec["options"]) as t:
    t.run(spec["argv"], timeout=600)
"""


def _default_sigint() -> None:
    # a shell without job control starts background commands with SIGINT ignored; a terminal's
    # Ctrl-C reaches a foreground program with the default action, so give the child that
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ctrl_c_during(profile: dict[str, Any], options: dict[str, Any], argv: list[str],
                   pid_dir: Path) -> list[int]:  # fmt: skip
    """Run ``argv`` in a child process, press Ctrl-C once it runs; the command's PIDs."""
    spec = json.dumps({"profile": profile, "options": options, "argv": argv})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, spec], cwd=ROOT, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint,
                             start_new_session=True)  # fmt: skip
    try:
        pids = helpers.wait_for_pids(pid_dir)
        # as a terminal does: SIGINT to the whole foreground group (an adb client included)
        os.killpg(child.pid, signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode != 0 and "KeyboardInterrupt" in err, err[-2000:]
    return pids


def test_ctrl_c_during_an_ssh_command_kills_it_on_the_device(
    sshd_server: SSHServer, tmp_path: Path
) -> None:
    profile = {"name": "sshd", "transport": "ssh", "host": sshd_server.host,
               "port": sshd_server.port, "user": sshd_server.user,
               "key_file": str(sshd_server.client_key),
               "known_hosts": str(sshd_server.known_hosts)}  # fmt: skip
    pids = _ctrl_c_during(profile, {}, helpers.sleeper_argv(str(tmp_path)), tmp_path)
    assert helpers.all_dead(pids), "the command outlived the Ctrl-C"


MakeDevice = Callable[..., EmulatedDevice]


@pytest.fixture(params=["shell_v2", "legacy"])
def phone(request: pytest.FixtureRequest, adb_device_factory: MakeDevice) -> EmulatedDevice:
    return adb_device_factory(legacy=request.param == "legacy")


def test_ctrl_c_during_an_adb_command_kills_it_on_the_device(
    phone: EmulatedDevice, adb_server: AdbServer
) -> None:
    profile = {"name": "emu", "transport": "adb", "serial": phone.serial}
    pids = _ctrl_c_during(profile, adb_server.transport_options(),
                          helpers.sleeper_argv(DEVICE_TMP), phone.sandbox)  # fmt: skip
    assert helpers.all_dead(pids), "the command outlived the Ctrl-C"


def _drop_when_running(pid_dir: Path, drop: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        helpers.wait_for_pids(pid_dir)
        drop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_dropped_ssh_connection_kills_the_command_at_once(
    sshd_factory: Callable[..., SSHServer], tmp_path: Path
) -> None:
    server = sshd_factory()
    with SSHTransport(server.profile(), connect_timeout=3) as t:
        t.run(["true"], timeout=10)
        dropper = _drop_when_running(tmp_path, server.drop_connections)
        with pytest.raises(TransportError, match="SSH connection"):
            t.run(helpers.sleeper_argv(str(tmp_path)), timeout=120)
        dropper.join()
        # sshd still listens, so the transport reconnected and killed the command right away
        assert helpers.all_dead(helpers.read_pids(tmp_path)), "the orphan is still running"
        assert t.leftovers == ()
        assert t.run(["echo", "after"], timeout=10).stdout == "after\n"


@pytest.mark.parametrize("then", ["run", "reap"])
def test_orphan_of_an_unreachable_board_is_killed_before_the_next_command(
    sshd_factory: Callable[..., SSHServer], tmp_path: Path, then: str
) -> None:
    server = sshd_factory()
    with SSHTransport(server.profile(), connect_timeout=3) as t:
        t.run(["true"], timeout=10)
        dropper = _drop_when_running(tmp_path, lambda: server.drop_connections(listener_too=True))
        with pytest.raises(TransportError):
            t.run(helpers.sleeper_argv(str(tmp_path)), timeout=120)
        dropper.join()
        pids = helpers.read_pids(tmp_path)
        assert all(pid_alive(p) for p in pids)  # nobody could reach the board to kill it
        assert len(t.leftovers) == 1
        server.start()
        if then == "run":
            assert t.run(["echo", "after"], timeout=20).stdout == "after\n"
        else:
            t.reap()  # what the dispatcher calls after a retryable failure
        assert helpers.all_dead(pids), "the orphan survived the reconnect"
        assert t.leftovers == ()


def test_phone_dropped_mid_command_is_cleaned_up_on_reconnect(
    phone: EmulatedDevice, adb_server: AdbServer
) -> None:
    profile = DeviceProfile(name="emu", transport="adb", serial=phone.serial)
    t = open_transport(profile, **adb_server.transport_options())
    assert isinstance(t, AdbTransport)
    t.run(["true"], timeout=10)
    dropper = _drop_when_running(phone.sandbox, phone.stop)
    with pytest.raises(TransportError):
        t.run(helpers.sleeper_argv(DEVICE_TMP), timeout=120)
    dropper.join()
    pids = helpers.read_pids(phone.sandbox)
    assert all(pid_alive(p) for p in pids)  # the phone is away: its command runs on
    assert len(t.leftovers) == 1
    phone.start()
    assert t.run(["echo", "after"], timeout=20).stdout == "after\n"
    assert helpers.all_dead(pids), "the orphan survived the reconnect"
    assert t.leftovers == ()
