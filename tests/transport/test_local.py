"""LocalTransport: the same checks as the remote transports, on this host."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from benchharness.errors import CommandTimeoutError, TransportError
from benchharness.profiles.device_profile import load_profile
from benchharness.transport import open_transport
from benchharness.transport.local import LocalTransport
from tests.transport import helpers

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture
def local() -> LocalTransport:
    transport = open_transport(load_profile("local"))
    assert isinstance(transport, LocalTransport)
    return transport


def test_exit_codes_and_separate_stderr(local: LocalTransport) -> None:
    helpers.check_exit_codes(local, missing_raises=True)


def test_arguments_are_never_executed(local: LocalTransport, tmp_path: Path) -> None:
    helpers.check_no_injection(local, str(tmp_path), tmp_path)


def test_env_and_cwd(local: LocalTransport, tmp_path: Path) -> None:
    work = tmp_path / "dir with space"
    work.mkdir()
    helpers.check_env_and_cwd(local, str(work))


def test_push_pull_round_trip(local: LocalTransport, tmp_path: Path) -> None:
    helpers.check_round_trip(local, tmp_path, str(tmp_path / "remote"))


def test_timeout_kills_the_process_group(local: LocalTransport, tmp_path: Path) -> None:
    with pytest.raises(CommandTimeoutError, match="was killed"):
        local.run(helpers.sleeper_argv(str(tmp_path)), timeout=1)
    for pid in helpers.read_pids(tmp_path):
        assert helpers.wait_dead(pid), f"process {pid} survived the timeout"


def test_pull_of_missing_file(local: LocalTransport, tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="No such file"):
        local.pull(str(tmp_path / "nope"), tmp_path / "out")


def test_push_to_full_workdir(local: LocalTransport, tmp_path: Path,
                              tmpfs: Callable[..., Path]) -> None:  # fmt: skip
    small = tmpfs(tmp_path / "small", size="64k")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 200_000)
    with pytest.raises(TransportError, match="No space left"):
        local.push(big, str(small / "big.bin"))


def test_push_to_read_only_workdir(local: LocalTransport, tmp_path: Path,
                                   tmpfs: Callable[..., Path]) -> None:  # fmt: skip
    ro = tmpfs(tmp_path / "ro", readonly=True)
    src = tmp_path / "m.bin"
    src.write_bytes(b"x")
    with pytest.raises(TransportError, match="Read-only"):
        local.push(src, str(ro / "m.bin"))


def test_a_runner_dies_with_a_bench_process_killed_by_signal_9(tmp_path: Path) -> None:
    """kill -9 of bench leaves no runner of ours running on this host (it would run beside the
    next one): the child is started to die with the thread that waits for it."""
    import signal
    import subprocess
    import sys
    import time

    marker = tmp_path / "started"
    code = (
        "import threading\n"
        "from benchharness.transport.local import LocalTransport\n"
        "t = LocalTransport()\n"
        f"cmd = ['sh', '-c', 'echo $$ > {marker}; exec sleep 300']\n"
        "th = threading.Thread(target=lambda: t.run(cmd, timeout=600))\n"
        "th.start(); th.join()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (marker.exists() and marker.read_text().strip()):
        time.sleep(0.05)
    child = int(marker.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the runner outlived the bench process that started it"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
