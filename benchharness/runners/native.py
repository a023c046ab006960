"""Jobs measured by the native tools: TFLite ``benchmark_model`` and ``onnxruntime_perf_test``
(and ExecuTorch's ``executor_runner``, driven in ``runners/native_pte.py``).

Which runner a job gets is the profile's ``runner`` field (``profiles/device_profile.py``):

* ``auto`` (the default): the python runner when ``[runtimes] python`` is set; otherwise the
  native tool of the artifact's format (``benchmark_model`` for TFLite, ``onnxruntime_perf_test``
  for ONNX) when the profile names it; a format with neither gets a failed row that says what to
  add to the profile. A profile naming no runtime at all keeps the python runner with the default
  interpreter (this host's, or ``python3`` on a remote device), as before native tools existed.
* ``python`` / ``native``: always that runner (``native`` fails a format without its tool).

One runner process of docs/method.md is one tool invocation. Per invocation the artifact is pushed
(the hash-keyed ``DeviceSession.artifact_path``), the tool runs under ``taskset`` with the job
timeout, pinned and threaded as the python runner would be, and its output is parsed by the
existing parsers. The same shell round trip runs the environment probe (``ondevice/probe.py``, the
one the python runner runs too) before and after the tool, for the environment columns and
THROTTLED. That invocation, the binary's version and the rules below are shared with
``runners/native_pte.py`` through ``runners/native_invoke.py``.

How docs/method.md's rules map onto the tools' own flags (no tool has an adaptive stop):

* ``benchmark_model``: ``--num_runs`` = min_n, ``--min_secs`` = min_s, ``--max_secs`` = max_s
  (default 100 / 10 s / 120 s; ``--quick`` 64 / 5 s / 120 s): the tool runs at least that many
  inferences *and* at least that long and starts none after the cap, which is docs/method.md's
  minimum and cap without the CI/IQR extension. Warm-up: ``--warmup_runs`` = 10 and
  ``--warmup_min_secs`` = 1 s (docs/method.md's minimums; the tool has no window-stability test).
* ``onnxruntime_perf_test``: its ``-m times -r N`` mode fixes a count only, so a pilot of
  ``PILOT_RUNS`` inferences (once per artifact and device) estimates one inference and
  ``N = max(min_n, min_s / estimate)``, at most ``max_s / estimate``. Warm-up is the tool's
  own single untimed inference; it cannot be configured.

The tools print aggregates, not every inference: their output becomes the runner result in
``parse/native_result.py``, the same code ``bench import`` uses for a log captured by hand.

Per-operator times come from a separate invocation after timing (end-to-end numbers are never taken
with a profiler on): ``benchmark_model --enable_op_profiling=true`` (rows are the tool's per-run
*averages*, aligned to the TFLite graph as ``litert_profiler`` aligns XNNPACK operators) and
``onnxruntime_perf_test -p`` (its JSON profile is pulled back and joined by
``dispatch/op_profile``).

The tools print no version, so ``runtime_version`` is the binary's sha256 (first 16 hex digits)
and its path on the device.
"""

from __future__ import annotations

import posixpath
import shlex
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from benchharness.cost.artifact_cost import graph_cost_or_none
from benchharness.errors import DeviceProfileError, ParseError, RunnerError
from benchharness.ondevice import protocol
from benchharness.ondevice.protocol import Profile, RunnerResult
from benchharness.parse import benchmark_model as bm
from benchharness.parse import native_result as nr
from benchharness.parse import ort_perf_test as pt
from benchharness.parse.native_result import (
    BENCHMARK_MODEL,
    EXECUTOR_RUNNER,
    PERF_TEST,
    TOOLS,
    Tool,
)
from benchharness.runners import native_pte
from benchharness.runners.native_invoke import (
    Invocation,
    Session,
    invoke,
    perf_test_runs,
    rules,
    tool_rule,
    tool_version,
)
from benchharness.runners.python import RunnerSettings

if TYPE_CHECKING:
    from benchharness.profiles.device_profile import DeviceProfile


#: Ask benchmark_model for its peak memory on the timing invocation: its sampler thread wakes every
#: 50 ms for one ``getrusage``, microseconds a second, far below process-to-process noise.
REPORT_PEAK_MEMORY = True
#: Inferences of perf_test's pilot: enough to estimate one inference, cheap next to min_s.
PILOT_RUNS = 10
#: ORT execution providers as perf_test's ``-e`` names them (its default is the CPU provider).
PERF_TEST_EP: dict[str, str] = {
    "XnnpackExecutionProvider": "xnnpack",
    "NnapiExecutionProvider": "nnapi",
    "QNNExecutionProvider": "qnn",
    "CoreMLExecutionProvider": "coreml",
    "CUDAExecutionProvider": "cuda",
    "TensorrtExecutionProvider": "tensorrt",
    "OpenVINOExecutionProvider": "openvino",
    "DmlExecutionProvider": "dml",
    "ACLExecutionProvider": "acl",
    "ArmNNExecutionProvider": "armnn",
}
#: ORT's CPU provider: perf_test's default, passed as no ``-e`` at all.
ORT_CPU = nr.ORT_CPU

