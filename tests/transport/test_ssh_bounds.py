"""Every SSH call has a bound: a stopped SFTP server (SIGSTOP on the real sftp-server process)
and a server that never answers an exec or subsystem request (a wedged sshd, played by paramiko's
server side) end in a TransportError within the bound, and the transport works again after."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchharness.errors import TransportError
from benchharness.transport.base import Bounds
from benchharness.transport.ssh import SSHTransport
from tests.support.sshd import SFTP_SERVER, SilentSSHServer, SSHServer, sshd_missing_reason
from tests.transport import helpers

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(13)

pytest_plugins = ["tests.support.fixtures"]

#: Short bounds so that a stall shows within seconds; the rate is high so the floor rules.
TEST_BOUNDS = Bounds(control_s=3.0, transfer_floor_s=3.0, transfer_min_rate=1e9)
#: How long a bounded call may take in these tests: the bound, one reconnect, slack for a loaded
#: machine. Without bounds these calls never return at all.
LIMIT_S = 30.0


def _stop(pids: list[int]) -> None:
    assert pids, "no sftp-server process to stop"
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)


@pytest.fixture
def sftp_sshd(sshd_factory: Callable[..., SSHServer]) -> SSHServer:
    # sftp-server as its own process (internal-sftp would run inside sshd)
    return sshd_factory(sftp_server=SFTP_SERVER)


def test_push_to_a_stopped_sftp_server_ends_within_its_bound(
    sftp_sshd: SSHServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 * 2**20))  # more than the SSH window: the put must wait
    small = tmp_path / "small.bin"
    small.write_bytes(b"x")
    remote = tmp_path / "remote"
    with SSHTransport(sftp_sshd.profile(), bounds=TEST_BOUNDS) as t:
        t.push(small, str(remote / "warm.bin"))  # the SFTP session is open
        _stop(sftp_sshd.processes("sftp-server"))
        start = time.monotonic()
        outcome = helpers.finishes_within(LIMIT_S, lambda: t.push(big, str(remote / "big.bin")))
        assert isinstance(outcome, TransportError), outcome
        assert time.monotonic() - start >= TEST_BOUNDS.transfer_floor_s * 0.9
        message = str(outcome)
        assert "push" in message and "SFTP server" in message and "did not" in message
        # a fresh SFTP server takes over, and the half-written file is gone
        t.push(big, str(remote / "again.bin"))
        assert helpers.sha256(remote / "again.bin") == helpers.sha256(big)
        assert not (remote / "big.bin").exists()


def test_pull_from_a_stopped_sftp_server_ends_within_its_bound(
    sftp_sshd: SSHServer, tmp_path: Path
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(8 * 2**20))
    dest = tmp_path / "pulled" / "src.bin"
    with SSHTransport(sftp_sshd.profile(), bounds=TEST_BOUNDS) as t:
        t.pull(str(src), tmp_path / "warm.bin")
        _stop(sftp_sshd.processes("sftp-server"))
        outcome = helpers.finishes_within(LIMIT_S, lambda: t.pull(str(src), dest))
        assert isinstance(outcome, TransportError), outcome
        assert "SFTP server" in str(outcome) and "did not" in str(outcome)
        assert not dest.parent.exists() or list(dest.parent.iterdir()) == []  # no partial file
        t.pull(str(src), dest)
        assert helpers.sha256(dest) == helpers.sha256(src)


@pytest.fixture
def silent(tmp_path: Path) -> Iterator[SilentSSHServer]:
    if sshd_missing_reason():  # ssh-keygen is what the silent server needs
        pytest.skip(str(sshd_missing_reason()))
    server = SilentSSHServer(tmp_path / "silent")
    yield server
    server.close()


def test_exec_that_is_never_answered_ends_within_its_bound(silent: SilentSSHServer) -> None:
    with SSHTransport(silent.profile(), bounds=TEST_BOUNDS) as t:
        outcome = helpers.finishes_within(LIMIT_S, lambda: t.run(["true"], timeout=600))
    assert isinstance(outcome, TransportError), outcome
    assert "exec" in silent.requests
    assert f"did not answer within {TEST_BOUNDS.control_s:g} s" in str(outcome)


def test_sftp_that_is_never_answered_ends_within_its_bound(
    silent: SilentSSHServer, tmp_path: Path
) -> None:
    src = tmp_path / "m.bin"
    src.write_bytes(b"x")
    with SSHTransport(silent.profile(), bounds=TEST_BOUNDS) as t:
        outcome = helpers.finishes_within(LIMIT_S, lambda: t.push(src, "/tmp/m.bin"))
    assert isinstance(outcome, TransportError), outcome
    assert "subsystem" in silent.requests
    assert "SFTP" in str(outcome) and "did not answer" in str(outcome)
