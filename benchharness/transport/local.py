"""Run on this host: subprocesses and file copies."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import threading
from pathlib import Path

from benchharness.errors import TransportError
from benchharness.transport.base import (
    DEFAULT_MAX_PULL_BYTES,
    Bounds,
    Command,
    CommandResult,
    Transport,
)
from benchharness.transport.files import (
    describe_mode,
    landing,
    not_regular_error,
    size_cap_error,
)
from benchharness.transport.pipes import Captured, capture, cut_short

#: util-linux's setpriv sets the child's parent-death signal before it runs the command (a
#: preexec_fn doing the same is unsafe in a process with threads); absent, nothing is prefixed.
DIE_WITH_PARENT: tuple[str, ...] = (
    ("setpriv", "--pdeathsig", "KILL", "--") if shutil.which("setpriv") else ()
)


class LocalTransport(Transport):
    kind = "local"

    def __init__(self, *, bounds: Bounds | None = None) -> None:
        self.bounds = bounds or Bounds()
        # commands now running, so close() from another thread (Ctrl-C) can kill them
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return "this host"

    def execute(self, command: Command) -> CommandResult:
        argv, timeout, cap = command.argv, command.timeout, command.max_output_bytes
        full_env = {**os.environ, **(command.env or {})}
        if DIE_WITH_PARENT and shutil.which(argv[0], path=full_env.get("PATH")) is None:
            # setpriv would report a missing program as its own exit status 127
            raise TransportError(f"cannot start {argv[0]}: not found, or not executable")
        try:
            # own process group, so a timeout kills the runner and anything it started; and it
            # dies with the thread that waits for it, so a bench killed by signal 9 leaves no
            # runner beside the next one
            proc = subprocess.Popen(
                [*DIE_WITH_PARENT, *argv] if DIE_WITH_PARENT else argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                cwd=command.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise TransportError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
        with self._lock:
            self._running.add(proc)
        captured = Captured()
        try:
            capture(proc, captured, timeout=timeout, max_bytes=cap)
            if captured.timed_out or captured.overflowed:
                _kill_group(proc)
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            with self._lock:
                self._running.discard(proc)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        if captured.timed_out or captured.overflowed:
            raise cut_short(argv, self.where, flooded=captured.overflowed, cap=cap, timeout=timeout)
        out, err = captured.text()
        return CommandResult(tuple(argv), proc.returncode, out, err)

    def push(self, local: Path, remote: str) -> None:
        try:
            Path(remote).parent.mkdir(parents=True, exist_ok=True)
            if Path(local).resolve() != Path(remote).resolve():
                shutil.copyfile(local, remote)
        except OSError as exc:
            raise TransportError(f"cannot copy {local} to {remote}: {exc.strerror or exc}") from exc

    def pull(
        self, remote: str, local: Path, *, max_bytes: int | None = DEFAULT_MAX_PULL_BYTES
    ) -> None:
        local = Path(local)
        try:
            info = os.stat(remote)
        except OSError as exc:
            raise TransportError(f"cannot copy {remote} to {local}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise not_regular_error(remote, self.where, describe_mode(info.st_mode))
        if max_bytes is not None and info.st_size > max_bytes:
            raise size_cap_error(remote, self.where, info.st_size, max_bytes)
        if local.resolve() == Path(remote).resolve():
            return
        with landing(local) as part:
            try:
                shutil.copyfile(remote, part)
            except OSError as exc:
                if exc.filename == remote:
                    raise TransportError(
                        f"cannot copy {remote} to {local}: {exc.strerror or exc}"
                    ) from exc
                raise
        # a file that grew past the cap while being copied is not kept either
        if max_bytes is not None and local.stat().st_size > max_bytes:
            size = local.stat().st_size
            local.unlink()
            raise size_cap_error(remote, self.where, size, max_bytes)

    def close(self) -> None:
        """Kill whatever this transport is still running (their process groups)."""
        with self._lock:
            running = list(self._running)
        for proc in running:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have ended by itself meanwhile
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