#: Per device session: perf_test's estimate of one inference, by artifact and settings.
_ESTIMATES: weakref.WeakKeyDictionary[Any, dict[str, float]] = weakref.WeakKeyDictionary()


# ------------------------------------------------------------------------------- which runner


def native_tool(profile: DeviceProfile, fmt: str) -> Tool | None:
    """The native tool that runs ``fmt`` on this device, or None for the python runner.

    Raises DeviceProfileError when the profile leaves no way to run the format.
    """
    runtimes = profile.runtimes
    tool = TOOLS.get(fmt)
    available = tool if tool is not None and tool.key in runtimes else None
    if profile.runner == "python":
        return None
    if profile.runner == "native":
        if available is None:
            raise DeviceProfileError(_no_way(profile, fmt, tool, python_ok=False))
        return available
    if "python" in runtimes:
        return None
    if available is not None:
        return available
    if any(t.key in runtimes for t in TOOLS.values()):
        raise DeviceProfileError(_no_way(profile, fmt, tool, python_ok=True))
    return None


def _no_way(profile: DeviceProfile, fmt: str, tool: Tool | None, *, python_ok: bool) -> str:
    where = str(profile.path) if profile.path else f"the profile of {profile.name}"
    named = ", ".join(k for k in profile.runtimes) or "none"
    adds = []
    if tool is not None:
        adds.append(f'{tool.key} = "/data/local/tmp/{tool.key}"')
    if python_ok:
        adds.append('python = "PATH/TO/python3"')
    fix = " or ".join(f"`{a}`" for a in adds)
    runner = f" with runner = {profile.runner!r}" if profile.runner != "auto" else ""
    return (
        f"{profile.name} has no way to run {fmt} models{runner}: [runtimes] names {named}; "
        + (f"add {fix} under [runtimes] in {where}, or " if fix else "")
        + f"leave {fmt} out with --formats"
    )


# ------------------------------------------------------------------------------- command lines


def benchmark_model_argv(
    binary: str, graph: str, settings: RunnerSettings, *, op_profiling: bool = False
) -> list[str]:
    """The timing invocation, or (``op_profiling``) the per-operator one of ``profile_runs``."""
    stop, warm = rules(settings.method)
    num_runs, min_secs = (settings.profile_runs, 0.0) if op_profiling else (stop.min_n, stop.min_s)
    return bm.build_command(
        binary,
        graph,
        threads=settings.threads,
        affinity=settings.affinity,
        num_runs=max(1, num_runs),
        warmup_runs=warm.min_n,
        min_secs=min_secs,
        op_profiling=op_profiling,
        # the per-operator invocation's memory is never read: no sampler there
        report_peak_memory=REPORT_PEAK_MEMORY and not op_profiling,
        extra=[f"--max_secs={stop.max_s:g}", f"--warmup_min_secs={warm.min_s:g}"],
    )


def _perf_test_ep(providers: Sequence[str]) -> list[str]:
    wanted = [p for p in providers if p != ORT_CPU]
    if not wanted:
        return []
    name = PERF_TEST_EP.get(wanted[0])
    if name is None:
        known = ", ".join(sorted(PERF_TEST_EP))
        raise DeviceProfileError(
            f"onnxruntime_perf_test has no -e name known here for {wanted[0]}; use one of "
            f"{known}, or {ORT_CPU}"
        )
    return ["-e", name]


def perf_test_argv(
    binary: str,
    model: str,
    settings: RunnerSettings,
    runs: int,
    profile_prefix: str | None = None,
) -> list[str]:
    return pt.build_command(
        binary,
        model,
        threads=settings.threads,
        affinity=settings.affinity,
        runs=runs,
        profile_prefix=profile_prefix,
        extra=_perf_test_ep(settings.providers),
    )


# ------------------------------------------------------------------------------- running


def tool_result(
    tool: Tool, inv: Invocation, version: str, settings: RunnerSettings
) -> RunnerResult:
    """The runner result of one timing invocation (``samples_ms`` empty)."""
    out = inv.tool_output(tool)
    run = nr.single_run(out)
    if tool is BENCHMARK_MODEL:
        result = nr.benchmark_model_result(
            run, version=version, threads=settings.threads, command=out.command
        )
    else:
        result = nr.perf_test_result(
            run, version=version, threads=settings.threads, providers=settings.providers,
            command=out.command,
        )  # fmt: skip
    result.env_start, result.env_end = inv.env_start, inv.env_end
    return result


#: The timing invocation's result of each tool, under the names the tests and callers know.
benchmark_model_result = perf_test_result = tool_result


def benchmark_model_profile(tool: Tool, inv: Invocation, cost: Any = None) -> Profile:
    """The per-operator invocation's operators, aligned to ``cost``'s graph when given."""
    return nr.benchmark_model_profile(inv.tool_output(tool), cost)


