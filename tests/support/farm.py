"""A real device farm on loopback for tests: a ``dask scheduler`` process, ``bench worker``
processes, and a gate a test holds a device's runner at, so a fault lands mid-job.

Each process is started as a user would start it (the ``dask`` and ``bench`` command lines),
in its own process group, with private lock and artifact-cache folders; ``kill()`` is
``kill -9`` of that process alone (its device's runner, started by the worker in a session of
its own, lives on as it would on a real host), ``stop()`` ends it and its children.

The farm speaks TLS as a farm on a network must: ``Certs`` makes its CA and certificates with
``bench farm certs``'s own code at test time, and a farm config file for the coordinator.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchharness.farm.certificates import make_certificates, members
from tests.support.sshd import free_port

ROOT = Path(__file__).resolve().parents[2]
#: ``dask scheduler`` answers in ~2 s here; 60 s leaves room for a loaded CI machine.
START_TIMEOUT_S = 60.0
#: How long a test waits for a gated runner to start, or for the farm to see a change.
WAIT_S = 120.0


def dask_cli() -> str:
    """The ``dask`` command of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("dask")
    return str(beside) if beside.exists() else shutil.which("dask") or "dask"


def wait_until(check: Any, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Process:
    """A server process whose output is collected in memory (and a file, for failures)."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str]) -> None:
        self.log_path = log
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
            start_new_session=True,  # signals from the test reach it, never the test runner
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("a", encoding="utf-8") as log:
            for line in self.proc.stdout:
                self.lines.append(line)
                log.write(line)
                log.flush()

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = START_TIMEOUT_S) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None and text not in self.output():
                raise AssertionError(f"{self.log_path.name} exited:\n{self.output()[-3000:]}")
            return text in self.output()

        wait_until(seen, f"{text!r} from {self.log_path.name}", timeout)

    def kill(self) -> None:
        """kill -9 of this process only."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """End it and whatever it started (its process group)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Certs:
    """A farm's CA and the certificates of its scheduler, a worker and a client, in ``dir``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        make_certificates(directory, members([], []))

    def pair(self, name: str) -> tuple[Path, Path]:
        return self.dir / f"{name}.pem", self.dir / f"{name}.key"

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    def options(self, name: str) -> list[str]:
        """The --tls-* options of a bench command presenting certificate ``name``."""
        cert, key = self.pair(name)
        return ["--tls-ca", str(self.ca), "--tls-cert", str(cert), "--tls-key", str(key)]

    def config(self, name: str = "client") -> Path:
        """A farm config file naming certificate ``name`` (paths relative to the file)."""
        path = self.dir / f"farm-{name}.toml"
        path.write_text(f'tls_ca = "ca.pem"\ntls_cert = "{name}.pem"\ntls_key = "{name}.key"\n')
        return path


class Scheduler(Process):
    """``dask scheduler`` on 127.0.0.1, with TLS when given ``certs`` (its HTTP server on
    loopback too: ``--no-dashboard`` alone leaves it on every interface)."""

    def __init__(
        self, directory: Path, port: int | None = None, certs: Certs | None = None
    ) -> None:
        self.port = port or free_port()
        self.address = f"{'tls' if certs else 'tcp'}://127.0.0.1:{self.port}"
        argv = [dask_cli(), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                "--no-dashboard", "--dashboard-address", "127.0.0.1:0"]  # fmt: skip
        if certs is not None:
            cert, key = certs.pair("scheduler")
            argv += ["--tls-ca-file", str(certs.ca), "--tls-cert", str(cert), "--tls-key", str(key)]
        super().__init__(argv, directory / f"scheduler-{self.port}.log", dict(os.environ))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dask scheduler exited:\n{self.output()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            time.sleep(0.05)
        raise AssertionError(f"dask scheduler did not listen on {self.port}:\n{self.output()}")


class Worker(Process):
    """``bench worker --scheduler ... --device ...`` with its own locks and artifact cache."""

    def __init__(
        self,
        directory: Path,
        name: str,
        scheduler: str,
        profiles: Sequence[Path],
        env: dict[str, str] | None = None,
        tls: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.devices = len(profiles)
        self.cache = directory / f"cache-{name}"
        full_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BENCH_LOCK_DIR": str(directory / f"locks-{name}"),
            "BENCH_FARM_CACHE_DIR": str(self.cache),
            **(env or {}),
        }
        argv = [sys.executable, "-m", "benchharness.cli", "worker", "--scheduler", scheduler,
                "--name", name, *tls]  # fmt: skip
        for p in profiles:
            argv += ["--device", str(p)]
        super().__init__(argv, directory / f"worker-{name}.log", full_env)

    def wait_serving(self, times: int = 1) -> None:
        """Until each of its devices has joined the scheduler ``times`` times (once more per
        reconnect): ``bench worker`` runs one Dask worker per device."""

        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.output()[-3000:]}")
            joined = sum(line.startswith("serving ") for line in self.lines)
            return joined >= times * self.devices

        wait_until(seen, f"worker {self.name} serving", START_TIMEOUT_S)


def toml(path: Path, fields: dict[str, Any], python: str = sys.executable) -> Path:
    """A device profile file (runtimes.python = ``python``, no cooldown)."""
    lines = [
        f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in fields.items()
    ]
    lines += ["[cooldown]", "min_s = 0", "max_s = 0", "[runtimes]", f'python = "{python}"']
    path.write_text("\n".join(lines) + "\n")
    return path


class Gate:
    """A python for a device profile that records every runner process it starts, refuses to
    run two at once on its device (a second one exits at once with status 97, so the row shows
    it; a first one killed with -9 does not count), and holds runner processes while the test
    says so (``hold``) until ``release``."""

    def __init__(self, directory: Path, name: str) -> None:
        self.dir = directory / f"gate-{name}"
        self.dir.mkdir(parents=True)
        self.python = directory / f"python-{name}"
        d, py = str(self.dir), sys.executable
        self.python.write_text(
            "#!/bin/sh\n"
            # only runner processes: the start-up check's python -c passes straight through
            f'case "$*" in *runner.py*) ;; *) exec "{py}" "$@";; esac\n'
            # a runner killed with -9 leaves its mark: only a live one counts
            f'if ! mkdir "{d}/busy" 2>/dev/null; then other=$(cat "{d}/busy/pid" 2>/dev/null);\n'
            f'  if [ -n "$other" ] && kill -0 "$other" 2>/dev/null; then\n'
            f'    echo "two runners at once" >&2; exit 97; fi; fi\n'
            f'echo $$ > "{d}/busy/pid"\n'
            f"trap 'rm -rf \"{d}/busy\"' EXIT\n"
            f'n=$(ls "{d}" | grep -c "^started")\n'
            f'echo $$ > "{d}/started.$n"\n'
            f'while [ -e "{d}/hold" ] && [ "$n" -ge "$(cat "{d}/hold")" ]; do sleep 0.05; done\n'
            f'"{py}" "$@"\n'
        )
        self.python.chmod(self.python.stat().st_mode | stat.S_IEXEC)

    def started(self) -> int:
        return len(list(self.dir.glob("started.*")))

    def hold(self, after: int = 0) -> None:
        """Hold every runner process but the next ``after`` ones."""
        (self.dir / "hold").write_text(str(self.started() + after))

    def release(self) -> None:
        (self.dir / "hold").unlink(missing_ok=True)
