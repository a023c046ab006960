"""Jobs measured by ExecuTorch's ``executor_runner`` on a device without python.

Driven as ``runners/native.py`` drives the other native tools, through the same
``runners/native_invoke.py``: one runner process of docs/method.md is one invocation, pushed
artifact, ``taskset`` pinning and threads as the python runner would use, the environment probe
before and after in the same shell round trip, and the binary's sha256 as its version.

The tool has no warm-up and no stopping rule of its own, only ``--num_executions``. So a pilot of
``PILOT_EXECUTIONS`` (once per artifact, settings and device) estimates one inference, and the
timing invocation runs ``1 + warm-up + N`` executions: the first is the cold one, the warm-up
count covers docs/method.md's minimums (``min_n`` and ``min_s`` of the warm-up rule) plus two of its
windows, and ``N = max(min_n, min_s / estimate)``, at most ``max_s / estimate``. Builds that print
every execution (``Iteration i of N: T ms``) give per-inference samples, and the warm-up ends
where the rule would have ended it live; older builds give the mean of all executions only.

The row's ``provider`` (XNNPACK, portable, or both) is read from the artifact on this host
(``ondevice/pte_file.py``). Per-operator times: a separate invocation with ``--etdump_path`` (an
event-tracer build), whose ETDump is pulled and read like the python runner's
(``dispatch/etdump_ops``).
"""

from __future__ import annotations

import math
import posixpath
import tempfile
import weakref
from typing import Any

from benchharness.errors import ParseError, RunnerError
from benchharness.ondevice import protocol
from benchharness.ondevice.method import StoppingRule, WarmupRule
from benchharness.ondevice.protocol import Profile, RunnerResult
from benchharness.ondevice.pte_file import PteFormatError, summarize_file
from benchharness.parse import executor_runner as er
from benchharness.parse import native_result as nr
from benchharness.parse.native_result import Tool
from benchharness.runners.native_invoke import Session, invoke, perf_test_runs, rules, tool_version
from benchharness.runners.python import RunnerSettings

#: Executions of the pilot: enough to estimate one inference past the cold one.
PILOT_EXECUTIONS = 10
#: Executions before the profiled ones in the ETDump pass (left out when it is read).
PROFILE_WARMUP_RUNS = 5
#: ETDump file names the host writes on the device (``dispatch/etdump_ops`` removes only these).
ETDUMP_SUFFIX = ".etdp"

_ESTIMATES: weakref.WeakKeyDictionary[Any, dict[str, float]] = weakref.WeakKeyDictionary()


def warmup_executions(warm: WarmupRule, estimate_ms: float | None) -> int:
    """Executions offered to warm-up: docs/method.md's minimums and two windows to compare."""
    by_time = math.ceil(warm.min_s * 1000.0 / estimate_ms) if estimate_ms else 0
    return max(warm.min_n, by_time) + 2 * warm.window


def timed_executions(stop: StoppingRule, warm: WarmupRule, estimate_ms: float | None) -> int:
    """``--num_executions`` of the timing invocation: cold + warm-up + measured."""
    return 1 + warmup_executions(warm, estimate_ms) + perf_test_runs(stop, estimate_ms)


def provider_of(artifact: Any) -> str:
    """Who runs the program's work, read from the artifact on this host."""
    try:
        return summarize_file(str(artifact.path)).provider
    except (OSError, PteFormatError):
        return ""


def argv_for(
    binary: str, model: str, settings: RunnerSettings, executions: int, etdump: str | None
) -> list[str]:
    """The command line of one invocation (``etdump``: the ETDump pass)."""
    return er.build_command(
        binary, model, threads=settings.threads, affinity=settings.affinity,
        executions=executions, etdump_path=etdump,
    )  # fmt: skip


def _estimate(
    session: Session, tool: Tool, binary: str, model: str, settings: RunnerSettings,
    timeout: float, key: str,
) -> float | None:  # fmt: skip
    cache = _ESTIMATES.setdefault(session, {})
    if key not in cache:
        inv = invoke(session, argv_for(binary, model, settings, PILOT_EXECUTIONS, None), timeout,
                     settings.affinity)  # fmt: skip
        run = nr.single_run(inv.tool_output(tool))
        warm = run.iterations_ms[1:]
        if warm:
            estimate = sorted(warm)[len(warm) // 2]
        elif run.total_ms is not None and run.executions:
            estimate = run.total_ms / run.executions
        else:
            return None
        cache[key] = estimate
    return cache[key]


def _etdump_path(session: Session, artifact: Any) -> str:
    name = f"etdump-{artifact.sha256[:12] or 'model'}{ETDUMP_SUFFIX}"
    if session.workdir:
        return posixpath.join(session.workdir, name)
    # this host without a work directory: a private temp directory dispatch removes after use
    return posixpath.join(tempfile.mkdtemp(prefix=protocol.PROFILE_TMP_PREFIX), name)


def profile(
    session: Session, tool: Tool, binary: str, model: str, settings: RunnerSettings,
    timeout: float, artifact: Any,
) -> Profile:  # fmt: skip
    """The ETDump invocation; its file stays on the device for ``dispatch/etdump_ops``."""
    path = _etdump_path(session, artifact)
    executions = PROFILE_WARMUP_RUNS + settings.profile_runs
    inv = invoke(session, argv_for(binary, model, settings, executions, path), timeout,
                 settings.affinity)  # fmt: skip
    try:
        run = nr.single_run(inv.tool_output(tool))
    except (RunnerError, ParseError) as exc:
        return Profile(error=f"{type(exc).__name__}: {exc}")
    # a build without the event tracer refuses --etdump_path, so a run that took it wrote there
    return Profile(
        source=protocol.ETDUMP_PROFILE, profile_file=run.etdump_path or path,
        warmup_runs=PROFILE_WARMUP_RUNS, runs=settings.profile_runs,
    )  # fmt: skip


def run_process(
    session: Session, tool: Tool, artifact: Any, settings: RunnerSettings, timeout: float
) -> RunnerResult:
    """One runner process of ``artifact`` with ``executor_runner``, as a runner result."""
    binary = session.profile.runtimes[tool.key]
    model = session.artifact_path(artifact)
    if session.workdir:
        session.transport.run(["mkdir", "-p", session.workdir], timeout=60)
    version = tool_version(session, binary)
    stop, warm = rules(settings.method)
    key = f"{artifact.sha256}|{settings.threads}|{settings.affinity}"
    estimate = _estimate(session, tool, binary, model, settings, timeout, key)
    executions = timed_executions(stop, warm, estimate)
    inv = invoke(session, argv_for(binary, model, settings, executions, None), timeout,
                 settings.affinity)  # fmt: skip
    out = inv.tool_output(tool)
    result = er.executor_runner_result(
        nr.single_run(out), version=version, threads=settings.threads,
        provider=provider_of(artifact), warm=warm,
        planned_warmup=warmup_executions(warm, estimate), command=out.command,
    )  # fmt: skip
    result.env_start, result.env_end = inv.env_start, inv.env_end
    if settings.profile_runs > 0:
        result.profile = profile(session, tool, binary, model, settings, timeout, artifact)
    return result