def _profile_prefix(session: Session, artifact: Any) -> str:
    name = f"ort-{artifact.sha256[:12] or 'model'}"
    if session.workdir:
        return posixpath.join(session.workdir, name)
    # this host without a work directory: a private temp directory dispatch/op_profile removes
    # after use
    return posixpath.join(tempfile.mkdtemp(prefix=protocol.PROFILE_TMP_PREFIX), name)


def _find_profile(session: Session, prefix: str) -> str | None:
    listed = session.transport.run(
        ["sh", "-c", f"ls -1t {shlex.quote(prefix)}_*.json 2>/dev/null"], timeout=60
    )
    files = [line.strip() for line in listed.stdout.splitlines() if line.strip()]
    return files[0] if files else None


@dataclass(frozen=True)
class _PerfTest:
    """``onnxruntime_perf_test`` on one model, with one process's settings."""

    session: Session
    tool: Tool
    binary: str
    model: str
    settings: RunnerSettings
    timeout: float

    def run(self, runs: int, profile_prefix: str | None = None) -> Invocation:
        argv = perf_test_argv(self.binary, self.model, self.settings, runs, profile_prefix)
        return invoke(self.session, argv, self.timeout, self.settings.affinity)

    def estimate_ms(self, key: str) -> float | None:
        """One inference's ms from a short pilot run, cached per artifact and settings."""
        cache = _ESTIMATES.setdefault(self.session, {})
        if key not in cache:
            stats = nr.perf_test_stats(nr.single_run(self.run(PILOT_RUNS).tool_output(self.tool)))
            estimate = stats.median if stats.median is not None else stats.mean
            if estimate is None:
                return None
            cache[key] = estimate
        return cache[key]

    def profile(self, artifact: Any) -> Profile:
        session = self.session
        prefix = _profile_prefix(session, artifact)
        inv = self.run(self.settings.profile_runs, prefix)
        error = None
        try:
            nr.single_run(inv.tool_output(self.tool))
        except (RunnerError, ParseError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        path = _find_profile(session, prefix) if error is None else None
        if path is None:
            # nothing for dispatch/op_profile to fetch: drop the private temp dir
            if not session.workdir:
                shutil.rmtree(posixpath.dirname(prefix), ignore_errors=True)
            return Profile(error=error or f"perf_test -p wrote no {prefix}_*.json")
        # the tool's warm-up inference is profiled too; dispatch/op_profile leaves it out
        return Profile(
            source=protocol.ORT_PROFILE, profile_file=path, warmup_runs=nr.PERF_TEST_WARMUP_RUNS
        )


def run_process(
    session: Session, tool: Tool, artifact: Any, settings: RunnerSettings, timeout: float
) -> RunnerResult:
    """One runner process of ``artifact`` with ``tool``, as a runner result.

    Raises RunnerError with the tool's own error when it fails, ParseError when its output is
    not the tool's, TransportError/CommandTimeoutError from the transport.
    """
    binary = session.profile.runtimes[tool.key]
    if settings.threads is None and settings.affinity:
        # docs/method.md: one thread per pinned core unless told otherwise, as the python runner
        # does
        settings = replace(settings, threads=bin(int(settings.affinity, 16)).count("1"))
    if tool is EXECUTOR_RUNNER:
        result = native_pte.run_process(session, tool, artifact, settings, timeout)
        result.rule = tool_rule(settings.method)
        return result
    model = session.artifact_path(artifact)
    if session.workdir:
        session.transport.run(["mkdir", "-p", session.workdir], timeout=60)
    version = tool_version(session, binary)
    if tool is BENCHMARK_MODEL:
        argv = benchmark_model_argv(binary, model, settings)
        inv = invoke(session, argv, timeout, settings.affinity)
        result = benchmark_model_result(tool, inv, version, settings)
        if settings.profile_runs > 0:
            argv = benchmark_model_argv(binary, model, settings, op_profiling=True)
            prof = invoke(session, argv, timeout, settings.affinity)
            cost = graph_cost_or_none(artifact.path, artifact.format, artifact.sha256)
            result.profile = benchmark_model_profile(tool, prof, cost)
    else:
        perf = _PerfTest(session, tool, binary, model, settings, timeout)
        stop, _ = rules(settings.method)
        key = f"{artifact.sha256}|{settings.threads}|{settings.affinity}|{settings.providers}"
        inv = perf.run(perf_test_runs(stop, perf.estimate_ms(key)))
        result = perf_test_result(tool, inv, version, settings)
        if settings.profile_runs > 0:
            result.profile = perf.profile(artifact)
    result.rule = tool_rule(settings.method)
    return result


__all__ = [
    "BENCHMARK_MODEL",
    "EXECUTOR_RUNNER",
    "PERF_TEST",
    "TOOLS",
    "Tool",
    "benchmark_model_argv",
    "native_tool",
    "perf_test_argv",
    "run_process",
]
