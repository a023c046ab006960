"""Host side of the python runner: ship ``remote.py`` to a device, start it, read its JSON."""

from __future__ import annotations

import hashlib
import json
import posixpath
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness.errors import RunnerError, TransportError
from benchharness.transport.base import Transport

RUNNER_DIR = Path(__file__).resolve().parent
#: The files that make the device-side runner; nothing else of the package goes to a device.
RUNNER_FILES = ("remote.py", "method.py", "litert_profiler.py")
RESULT_MARKER = "BENCHHARNESS_RESULT "
#: The prefix remote.py gives its own temp directory, so the host can remove it after reading.
PROFILE_TMP_PREFIX = "bh-prof-"
#: How much of a runner's output an error message quotes: enough to see the cause.
ERROR_EXCERPT_CHARS = 400


@dataclass(frozen=True)
class RunnerSettings:
    """What one runner process is asked to do."""

    fmt: str
    threads: int | None = None
    affinity: str | None = None
    quick: bool = False
    min_n: int | None = None
    min_s: float | None = None
    max_s: float | None = None
    warmup_min_s: float | None = None
    providers: Sequence[str] = ()
    profile_runs: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)


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
    argv += [python, posixpath.join(runner_dir, "remote.py"), "--model", model_path]
    argv += ["--format", settings.fmt, "--preset", "quick" if settings.quick else "default"]
    if settings.threads:
        argv += ["--threads", str(settings.threads)]
    for flag, value in (
        ("--min-n", settings.min_n),
        ("--min-s", settings.min_s),
        ("--max-s", settings.max_s),
        ("--warmup-min-s", settings.warmup_min_s),
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


def parse_output(stdout: str, stderr: str, returncode: int) -> dict[str, Any]:
    """The runner's JSON result; RunnerError if the output is not one."""
    line = None
    for candidate in reversed(stdout.splitlines()):
        if candidate.startswith(RESULT_MARKER):
            line = candidate[len(RESULT_MARKER) :]
            break
    if line is None:
        excerpt = (stderr.strip() or stdout.strip())[-ERROR_EXCERPT_CHARS:]
        raise RunnerError(
            f"the runner exited with status {returncode} and printed no result"
            + (f": {excerpt}" if excerpt else "")
            + "; run `bench devices check` to see whether its python has numpy and a runtime"
        )
    try:
        result = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RunnerError(f"the runner's result is not valid JSON ({exc}): {line[:200]!r}") from exc
    if not isinstance(result, dict) or "ok" not in result:
        raise RunnerError(f"the runner's result has no 'ok' field: {line[:200]!r}")
    if result["ok"]:
        samples = result.get("samples_ms")
        if not isinstance(samples, list) or not samples:
            raise RunnerError("the runner reported success but returned no samples")
        if not all(isinstance(s, (int, float)) and s >= 0 for s in samples):
            raise RunnerError("the runner returned samples that are not non-negative numbers")
    return result


def local_python() -> str:
    return sys.executable
