"""Reading a subprocess's output with a deadline and a size cap (local commands, the adb client).

``subprocess.communicate`` keeps everything in memory and knows no cap: a command that prints
without end fills this host's memory. capture() reads both pipes as they fill and stops at the
cap or the deadline, leaving the killing to the caller, who knows the process group.
"""

from __future__ import annotations

import os
import posixpath
import selectors
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchharness.errors import CommandTimeoutError, HarnessError, RunnerError
from benchharness.transport.remote_shell import quote_argv

#: Read size per wake-up; large enough that a chatty command costs few of them.
READ_CHUNK = 65536


@dataclass
class Captured:
    """What a process printed so far, and why reading stopped."""

    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    timed_out: bool = False
    overflowed: bool = False

    @property
    def size(self) -> int:
        return len(self.out) + len(self.err)

    def text(self) -> tuple[str, str]:
        return self.out.decode("utf-8", "replace"), self.err.decode("utf-8", "replace")


def capture(
    proc: subprocess.Popen[bytes], captured: Captured, *, timeout: float, max_bytes: int
) -> Captured:
    """Read ``proc``'s stdout and stderr (binary pipes) into ``captured`` until both close, the
    deadline passes (``timed_out``) or more than ``max_bytes`` arrived (``overflowed``); then
    wait for the process unless reading stopped early. ``captured`` is filled in place, so a
    caller interrupted (KeyboardInterrupt) still has what arrived."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for pipe, buf in ((proc.stdout, captured.out), (proc.stderr, captured.err)):
            if pipe is not None:
                sel.register(pipe.fileno(), selectors.EVENT_READ, buf)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                captured.timed_out = True
                return captured
            for key, _ in sel.select(remaining):
                # os.read: no Python-side buffer that select() would not see
                data = os.read(key.fd, READ_CHUNK)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                key.data.extend(data)
                if captured.size > max_bytes:
                    captured.overflowed = True
                    return captured
    remaining = max(deadline - time.monotonic(), 0.0)
    try:
        proc.wait(remaining)
    except subprocess.TimeoutExpired:
        captured.timed_out = True  # output closed but the process lingers
    return captured


def human_bytes(n: int) -> str:
    """``4 MiB`` for whole MiB, else the byte count."""
    return f"{n // 2**20} MiB" if n and n % 2**20 == 0 else f"{n} bytes"


def flood_message(argv: Sequence[str], where: str, cap: int) -> str:
    """Why a command was killed for printing too much (every transport says it alike)."""
    return (
        f"the output of {quote_argv(argv)[:160]} on {where} exceeded the {human_bytes(cap)} "
        "output cap (max_output_bytes) and it was killed; a runner prints one result, so this "
        "one is flooding (a debug log left on?)"
    )


def cut_short(
    argv: Sequence[str], where: str, *, flooded: bool, cap: int, timeout: float
) -> HarnessError:
    """The error of a command killed on ``where`` for printing past ``cap`` bytes (``flooded``)
    or else for running past ``timeout`` seconds."""
    if flooded:
        return RunnerError(flood_message(argv, where, cap))
    return CommandTimeoutError(
        f"{posixpath.basename(argv[0])} on {where} ran past {timeout:g} s and was killed; raise "
        "the job timeout (--timeout) if the model is that slow"
    )
