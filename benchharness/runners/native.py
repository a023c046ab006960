"""Jobs measured by the native tools: TFLite ``benchmark_model`` and ``onnxruntime_perf_test``.

Which runner a job gets is the profile's ``runner`` field (``devices/profile.py``):

* ``auto`` (the default): the python runner when ``[runtimes] python`` is set; otherwise the
  native tool of the artifact's format (``benchmark_model`` for TFLite, ``onnxruntime_perf_test``
  for ONNX) when the profile names it; a format with neither gets a failed row that says what to
  add to the profile. A profile naming no runtime at all keeps the python runner with the default
  interpreter (this host's, or ``python3`` on a remote device), as before native tools existed.
* ``python`` / ``native``: always that runner (``native`` fails a format without its tool).

One runner process of METHOD.md is one tool invocation. Per invocation the artifact is pushed (the
hash-keyed ``DeviceSession.artifact_path``), the tool runs under ``taskset`` with the job timeout,
pinned and threaded as the python runner would be, and its output is parsed by the existing
parsers. The same shell round trip reads the device's CPU model, governors, clocks, temperature
and load average before and after the tool, for the environment columns and the THROTTLED flag.

How METHOD.md's rules map onto the tools' own flags (no tool has an adaptive stop):

* ``benchmark_model``: ``--num_runs`` = min_n, ``--min_secs`` = min_s, ``--max_secs`` = max_s
  (default 100 / 10 s / 120 s; ``--quick`` 64 / 5 s / 120 s): the tool runs at least that many
  inferences *and* at least that long and starts none after the cap, which is METHOD.md's
  minimum and cap without the CI/IQR extension. Warm-up: ``--warmup_runs`` = 10 and
  ``--warmup_min_secs`` = 1 s (METHOD.md's minimums; the tool has no window-stability test).
* ``onnxruntime_perf_test``: its ``-m times -r N`` mode fixes a count only, so a pilot of
  ``PILOT_RUNS`` inferences (once per artifact and device) estimates one inference and
  ``N = max(min_n, min_s / estimate)``, at most ``max_s / estimate``. Warm-up is the tool's
  own single untimed inference; it cannot be configured.

The tools print aggregates, not every inference: a result has ``samples_ms = []`` (samples.csv
gets nothing), ``stats_source`` names the tool and ``tool_stats`` holds what it printed
(``stats.ToolStats``); ``stats.summarize_tool_stats`` turns those into the row without inventing a
distribution. ``benchmark_model``'s median is printed by newer builds only; ORT's P50 is its
``sorted[int(n / 2)]``, not an interpolated median.

Per-operator times come from a separate invocation after timing (end-to-end numbers are never taken
with a profiler on): ``benchmark_model --enable_op_profiling=true`` (rows are the tool's per-run
*averages*, aligned to the TFLite graph as ``litert_profiler`` aligns XNNPACK operators) and
``onnxruntime_perf_test -p`` (its JSON profile is pulled back and joined by ``opsprofile``).

The tools print no version, so ``runtime_version`` is the binary's sha256 (first 16 hex digits)
and its path on the device.
"""

from __future__ import annotations

import contextlib
import math
import posixpath
import shlex
import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from benchharness.errors import DeviceProfileError, HarnessError, ParseError, RunnerError
from benchharness.importer import PERF_TEST_WARMUP_RUNS, RUNTIMES
from benchharness.runners import benchmark_model as bm
from benchharness.runners import ort_perf_test as pt
from benchharness.runners.method import DEFAULT, QUICK, WARMUP_DEFAULT, StoppingRule, WarmupRule
from benchharness.runners.python_runner import PROFILE_TMP_PREFIX, RunnerSettings, remote_sha256
from benchharness.stats import ToolStats
from benchharness.transport.base import Transport, quote_argv

if TYPE_CHECKING:
    from benchharness.cost.model import GraphCost
    from benchharness.devices.profile import DeviceProfile


#: One parsed run of either tool.
_Run = TypeVar("_Run")


@dataclass(frozen=True)
class Tool:
    """A native benchmark tool: its ``[runtimes]`` key, the format it runs, its runtime name."""

    key: str
    fmt: str
    runtime: str


