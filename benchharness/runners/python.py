"""Host side of the python runner: ship ``device/`` to a device, start it, read its result."""

from __future__ import annotations

import hashlib
import posixpath
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchharness.errors import RunnerError, TransportError
from benchharness.ondevice import protocol
from benchharness.ondevice.protocol import RunnerResult
from benchharness.plan.options import Method
from benchharness.transport.base import Transport

#: The folder shipped to devices: the runner and the modules it imports beside it.
RUNNER_DIR = Path(__file__).resolve().parents[1] / "ondevice"
#: Its files; nothing else of the package goes to a device.
RUNNER_FILES = tuple(sorted(p.name for p in RUNNER_DIR.glob("*.py") if p.name != "__init__.py"))
#: The script the device's python runs.
RUNNER_SCRIPT = "runner.py"
#: How much of a runner's output an error message quotes: enough to see the cause.
ERROR_EXCERPT_CHARS = 400


@dataclass(frozen=True)
class RunnerSettings:
    """What one runner process is asked to do: the run's method, with the threads and pinning
    resolved for its device (the run's, else the profile's)."""

    fmt: str
    method: Method = field(default_factory=Method)
    threads: int | None = None
    affinity: str | None = None
    providers: Sequence[str] = ()
    #: profiled inferences after the timed ones (0: no per-operator profile)
    profile_runs: int = 0
    #: the warm-up count the job's first process calibrated (``dispatch/warmup.py``); None: the
    #: full rule (the first process, ``--warmup full``, a job whose first process never settled)
    warmup_target_n: int | None = None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remote_sha256(transport: Transport, path: str) -> str | None:
    """sha256 of a file on the device, or None if absent (or no sha256sum there)."""
    result = transport.run(["sha256sum", path], timeout=60)
    if not result.ok or not result.stdout.strip():
        return None
    return result.stdout.split()[0]


def push_if_changed(
    transport: Transport, local: Path, remote: str, local_sha: str | None = None
) -> bool:
    """Push unless the device already holds identical bytes; True if pushed."""
    local_sha = local_sha or sha256_bytes(local.read_bytes())
    if remote_sha256(transport, remote) == local_sha:
        return False
    transport.push(local, remote)
    return True


def deploy_runner(transport: Transport, workdir: str) -> str:
    """Put the runner files in ``workdir/runner`` on the device; return that directory."""
    target = posixpath.join(workdir, "runner")
    made = transport.run(["mkdir", "-p", target], timeout=60)
    if not made.ok:
        raise TransportError(
            f"cannot create {target} on the device: {made.stderr.strip() or made.stdout.strip()}; "
            "check the profile's workdir is writable and not full"
        )
    for name in RUNNER_FILES:
        local = RUNNER_DIR / name
        if local.exists():
            push_if_changed(transport, local, posixpath.join(target, name))
    return target


def runner_argv(
    python: str, runner_dir: str, model_path: str, settings: RunnerSettings, workdir: str | None
) -> list[str]:
    argv: list[str] = []
    if settings.affinity:
        argv += ["taskset", settings.affinity]
    argv += [python, posixpath.join(runner_dir, RUNNER_SCRIPT), "--model", model_path]
    method = settings.method
    argv += ["--format", settings.fmt, "--preset", "quick" if method.quick else "default"]
    if settings.threads:
        argv += ["--threads", str(settings.threads)]
    for flag, value in (
        ("--min-n", method.min_n),
        ("--min-s", method.min_s),
        ("--max-s", method.max_s),
        ("--warmup-min-s", method.warmup_min_s),
        ("--warmup-target-n", settings.warmup_target_n),
    ):
        if value is not None:
            argv += [flag, str(value)]
    if settings.providers:
        argv += ["--providers", ",".join(settings.providers)]
    if settings.profile_runs:
        argv += ["--profile-runs", str(settings.profile_runs)]
        if workdir:
            argv += ["--workdir", workdir]
    return argv


def parse_output(
    stdout: str, stderr: str, returncode: int, *, device: str = "the device"
) -> RunnerResult:
    """The runner's checked result; RunnerError naming the device and field if it is not one."""
    try:
        result = protocol.decode(stdout)
    except protocol.ProtocolError as exc:
        raise RunnerError(
            f"the runner on {device} returned a malformed result: {exc}; if the device runs "
            "another benchharness version's runner, rerun so this one is pushed"
        ) from None
    if result is None:
        excerpt = (stderr.strip() or stdout.strip())[-ERROR_EXCERPT_CHARS:]
        raise RunnerError(
            f"the runner exited with status {returncode} and printed no result"
            + (f": {excerpt}" if excerpt else "")
            + "; run `bench devices check` to see whether its python has numpy and a runtime"
        )
    return result


def local_python() -> str:
    return sys.executable
