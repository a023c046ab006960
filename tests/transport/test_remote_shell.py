"""The wrapper around every remote command: its PID and status lines carry a per-call token, so
text a login shell prints first cannot hide them and a command's own output cannot forge them."""

from __future__ import annotations

import subprocess

import pytest

from benchharness.transport.base import Bounds
from benchharness.transport.remote_shell import (
    new_token,
    remote_command_line,
    split_pid_marker,
    split_rc_marker,
)


def _sh(line: str, prefix: str = "") -> str:
    return subprocess.run(["sh", "-c", prefix + line], capture_output=True, text=True).stdout


def test_pid_line_is_found_after_login_noise() -> None:
    token = new_token()
    line = remote_command_line(["echo", "out"], token=token)
    stdout = _sh(line, prefix="echo 'Welcome!'; printf 'no newline'; ")
    pid, rest = split_pid_marker(stdout, token)
    assert pid is not None and pid > 1
    assert rest == "out\n"


def test_markers_cannot_be_forged_by_output() -> None:
    token = new_token()
    fake = f"__BH_PID__:{new_token()}:1\n__BH_RC__:{new_token()}:0\n"
    line = remote_command_line(["sh", "-c", f"printf '{fake}'; exit 7"], token=token,
                               rc_marker=True)  # fmt: skip
    pid, rest = split_pid_marker(_sh(line, prefix=f"printf '{fake}'; "), token)
    assert pid is not None and pid != 1
    status, out = split_rc_marker(rest, token)
    assert (status, out) == (7, fake)
    # the same text with our own token, printed by the command after the real PID line, is
    # output: the first PID line is the wrapper's, the last status line is the wrapper's
    own = f"__BH_PID__:{token}:1\n"
    line = remote_command_line(["printf", own], token=token, rc_marker=True)
    pid, rest = split_pid_marker(_sh(line), token)
    assert pid != 1 and split_rc_marker(rest, token) == (0, own)


def test_tokens_differ() -> None:
    assert len({new_token() for _ in range(100)}) == 100


def test_crlf_from_a_pty_is_undone() -> None:
    token = new_token()
    stdout = f"motd\r\n__BH_PID__:{token}:42\r\nline\r\n\r\n__BH_RC__:{token}:3\r\n"
    pid, rest = split_pid_marker(stdout, token)
    assert pid == 42
    assert split_rc_marker(rest, token) == (3, "line\n")


@pytest.mark.parametrize(
    ("size", "expected"), [(0, 30.0), (512 * 1024, 31.0), (100 * 2**20, 30.0 + 200.0)]
)
def test_transfer_bound_scales_with_size(size: int, expected: float) -> None:
    assert Bounds().transfer_s(size) == pytest.approx(expected)
    assert Bounds(transfer_floor_s=1, transfer_min_rate=1000).transfer_s(5000) == 6.0