BENCHMARK_MODEL = Tool("benchmark_model", "tflite", RUNTIMES["benchmark-model"])
PERF_TEST = Tool("onnxruntime_perf_test", "onnx", RUNTIMES["ort-perf-test"])
TOOLS: dict[str, Tool] = {t.fmt: t for t in (BENCHMARK_MODEL, PERF_TEST)}

#: ``profile["source"]`` of benchmark_model operator rows, for ``opsprofile.collect_ops``.
BENCHMARK_MODEL_PROFILE = "benchmark_model"
#: ``profile["source"]`` of an ORT JSON profile, the same as the python runner's.
ORT_PROFILE = "ort-profiler"
#: Inferences of perf_test's pilot: enough to estimate one inference, cheap next to min_s.
PILOT_RUNS = 10
#: How much of a tool's output a failure message quotes: the cause is in the last lines.
ERROR_TAIL_CHARS = 400
#: Hex digits of the binary's sha256 kept as its version: unique enough, short to read.
VERSION_HASH_CHARS = 16
#: benchmark_model names XNNPACK's own operators ``Delegate/<operator>:<k>``.
DELEGATE_OP_PREFIX = "Delegate/"
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
ORT_CPU = "CPUExecutionProvider"

#: Marker lines between the environment probes and the tool's output in one shell round trip.
_MARK = "@@bh-native:"
_TOOL_BEGIN = f"{_MARK}tool"
_TOOL_END = f"{_MARK}tool-end"
#: Readings outside this range (°C) are sensors that are off or report nonsense.
_PLAUSIBLE_C = (-40.0, 150.0)
#: Kernel thermal zones report millidegrees Celsius, cpufreq kHz.
_MILLI = 1000.0
#: One POSIX sh function printing what ``remote.environment()`` reads, in marked sections.
_PROBE = (
    "probe() { "
    f"echo {_MARK}cpu; "
    "grep -m1 -E '^(model name|Hardware|Processor|cpu model)' /proc/cpuinfo 2>/dev/null; "
    "getprop ro.soc.model 2>/dev/null; "
    f"echo {_MARK}cpus; "
    'for c in /sys/devices/system/cpu/cpu[0-9]*; do [ -d "$c" ] || continue; '
    'echo "${c##*/} $(cat $c/cpufreq/scaling_governor 2>/dev/null || echo -)'
    ' $(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null || echo -)"; done; '
    f"echo {_MARK}temp; cat /sys/class/thermal/thermal_zone*/temp 2>/dev/null; "
    f"echo {_MARK}load; cat /proc/loadavg 2>/dev/null; "
    "}; "
)


class Session(Protocol):
    """What of ``dispatch.DeviceSession`` this module uses."""

    profile: DeviceProfile
    transport: Transport
    local: bool
    workdir: str | None

    def artifact_path(self, artifact: Any) -> str: ...


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


def rules(settings: RunnerSettings) -> tuple[StoppingRule, WarmupRule]:
    """METHOD.md's stopping and warm-up rules with the run's overrides, as the python runner's."""
    stop = QUICK if settings.quick else DEFAULT
    changes: dict[str, Any] = {
        k: v
        for k, v in (
            ("min_n", settings.min_n),
            ("min_s", settings.min_s),
            ("max_s", settings.max_s),
        )
        if v is not None
    }
    stop = replace(stop, **changes)
    warm = WARMUP_DEFAULT
    if settings.warmup_min_s is not None:
        warm = replace(warm, min_s=settings.warmup_min_s)
    return stop, warm


def benchmark_model_argv(
    binary: str, graph: str, settings: RunnerSettings, *, op_profiling: bool = False
) -> list[str]:
    """The timing invocation, or (``op_profiling``) the per-operator one of ``profile_runs``."""
    stop, warm = rules(settings)
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
        extra=[f"--max_secs={stop.max_s:g}", f"--warmup_min_secs={warm.min_s:g}"],
    )


