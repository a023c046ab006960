"""The transport interface: run a command, push a file, pull a file, close; and around them
the few things a dispatcher needs to leave nothing behind and nothing exposed.

Every transport (local subprocesses, SSH, adb) implements these operations and is a context
manager. Commands are given as an argv list and quoted by the transport, never by callers, so a
model name or path with spaces or shell metacharacters cannot execute anything.

Every remote call is bounded (Bounds): nothing waits on a library default of an hour or forever.
A command's output is capped (``max_output_bytes``), a pulled file is capped (``max_bytes``) and
must be a regular file. A command whose end could not be confirmed (Ctrl-C, a dropped
connection) is remembered and killed on the device before anything else runs there (``reap``).

What a dispatcher calls:

- ``ensure_private_dir(workdir)`` once per session before deploying anything, and use the path it
  returns (``~/...`` resolved, symlinks resolved): it creates the directory 0700 and refuses one
  that someone else owns or may write to.
- ``reap()`` after a retryable TransportError, before retrying on the same transport (``run``
  does it by itself first; an explicit call also covers a dispatcher that replaces the transport:
  reap the old one before closing it).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchharness.errors import TransportError
from benchharness.transport.remote_shell import (
    check_private_dir,
    private_dir_script,
    quote_argv,
)

__all__ = [
    "DEFAULT_MAX_OUTPUT_BYTES",
    "DEFAULT_MAX_PULL_BYTES",
    "Bounds",
    "Command",
    "CommandResult",
    "RemoteTransport",
    "Transport",
    "quote_argv",
]

#: A runner prints one result (samples and an op table: a few MiB at most); 64 MiB means a
#: flood (a debug log left on, a runaway loop), which would otherwise fill this host's memory.
DEFAULT_MAX_OUTPUT_BYTES = 64 * 2**20
#: Largest file a pull accepts: op profiles of big models over many runs reach hundreds of MiB.
DEFAULT_MAX_PULL_BYTES = 2**30

#: A live device answers a channel open, an exec or SFTP request, a stat, in milliseconds; 30 s
#: trips only on one that has stopped answering (a board swapping hard still makes it).
CONTROL_TIMEOUT_S = 30.0
#: Fixed allowance of every push or pull, on top of its share by size (connection set-up, fsync).
TRANSFER_FLOOR_S = 30.0
#: Slowest rate taken for a live transfer: USB 2 adb moves ~30 MiB/s, SFTP on a LAN more, Wi-Fi
#: adb can drop below 1 MiB/s; 512 KiB/s only trips on a transfer that has stalled.
TRANSFER_MIN_BYTES_PER_S = 512 * 1024


@dataclass(frozen=True)
class Bounds:
    """How long remote calls may take (tests shorten them; users keep the defaults)."""

    control_s: float = CONTROL_TIMEOUT_S
    transfer_floor_s: float = TRANSFER_FLOOR_S
    transfer_min_rate: float = TRANSFER_MIN_BYTES_PER_S

    def transfer_s(self, size: int | None) -> float:
        """The bound of a push or pull of ``size`` bytes: the floor plus size / minimum rate."""
        return self.transfer_floor_s + max(size or 0, 0) / self.transfer_min_rate


@dataclass(frozen=True)
class CommandResult:
    """What a finished command left behind."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class Command:
    """One command as ``Transport.run`` was given it, its words as strings."""

    argv: tuple[str, ...]
    timeout: float
    env: dict[str, str] | None = None
    cwd: str | None = None
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES


class Transport(ABC):
    """A way to run commands and move files on one device."""

    #: Transport kind as written in device profiles and ``runs.csv`` (``local``, ``ssh``, ``adb``).
    kind: str = "base"
    #: Bounds of remote calls; constructors take ``bounds=`` to change them.
    bounds: Bounds = Bounds()
    #: Whether ensure_private_dir checks the parents of the work directory too (not on Android,
    #: whose /data belongs to the system user by design and where apps cannot reach
    #: /data/local/tmp at all).
    check_workdir_parents: bool = True

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> CommandResult:
        """Run ``argv`` on the device; raise CommandTimeoutError after ``timeout`` seconds
        (having killed the command on the device), TransportError if the device cannot be talked
        to, RunnerError (having killed it) if stdout and stderr together pass
        ``max_output_bytes``. A non-zero exit status is *not* an error: it is returned in the
        result."""
        command = Command(tuple(str(a) for a in argv), timeout, env, cwd, max_output_bytes)
        self.reap()  # nothing left over from an earlier failure may run alongside
        return self.execute(command)

    @abstractmethod
    def execute(self, command: Command) -> CommandResult:
        """What ``run`` does on this transport, once nothing is left over (reap)."""

    @abstractmethod
    def push(self, local: Path, remote: str) -> None:
        """Copy a local file to ``remote`` (a path on the device), within
        ``bounds.transfer_s(size)``; a failed push leaves no partial file there."""

    @abstractmethod
    def pull(
        self, remote: str, local: Path, *, max_bytes: int | None = DEFAULT_MAX_PULL_BYTES
    ) -> None:
        """Copy ``remote`` from the device into the local file ``local``, within
        ``bounds.transfer_s(size)``. Refused with TransportError: a remote path that is not a
        regular file, and one larger than ``max_bytes`` (None: no cap). A failed pull leaves no
        file at ``local``, partial or not."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; calling it twice is harmless."""

    @property
    def leftovers(self) -> tuple[str, ...]:
        """Tokens of commands whose end on the device is not confirmed (see reap)."""
        return ()

    def reap(self) -> None:  # noqa: B027 - a no-op is right for transports without leftovers
        """Kill, on the device, every command of this transport whose end was not confirmed
        (interrupted, or its connection dropped); raise TransportError if the device cannot be
        reached to do so. ``run`` calls it first by itself; a dispatcher calls it after a
        retryable failure, before the retry. Nothing to do for transports whose commands die
        with this process (local)."""

    def ensure_private_dir(self, path: str) -> str:
        """Make sure the work directory ``path`` (absolute, or ``~/...`` for the device user's
        home) exists and is private, and return its physical absolute path, to be used from then
        on. A missing one is created with mode 0700. One owned by someone else, or writable by
        group or others (or, where parents are checked, under a parent another user could swap
        it in), is refused with a TransportError that says how to fix it."""
        result = self.run(["sh", "-c", private_dir_script(path)], timeout=self.bounds.control_s)
        return check_private_dir(
            result.stdout, path, self.where, check_parents=self.check_workdir_parents
        )

    @property
    def where(self) -> str:
        """The device, as messages name it."""
        return self.kind

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteTransport(Transport):
    """A transport whose commands outlive their connection (ssh, adb): the commands whose end on
    the device it could not confirm are remembered by token and killed there before the next."""

    #: tokens of commands whose end on the device is not confirmed (see reap); set by __init__
    _leftovers: list[str]

    @abstractmethod
    def _kill_all(self, tokens: list[str]) -> None:
        """Kill, on the device, every process carrying one of ``tokens``; raise TransportError
        when the device cannot be reached or the kill cannot be confirmed."""

    def _orphaned(self, token: str) -> None:
        """The connection dropped under a running command: remember it, and kill it at once if
        the device can be reached again (else the next run() or reap() does)."""
        self._leftovers.append(token)
        with contextlib.suppress(TransportError):
            self.reap()

    @property
    def leftovers(self) -> tuple[str, ...]:
        return tuple(self._leftovers)

    def reap(self) -> None:
        if not self._leftovers:
            return
        tokens = list(self._leftovers)
        self._kill_all(tokens)
        self._leftovers = [t for t in self._leftovers if t not in tokens]
