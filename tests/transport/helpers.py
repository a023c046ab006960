"""Checks shared by the transport tests (every transport must pass the same ones)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from benchharness.errors import TransportError
from benchharness.transport.base import Transport
from tests.support.sshd import pid_alive

#: Words a careless transport would hand to a shell: each must arrive as one literal argument.
NASTY_WORDS = (
    "a b",
    "$(touch pwned1)",
    "`touch pwned2`",
    "x; touch pwned3",
    'it\'s "quoted"',
    "&& touch pwned4 |",
    "*",
    "$HOME",
    "",
)
#: How long a killed process may take to disappear from /proc.
DEATH_WAIT_S = 5.0


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_exit_codes(
    t: Transport, *, stderr_separate: bool = True, missing_raises: bool = False
) -> None:
    """Exit statuses come back exactly. A missing program is status 127 from a device shell;
    the local transport (no shell) raises TransportError instead (``missing_raises``)."""
    ok = t.run(["sh", "-c", "echo out; echo err >&2"], timeout=20)
    assert ok.returncode == 0 and ok.ok
    if stderr_separate:
        assert ok.stdout == "out\n"
        assert ok.stderr == "err\n"
    else:
        assert sorted(ok.stdout.splitlines()) == ["err", "out"]
    for code in (1, 3, 42, 255):
        assert t.run(["sh", "-c", f"exit {code}"], timeout=20).returncode == code
    assert t.run(["false"], timeout=20).returncode == 1
    if missing_raises:
        with pytest.raises(TransportError, match="cannot start"):
            t.run(["/nonexistent/benchmark_model"], timeout=20)
    else:
        assert t.run(["/nonexistent/benchmark_model"], timeout=20).returncode == 127
    # output without a trailing newline comes back byte for byte
    assert t.run(["printf", "no newline"], timeout=20).stdout == "no newline"


def check_no_injection(t: Transport, workdir: str, local_workdir: Path) -> None:
    """Arguments reach the program literally; nothing in them is executed."""
    result = t.run(["printf", "%s\\n", *NASTY_WORDS], timeout=20, cwd=workdir)
    assert result.returncode == 0, result
    assert result.stdout.split("\n")[:-1] == list(NASTY_WORDS)
    weird = "model name; $(touch pwned5) 'x'.onnx"
    assert t.run(["touch", weird], timeout=20, cwd=workdir).returncode == 0
    assert (local_workdir / weird).is_file()
    assert not list(local_workdir.glob("pwned*"))


def check_env_and_cwd(t: Transport, workdir: str) -> None:
    result = t.run(
        ["sh", "-c", 'pwd; printf "%s\\n" "$BENCH_X"'],
        timeout=20,
        cwd=workdir,
        env={"BENCH_X": "value with spaces $(touch pwned6)"},
    )
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [workdir, "value with spaces $(touch pwned6)"]


def check_round_trip(t: Transport, tmp: Path, remote_dir: str) -> None:
    src = tmp / "model with space.bin"
    src.write_bytes(os.urandom(300_000))
    remote = f"{remote_dir}/sub dir/model with space.bin"
    t.push(src, remote)
    back = tmp / "back" / "copy.bin"
    t.pull(remote, back)
    assert sha256(back) == sha256(src)
    # an empty file too (zero-length transfers are an easy edge to get wrong)
    empty = tmp / "empty.bin"
    empty.write_bytes(b"")
    t.push(empty, f"{remote_dir}/empty.bin")
    t.pull(f"{remote_dir}/empty.bin", tmp / "empty.back")
    assert (tmp / "empty.back").read_bytes() == b""


def wait_dead(pid: int) -> bool:
    deadline = time.monotonic() + DEATH_WAIT_S
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def sleeper_argv(pid_dir: str) -> list[str]:
    """A command that starts a background child and waits: both PIDs land in ``pid_dir``."""
    script = f'sleep 600 & echo $! > "{pid_dir}/child.pid"; echo $$ > "{pid_dir}/parent.pid"; wait'
    return ["sh", "-c", script]


def read_pids(local_dir: Path) -> list[int]:
    return [int((local_dir / f"{n}.pid").read_text()) for n in ("parent", "child")]


def finishes_within(limit_s: float, call: Callable[[], object]) -> object:
    """Run ``call`` in a thread and return what it returned or raised; fail the test if it is
    still running after ``limit_s`` (a call without a bound would otherwise hang the suite)."""
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the test to assert on
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit_s)
    if thread.is_alive():
        pytest.fail(f"still running after {limit_s:g} s: the call has no bound")
    return outcome[0]


def wait_for_pids(local_dir: Path, limit_s: float = 20.0) -> list[int]:
    """The sleeper's PIDs once it has written both files."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            return read_pids(local_dir)
        except (OSError, ValueError):
            time.sleep(0.05)
    pytest.fail(f"the sleeper never wrote its PIDs into {local_dir}")


def flood_argv(pid_dir: str) -> list[str]:
    """A command that would print without end (``yes``), its PID in ``pid_dir/flood.pid``."""
    return ["sh", "-c", f'echo $$ > "{pid_dir}/flood.pid"; exec yes']


def all_dead(pids: list[int]) -> bool:
    return all(wait_dead(pid) for pid in pids)