def perf_test_runs(stop: StoppingRule, estimate_ms: float | None) -> int:
    """``-r`` for perf_test: at least min_n and min_s worth of inferences, at most max_s worth."""
    if estimate_ms is None or estimate_ms <= 0:
        return stop.min_n
    want = max(stop.min_n, math.ceil(stop.min_s * 1000.0 / estimate_ms))
    cap = max(1, math.floor(stop.max_s * 1000.0 / estimate_ms))
    return min(want, cap)


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


@dataclass
class _Cache:
    """Per device session: binary versions and perf_test's per-inference estimates."""

    versions: dict[str, str] = field(default_factory=dict)
    estimates_ms: dict[str, float] = field(default_factory=dict)


_CACHES: weakref.WeakKeyDictionary[Any, _Cache] = weakref.WeakKeyDictionary()


def _cache(session: Session) -> _Cache:
    cache = _CACHES.get(session)
    if cache is None:
        cache = _CACHES[session] = _Cache()
    return cache


@dataclass(frozen=True)
class Invocation:
    """One tool run: its output (stdout and stderr merged in order) and the environment."""

    argv: list[str]
    output: str
    returncode: int
    env_start: dict[str, Any]
    env_end: dict[str, Any]


def _script(argv: Sequence[str]) -> str:
    return (
        f"{_PROBE}probe; echo {_TOOL_BEGIN}; {quote_argv(argv)} 2>&1; rc=$?; "
        f"echo; echo {_TOOL_END}; probe; exit $rc"
    )


def invoke(
    session: Session, argv: Sequence[str], timeout: float, affinity: str | None = None
) -> Invocation:
    """Run ``argv`` on the device between two environment probes (one round trip)."""
    result = session.transport.run(["sh", "-c", _script(argv)], timeout=timeout)
    lines = result.stdout.splitlines()
    begin = _index(lines, _TOOL_BEGIN, last=False)
    end = _index(lines, _TOOL_END, last=True)
    if begin is None:
        # the shell itself failed before the tool: report whatever it said
        output = result.stdout
        before: list[str] = []
        after: list[str] = []
    else:
        stop = end if end is not None and end > begin else len(lines)
        before, after = lines[:begin], lines[stop + 1 :]
        body = lines[begin + 1 : stop]
        if body and not body[-1].strip():
            body = body[:-1]  # the newline the script adds in case the tool printed none
        output = "\n".join(body)
    if result.stderr.strip():
        output = f"{output}\n{result.stderr}" if output else result.stderr
    return Invocation(
        argv=list(argv),
        output=output,
        returncode=result.returncode,
        env_start=parse_environment(before, affinity),
        env_end=parse_environment(after, affinity),
    )


def _index(lines: Sequence[str], marker: str, *, last: bool) -> int | None:
    hits = [i for i, line in enumerate(lines) if line.strip() == marker]
    if not hits:
        return None
    return hits[-1] if last else hits[0]


def parse_environment(lines: Sequence[str], affinity: str | None = None) -> dict[str, Any]:
    """The probe's sections as ``remote.environment()``'s keys; unreadable values are None.

    ``governor``: the distinct governors of the pinned CPUs (all CPUs when not pinned), joined by
    ``;``, so CLOCKS_UNLOCKED looks at the cores that ran the model.
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith(_MARK):
            current = sections.setdefault(line[len(_MARK) :].strip(), [])
        elif current is not None and line.strip():
            current.append(line.strip())
    if not sections:
        return {}
    cpu_model = None
    for line in sections.get("cpu", []):
        value = line.split(":", 1)[1].strip() if ":" in line else line
        if value:
            cpu_model = value
            break
    mask = int(affinity, 16) if affinity else None
    governors: list[str] = []
    freqs: list[float] = []
    for line in sections.get("cpus", []):
        parts = line.split()
        if len(parts) != 3 or not parts[0].startswith("cpu") or not parts[0][3:].isdigit():
            continue
        index = int(parts[0][3:])
        if mask is not None and not (mask >> index) & 1:
            continue
        if parts[1] != "-" and parts[1] not in governors:
            governors.append(parts[1])
        if parts[2].isdigit():
            freqs.append(int(parts[2]) / _MILLI)
    temps = []
    for line in sections.get("temp", []):
        with contextlib.suppress(ValueError):
            celsius = float(line) / _MILLI
            if _PLAUSIBLE_C[0] < celsius < _PLAUSIBLE_C[1]:
                temps.append(celsius)
    load = None
    for line in sections.get("load", [])[:1]:
        with contextlib.suppress(ValueError, IndexError):
            load = float(line.split()[0])
    return {
        "cpu_model": cpu_model,
        "governor": ";".join(governors) or None,
        "max_freq_mhz": max(freqs) if freqs else None,
        "temp_c": max(temps) if temps else None,
        "loadavg": load,
    }


def tool_version(session: Session, binary: str) -> str:
    """``sha256:<16 hex> <path>``: the tools print no version, their bytes identify them."""
    cache = _cache(session)
    if binary not in cache.versions:
        digest = None
        with contextlib.suppress(HarnessError):
            digest = remote_sha256(session.transport, binary)
        cache.versions[binary] = (
            f"sha256:{digest[:VERSION_HASH_CHARS]} {binary}"
            if digest
            else f"{binary} (no sha256sum on the device)"
        )
    return cache.versions[binary]


def _tail(text: str) -> str:
    text = text.strip()
    return ("..." + text[-ERROR_TAIL_CHARS:]) if len(text) > ERROR_TAIL_CHARS else text


def _failed(tool: Tool, inv: Invocation, reason: str | None) -> RunnerError:
    status = f"exit status {inv.returncode}"
    detail = reason or _tail(inv.output) or "no output"
    hint = ""
    if inv.returncode in (126, 127):
        hint = (
            f"; is {tool.key} pushed to the device and executable? (`bench devices check "
            "DEVICE` lists the runtimes it finds)"
        )
    return RunnerError(f"{tool.key} failed ({status}): {detail}{hint}")


def _ms(us: float | None) -> float | None:
    return us / 1000.0 if us is not None else None


def _sample_std(population_std: float | None, n: int) -> float | None:
    """benchmark_model prints the population std; the rows carry the sample one (n - 1)."""
    if population_std is None or n < 2:
        return None
    return population_std * math.sqrt(n / (n - 1))


def _parsed(tool: Tool, inv: Invocation, parse: Callable[[str], list[_Run]]) -> list[_Run]:
    """The tool's runs; unreadable output is the tool's failure when it exited non-zero."""
    try:
        return parse(inv.output)
    except ParseError as exc:
        if inv.returncode != 0:
            raise _failed(tool, inv, None) from exc
        raise ParseError(f"{tool.key}'s output cannot be read: {exc}") from exc


# -- benchmark_model


def _benchmark_model_run(tool: Tool, inv: Invocation) -> bm.BenchmarkModelRun:
    runs = _parsed(tool, inv, bm.parse_benchmark_model)
    run = runs[-1]
    for earlier in runs[:-1]:
        if earlier.failed:
            run = earlier  # one invocation, one run: an earlier failed part is the cause
    if run.failed or inv.returncode != 0:
        raise _failed(tool, inv, run.error)
    return run


def benchmark_model_stats(run: bm.BenchmarkModelRun) -> ToolStats:
    """The regular runs' statistics as printed (µs -> ms), or ParseError if no count was."""
    stats = run.regular.resolved() if run.regular is not None else None
    if stats is not None and stats.count > 0:
        return ToolStats(
            n=stats.count,
            mean=_ms(stats.avg_us),
            std=_ms(_sample_std(stats.std_us, stats.count)),
            min=_ms(stats.min_us),
            max=_ms(stats.max_us),
            median=_ms(stats.median_us),
        )
    litert = run.litert
    if litert is not None and litert.inference_runs:
        return ToolStats(
            n=litert.inference_runs,
            mean=litert.inference_avg_ms,
            std=_sample_std(litert.inference_std_ms, litert.inference_runs),
            min=litert.inference_min_ms,
            max=litert.inference_max_ms,
        )
    raise ParseError(
        "benchmark_model printed no count of its regular runs (no `count=...` line after the "
        "second `Running benchmark for at least ...`)"
    )


def benchmark_model_result(
    tool: Tool, inv: Invocation, version: str, settings: RunnerSettings
) -> dict[str, Any]:
    """The python runner's result dict from one timing invocation (samples_ms empty)."""
    run = _benchmark_model_run(tool, inv)
    stats = benchmark_model_stats(run)
    summary = run.summary
    warmup = run.warmup.resolved() if run.warmup is not None else None
    load_ms = run.init_ms
    if load_ms is None and summary is not None:
        load_ms = _ms(summary.init_us)
    cold_ms = _ms(summary.first_inference_us) if summary is not None else None
    if cold_ms is None and warmup is not None:
        cold_ms = _ms(warmup.first_us)
    delegates = dict.fromkeys(d.delegate for d in run.delegations)
    return _result(
        tool,
        inv,
        version,
        stats,
        provider="+".join(delegates),
        threads=run.threads or settings.threads,
        load_ms=load_ms,
        cold_ms=cold_ms,
        warmup_n=warmup.count if warmup is not None else None,
        # op rows are averages per run: set against the mean
        ops_reference_ms=stats.mean,
    )


def benchmark_model_profile(tool: Tool, inv: Invocation) -> dict[str, Any]:
    """The per-operator invocation's rows for ``opsprofile`` (``source`` None on failure)."""
    try:
        run = _benchmark_model_run(tool, inv)
    except (RunnerError, ParseError) as exc:
        return {"source": None, "error": f"{type(exc).__name__}: {exc}"}
    ops = run.op_times()
    if not ops:
        return {"source": None, "error": "benchmark_model printed no operator table"}
    block = run.regular_profile
    runs = block.timings.count if block is not None and block.timings is not None else None
    return {"source": BENCHMARK_MODEL_PROFILE, "ops": [asdict(op) for op in ops], "runs": runs}


# -- onnxruntime_perf_test


def _perf_test_run(tool: Tool, inv: Invocation) -> pt.OrtPerfRun:
    runs = _parsed(tool, inv, pt.parse_ort_perf_test)
    failed = next((r for r in runs if r.failed), None)
    run = failed or runs[-1]
    if run.failed or inv.returncode != 0:
        raise _failed(tool, inv, run.error)
    return run


def perf_test_stats(run: pt.OrtPerfRun) -> ToolStats:
    n = run.n
    if n is None or n < 1:
        raise ParseError(
            "onnxruntime_perf_test printed no count of its runs (no `Total inference requests`)"
        )
    mean = run.average_ms
    if mean is None and run.total_inference_s is not None:
        mean = run.total_inference_s * 1000.0 / n
    return ToolStats(
        n=n,
        mean=mean,
        min=run.latency_ms("min"),
        max=run.latency_ms("max"),
        median=run.latency_ms("p50"),
        p90=run.latency_ms("p90"),
        p99=run.latency_ms("p99"),
    )


def perf_test_result(
    tool: Tool, inv: Invocation, version: str, settings: RunnerSettings
) -> dict[str, Any]:
    run = _perf_test_run(tool, inv)
    stats = perf_test_stats(run)
    asked = [p for p in settings.providers if p != ORT_CPU]
    return _result(
        tool,
        inv,
        version,
        stats,
        provider=run.provider or (asked[0] if asked else ORT_CPU),
        threads=run.intra_op_threads or settings.threads,
        load_ms=run.session_creation_s * 1000.0 if run.session_creation_s is not None else None,
        cold_ms=run.first_inference_ms,
        warmup_n=PERF_TEST_WARMUP_RUNS,
        # the profile's op medians are set against the timed median
        ops_reference_ms=stats.median if stats.median is not None else stats.mean,
    )


def _result(
    tool: Tool,
    inv: Invocation,
    version: str,
    stats: ToolStats,
    *,
    provider: str,
    threads: int | None,
    load_ms: float | None,
    cold_ms: float | None,
    warmup_n: int | None,
    ops_reference_ms: float | None,
) -> dict[str, Any]:
    return {
        "ok": True,
        "runtime": tool.runtime,
        "runtime_version": version,
        "provider": provider,
        "threads": threads,
        "load_ms": load_ms,
        "cold_ms": cold_ms,
        "warmup_n": warmup_n,
        "samples_ms": [],  # the tool prints aggregates only; nothing goes to samples.csv
        "stats_source": tool.key,
        "tool_stats": asdict(stats),
        "ops_reference_ms": ops_reference_ms,
        "command": quote_argv(inv.argv),
        "env_start": inv.env_start,
        "env_end": inv.env_end,
    }


def _perf_test_estimate(
    session: Session,
    tool: Tool,
    binary: str,
    model: str,
    settings: RunnerSettings,
    timeout: float,
    key: str,
) -> float | None:
    """One inference's ms from a short pilot run, cached per artifact and settings."""
    cache = _cache(session)
    if key not in cache.estimates_ms:
        argv = perf_test_argv(binary, model, settings, PILOT_RUNS)
        inv = invoke(session, argv, timeout, settings.affinity)
        stats = perf_test_stats(_perf_test_run(tool, inv))
        estimate = stats.median if stats.median is not None else stats.mean
        if estimate is None:
            return None
        cache.estimates_ms[key] = estimate
    return cache.estimates_ms[key]


def _profile_prefix(session: Session, artifact: Any) -> str:
    name = f"ort-{artifact.sha256[:12] or 'model'}"
    if session.workdir:
        return posixpath.join(session.workdir, name)
    # this host without a work directory: a private temp directory opsprofile removes after use
    return posixpath.join(tempfile.mkdtemp(prefix=PROFILE_TMP_PREFIX), name)


def _find_profile(session: Session, prefix: str) -> str | None:
    listed = session.transport.run(
        ["sh", "-c", f"ls -1t {shlex.quote(prefix)}_*.json 2>/dev/null"], timeout=60
    )
    files = [line.strip() for line in listed.stdout.splitlines() if line.strip()]
    return files[0] if files else None


def perf_test_profile(
    session: Session,
    tool: Tool,
    binary: str,
    model: str,
    settings: RunnerSettings,
    timeout: float,
    artifact: Any,
) -> dict[str, Any]:
    prefix = _profile_prefix(session, artifact)
    argv = perf_test_argv(binary, model, settings, settings.profile_runs, profile_prefix=prefix)
    inv = invoke(session, argv, timeout, settings.affinity)
    error = None
    try:
        _perf_test_run(tool, inv)
    except (RunnerError, ParseError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    path = _find_profile(session, prefix) if error is None else None
    if path is None:
        if not session.workdir:  # nothing for opsprofile to fetch: drop the private temp dir
            shutil.rmtree(posixpath.dirname(prefix), ignore_errors=True)
        return {"source": None, "error": error or f"perf_test -p wrote no {prefix}_*.json"}
    # the tool's warm-up inference is profiled too; opsprofile leaves it out
    return {"source": ORT_PROFILE, "profile_file": path, "warmup_runs": PERF_TEST_WARMUP_RUNS}


def run_process(
    session: Session, tool: Tool, artifact: Any, settings: RunnerSettings, timeout: float
) -> dict[str, Any]:
    """One runner process of ``artifact`` with ``tool``: the python runner's result dict.

    Raises RunnerError with the tool's own error when it fails, ParseError when its output is
    not the tool's, TransportError/CommandTimeoutError from the transport.
    """
    binary = session.profile.runtimes[tool.key]
    if settings.threads is None and settings.affinity:
        # METHOD.md: one thread per pinned core unless told otherwise, as the python runner does
        settings = replace(settings, threads=bin(int(settings.affinity, 16)).count("1"))
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
            result["profile"] = benchmark_model_profile(tool, prof)
    else:
        stop, _ = rules(settings)
        key = f"{artifact.sha256}|{settings.threads}|{settings.affinity}|{settings.providers}"
        estimate = _perf_test_estimate(session, tool, binary, model, settings, timeout, key)
        argv = perf_test_argv(binary, model, settings, perf_test_runs(stop, estimate))
        inv = invoke(session, argv, timeout, settings.affinity)
        result = perf_test_result(tool, inv, version, settings)
        if settings.profile_runs > 0:
            result["profile"] = perf_test_profile(
                session, tool, binary, model, settings, timeout, artifact
            )
    stop, warm = rules(settings)
    result["rule"] = {"min_n": stop.min_n, "min_s": stop.min_s, "max_s": stop.max_s,
                      "adaptive": False, "warmup_min_s": warm.min_s}  # fmt: skip
    return result


# ------------------------------------------------------------------------------- host side


def tool_stats(results: Sequence[Mapping[str, Any]]) -> list[ToolStats] | None:
    """The tool statistics of a job's processes when a native tool measured them, else None."""
    if not results or not all(r.get("tool_stats") for r in results):
        return None
    return [ToolStats(**r["tool_stats"]) for r in results]


def align_benchmark_model_ops(
    ops: Sequence[Mapping[str, Any]], cost: GraphCost | None
) -> list[dict[str, Any]]:
    """benchmark_model's operator rows, shaped for ``opsprofile.litert_rows``.

    Rows of TFLite kernels name their node (``[tensor]:N`` with the graph's op type at N): exact.
    XNNPACK's own operators (``Delegate/<op>:<k>``, ``k`` its index inside the delegate) are
    aligned to the delegated nodes (those no kernel row claimed) by ``litert_profiler``'s
    monotone alignment; nodes it folded away are absorbed into a neighbour. A single delegate
    partition row (older builds, GPU/NNAPI delegates) absorbs every delegated node; with several
    partitions nothing can be told apart and their cost stays in rows of its own. Runtime rows
    (``LiteRT::Run[...]``) carry time and no cost. ``median_us`` holds the tool's per-run average.
    """
    types = {op.op_index: op.op_type for op in cost.ops} if cost is not None else {}
    kinds: list[str] = []
    exact: set[int] = set()
    for op in ops:
        name, node = str(op.get("op_name", "")), op.get("node_index")
        if name.startswith(DELEGATE_OP_PREFIX):
            kinds.append("xnnpack")
        elif node is not None and types.get(node) == op.get("op_type") and node not in exact:
            kinds.append("node")
            exact.add(node)
        elif "Delegate" in str(op.get("op_type", "")):
            kinds.append("partition")
        else:
            kinds.append("other")
    delegated = [i for i in sorted(types) if i not in exact]
    xnn = [k for k, kind in enumerate(kinds) if kind == "xnnpack"]
    partitions = [k for k, kind in enumerate(kinds) if kind == "partition"]
    assignment: list[int] | None = None
    absorbed: dict[int, list[int]] = {}
    if xnn and delegated:
        from benchharness.runners.litert_profiler import _absorbed, align_xnnpack_ops

        delegated_types = [types[i] for i in delegated]
        assignment = align_xnnpack_ops([str(ops[k]["op_type"]) for k in xnn], delegated_types)
        absorbed = _absorbed(assignment, delegated_types) if assignment else {}
    rank = {k: r for r, k in enumerate(xnn)}
    rows: list[dict[str, Any]] = []
    for k, op in enumerate(ops):
        row: dict[str, Any] = {
            "op_name": op.get("op_name", ""),
            "op_type": op.get("op_type", ""),
            "calls": op.get("calls"),
            "median_us": op.get("per_run_us"),
            "op_index": -1,
            "absorbed_op_indices": [],
        }
        if kinds[k] == "node":
            row["op_index"] = op["node_index"]
        elif kinds[k] == "xnnpack" and assignment is not None:
            r = rank[k]
            row["op_index"] = delegated[assignment[r]]
            row["absorbed_op_indices"] = [delegated[p] for p in absorbed.get(r, [])]
        elif kinds[k] == "partition" and len(partitions) == 1 and not xnn:
            row["absorbed_op_indices"] = list(delegated)
        rows.append(row)
    return rows


__all__ = [
    "BENCHMARK_MODEL",
    "PERF_TEST",
    "TOOLS",
    "Tool",
    "align_benchmark_model_ops",
    "benchmark_model_argv",
    "native_tool",
    "perf_test_argv",
    "perf_test_runs",
    "run_process",
    "tool_stats",
]
