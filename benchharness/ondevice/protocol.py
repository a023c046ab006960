"""The one contract between a runner and the host: a typed, versioned result.

A runner (the python runner on a device, or the host-side driver of a native tool) hands the host
one ``RunnerResult``. The python runner prints it as a single line ``RESULT_MARKER + json``; the
host reads it back with ``decode``, which checks every field's type and range and raises
``ProtocolError`` naming the field, what was expected and what came. Everything downstream reads
these dataclasses, never a raw dict.

Shipped to devices beside the runner and imported by the host as ``benchharness.ondevice.protocol``,
so the constants both sides must agree on live here once. Standard library only, nothing from
``benchharness``; it must stay importable by the oldest Python a device may have (3.8).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

#: Bumped whenever a field changes meaning or type; a runner of another version is refused.
PROTOCOL_VERSION = 3
#: Prefix of the result line, so a runtime's own chatter on stdout cannot be mistaken for it.
RESULT_MARKER = "BENCHHARNESS_RESULT "
#: The prefix the runner gives its own temp directory, so the host can remove it after reading.
PROFILE_TMP_PREFIX = "bh-prof-"
#: Inferences of the per-operator pass: a stable per-op median, short next to timing.
DEFAULT_PROFILE_RUNS = 50
#: ``Profile.source`` of each kind of per-operator pass.
ORT_PROFILE = "ort-profiler"
LITERT_PROFILE = "litert-profiler"
BENCHMARK_MODEL_PROFILE = "benchmark_model"
#: ``Memory.source``: how the peak was read. The python runner's ``VmHWM`` after resetting it at
#: init (exact), or without the reset (``rss-delta``: a lower bound unless the inferences raised
#: the life's mark); a native tool's own printed figures.
MEM_VMHWM = "vmhwm"
MEM_RSS_DELTA = "rss-delta"
MEM_BENCHMARK_MODEL = "benchmark_model"
MEM_PERF_TEST = "onnxruntime_perf_test"
MEM_SOURCES = (MEM_VMHWM, MEM_RSS_DELTA, MEM_BENCHMARK_MODEL, MEM_PERF_TEST)
#: An ExecuTorch ETDump file on the device (the python runner's pte pass, ``executor_runner``).
ETDUMP_PROFILE = "etdump"
#: Most samples one process may return: the measuring cap of a 10 us model is far fewer after
#: the adaptive stop, and a million floats is ~20 MB of JSON; more is a runner gone wrong.
MAX_SAMPLES = 1_000_000
#: Longest list of anything else in a result (operators, profiled runs, shapes).
MAX_ITEMS = 100_000
#: Longest text field kept (error messages, tracebacks, command lines).
MAX_TEXT = 20_000
#: ``RunnerResult.warmup_mode``: what a process's warm-up was (docs/method.md, warm-up calibrated
#: once per job). The full rule (a job's first process, or every process with ``--warmup full``);
#: the calibrated count, whose check passed; or the calibrated count, whose check failed, then
#: the full rule. The host's ``Method.warmup`` asks for the first two by the same names.
WARMUP_FULL = "full"
WARMUP_CALIBRATED = "calibrated"
WARMUP_FALLBACK = "calibrated+full"
WARMUP_MODES = (WARMUP_FULL, WARMUP_CALIBRATED, WARMUP_FALLBACK)


class ProtocolError(ValueError):
    """A result that is not what the protocol says; the message names the field."""


# ------------------------------------------------------------------------------- the types


@dataclass
class Rule:
    """The stopping and warm-up rule a process ran under (the run's overrides applied)."""

    min_n: int | None = None
    min_s: float | None = None
    max_s: float | None = None
    adaptive: bool | None = None
    warmup_min_s: float | None = None
    #: the calibrated warm-up count the process was given (None: the full rule)
    warmup_target_n: int | None = None


@dataclass
class ToolStats:
    """What a native tool printed about one invocation (one process), in milliseconds.

    ``std`` is the *sample* standard deviation (n - 1); a tool that prints the population one
    (``benchmark_model``) is converted before it gets here. A field the tool did not print is None.
    """

    n: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    median: float | None = None
    p90: float | None = None
    p99: float | None = None


@dataclass
class Environment:
    """The device as the probe (``probe.py``) read it; the keys of ``probe.ENVIRONMENT_KEYS``."""

    cpu_model: str | None = None
    soc: str | None = None
    os: str | None = None
    cpus: int | None = None
    pinned: list[int] | None = None
    governor: str | None = None
    max_freq_mhz: float | None = None
    cur_freq_mhz: float | None = None
    temp_c: float | None = None
    loadavg: float | None = None
    mem_total_kb: int | None = None
    mem_available_kb: int | None = None
    #: /proc/stat's summed CPU ticks and the steal ticks among them, since boot: two probes
    #: give the share of the machine a hypervisor gave away between them (``probe.steal_share``)
    cpu_ticks: int | None = None
    steal_ticks: int | None = None
    #: the machine the measuring process runs as (``uname -m``; the python runner's own
    #: ``platform.machine()``), and what translates it when that is not the CPU's own
    #: instruction set (``qemu-user``, ``rosetta``; None: native). Both optional: a host of an
    #: older version drops them, an older runner leaves them None.
    arch: str | None = None
    emulated: str | None = None


@dataclass
class ProfiledOp:
    """One runtime operator of a per-operator profile, aligned to the graph where known.

    ``op_index`` is the graph node it ran (-1: not aligned); ``absorbed_op_indices`` the nodes
    the runtime folded into it. ``median_us`` is per inference (for ``benchmark_model`` its
    per-run average, the only figure the tool prints).
    """

    op_name: str = ""
    op_type: str = ""
    op_index: int = -1
    calls: int | None = None
    median_us: float | None = None
    absorbed_op_indices: list[int] = field(default_factory=list)


@dataclass
class Profile:
    """A per-operator pass: either ``ops`` (LiteRT, benchmark_model) or a trace file on the
    device (``profile_file``: ORT's JSON, pulled by the host); ``source`` None means it failed
    and ``error`` says why."""

    source: str | None = None
    error: str | None = None
    profile_file: str | None = None
    warmup_runs: int | None = None
    runs: int | None = None
    run_ms: list[float] = field(default_factory=list)
    ops: list[ProfiledOp] = field(default_factory=list)
    #: what the profiler adds to each recorded node's time, calibrated on the device (ORT: a
    #: chain of cheap nodes timed with and without the profiler); subtracted per call on the host
    node_cost_us: float | None = None
    #: profiled passes run to get this one (``profile_pass.PROFILE_ATTEMPTS``): a pass whose run
    #: median strays from the process's timed median is repeated; None from an older runner
    attempts: int | None = None
    #: the median run's summed operator time less the profiler's cost per recorded node, where
    #: a runtime's runs hold profiler work outside its operators (ORT: kernel events per
    #: ``model_run``), so its runs are no measure of the speed the operators ran at
    ops_ms: float | None = None

    def pass_ms(self) -> float | None:
        """The speed the pass's operators were timed at, to set against the timed median: its
        run median, or ``ops_ms`` where the runs hold the profiler's own work. None without."""
        if self.ops_ms is not None:
            return self.ops_ms
        if not self.run_ms:
            return None
        runs = sorted(self.run_ms)
        mid = len(runs) // 2
        return runs[mid] if len(runs) % 2 else (runs[mid - 1] + runs[mid]) / 2.0


@dataclass
class Memory:
    """Resident memory of the process that timed the model, in bytes (``ondevice/memory.py``).

    ``init_bytes`` / ``peak_bytes``: resident memory added by the time the session exists, and
    the high-water mark over the inferences, both above the process with its runtime loaded (the
    python runner) or above the tool's start (``benchmark_model``, its "delta from the start of
    the tool"); ``onnxruntime_perf_test`` prints only its whole process's peak, so there
    ``peak_bytes`` is that and ``baseline_bytes`` is None. ``baseline_bytes``: resident before
    the runtime loaded; ``runtime_load_bytes``: what importing the runtime's library added;
    ``tensor_bytes``: the runtime's own figure of its tensor buffers where it has one (LiteRT's
    interpreter); ``code_bytes``: the part of ``peak_bytes`` that is the runtime's own code paged
    in from its libraries (file-backed, not the model's data). ``source`` None: not read,
    ``error`` says why.
    """

    source: str | None = None
    error: str | None = None
    baseline_bytes: int | None = None
    runtime_load_bytes: int | None = None
    init_bytes: int | None = None
    peak_bytes: int | None = None
    tensor_bytes: int | None = None
    code_bytes: int | None = None
    #: time the readings took, all outside the timed region
    read_ms: float | None = None


@dataclass
class RunnerResult:
    """One runner process of one model: how it ran, its samples or the tool's statistics."""

    protocol: int = PROTOCOL_VERSION
    ok: bool = True
    error: str | None = None
    traceback: str | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    provider: str | None = None
    threads: int | None = None
    python: str | None = None
    load_ms: float | None = None
    cold_ms: float | None = None
    warmup_n: int | None = None
    warmup_s: float | None = None
    #: which warm-up ran (``WARMUP_MODES``), and, when the full rule ended it with two windows
    #: agreeing, after how many warm-up inferences (and seconds of them) the latency stayed at
    #: its final level (``method.WarmupRule.settle_point``); None from runners before them
    warmup_mode: str | None = None
    warmup_settle_n: int | None = None
    warmup_settle_s: float | None = None
    samples_ms: list[float] = field(default_factory=list)
    measure_s: float | None = None
    stop_reason: str | None = None
    rule: Rule | None = None
    outputs_finite: bool = True
    output_shapes: list[list[int]] = field(default_factory=list)
    profile: Profile | None = None
    probe_before_ms: float | None = None
    probe_after_ms: float | None = None
    env_start: Environment | None = None
    env_end: Environment | None = None
    #: ``samples`` for the python runner, the tool's key for a native tool
    stats_source: str = "samples"
    tool_stats: ToolStats | None = None
    #: the end-to-end figure a native tool's operator times are set against
    ops_reference_ms: float | None = None
    command: str | None = None
    memory: Memory | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), allow_nan=False)


# ------------------------------------------------------------------------------- validation

if TYPE_CHECKING:  # collections.abc's generics take subscripts at run time from Python 3.9 only
    Check = Callable[[Any, str], Any]


def _fail(path: str, expected: str, value: Any) -> ProtocolError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ProtocolError(f"field {path}: expected {expected}, got {shown}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, "a string", value)
    return value[:MAX_TEXT]


def integer(value: Any, path: str) -> int:
    if not _is_int(value):
        raise _fail(path, "an integer", value)
    return int(value)


def count(value: Any, path: str) -> int:
    if not _is_int(value) or value < 0:
        raise _fail(path, "a non-negative integer", value)
    return int(value)


def index(value: Any, path: str) -> int:
    if not _is_int(value) or value < -1:
        raise _fail(path, "an index (-1 for none)", value)
    return int(value)


def number(value: Any, path: str) -> float:
    if _is_int(value):
        value = float(value)
    if not isinstance(value, float) or not math.isfinite(value):
        raise _fail(path, "a finite number", value)
    return value


def duration(value: Any, path: str) -> float:
    """A time or size: finite and not negative."""
    out = number(value, path)
    if out < 0:
        raise _fail(path, "a non-negative number", value)
    return out


def flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "true or false", value)
    return value


def one_of(choices: tuple[str, ...]) -> Check:
    """A string that is one of ``choices``."""

    def inner(value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise _fail(path, "one of " + ", ".join(choices), value)
        return value

    return inner


def optional(check: Check) -> Check:
    def inner(value: Any, path: str) -> Any:
        return None if value is None else check(value, path)

    return inner


def listing(check: Check, limit: int = MAX_ITEMS) -> Check:
    def inner(value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise _fail(path, "a list", value)
        if len(value) > limit:
            raise ProtocolError(f"field {path}: {len(value)} items, more than the {limit} allowed")
        return [check(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return inner


def record(cls: type, spec: dict[str, Check]) -> Check:
    """A JSON object decoded into ``cls``: known fields checked, missing ones defaulted,
    unknown ones dropped (a runner may report more than this host reads)."""

    def inner(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in value:
                kwargs[f.name] = spec[f.name](value[f.name], f"{path}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProtocolError(f"field {path}.{f.name}: required, missing")
        return cls(**kwargs)

    return inner


_opt_text, _opt_num, _opt_dur = optional(text), optional(number), optional(duration)
_opt_count = optional(count)

_RULE = record(
    Rule,
    {"min_n": _opt_count, "min_s": _opt_dur, "max_s": _opt_dur, "adaptive": optional(flag),
     "warmup_min_s": _opt_dur, "warmup_target_n": _opt_count},
)  # fmt: skip
_TOOL_STATS = record(
    ToolStats,
    {"n": count, "mean": _opt_dur, "std": _opt_dur, "min": _opt_dur, "max": _opt_dur,
     "median": _opt_dur, "p90": _opt_dur, "p99": _opt_dur},
)  # fmt: skip
_ENVIRONMENT = record(
    Environment,
    {"cpu_model": _opt_text, "soc": _opt_text, "os": _opt_text, "cpus": _opt_count,
     "pinned": optional(listing(count)), "governor": _opt_text, "max_freq_mhz": _opt_dur,
     "cur_freq_mhz": _opt_dur, "temp_c": _opt_num, "loadavg": _opt_dur,
     "mem_total_kb": _opt_count, "mem_available_kb": _opt_count, "cpu_ticks": _opt_count,
     "steal_ticks": _opt_count, "arch": _opt_text, "emulated": _opt_text},
)  # fmt: skip
_OP = record(
    ProfiledOp,
    {"op_name": text, "op_type": text, "op_index": index, "calls": _opt_count,
     "median_us": _opt_dur, "absorbed_op_indices": listing(count)},
)  # fmt: skip
_PROFILE = record(
    Profile,
    {"source": _opt_text, "error": _opt_text, "profile_file": _opt_text,
     "warmup_runs": _opt_count, "runs": _opt_count, "run_ms": listing(duration),
     "ops": listing(_OP), "node_cost_us": _opt_dur, "attempts": _opt_count,
     "ops_ms": optional(number)},
)  # fmt: skip
_MEMORY = record(
    Memory,
    {"source": _opt_text, "error": _opt_text, "baseline_bytes": _opt_count,
     "runtime_load_bytes": _opt_count, "init_bytes": _opt_count, "peak_bytes": _opt_count,
     "tensor_bytes": _opt_count, "code_bytes": _opt_count, "read_ms": _opt_dur},
)  # fmt: skip
_RESULT = record(
    RunnerResult,
    {"protocol": integer, "ok": flag, "error": _opt_text, "traceback": _opt_text,
     "runtime": _opt_text, "runtime_version": _opt_text, "provider": _opt_text,
     "threads": _opt_count, "python": _opt_text, "load_ms": _opt_dur, "cold_ms": _opt_dur,
     "warmup_n": _opt_count, "warmup_s": _opt_dur,
     "warmup_mode": optional(one_of(WARMUP_MODES)), "warmup_settle_n": _opt_count,
     "warmup_settle_s": _opt_dur,
     "samples_ms": listing(duration, MAX_SAMPLES), "measure_s": _opt_dur,
     "stop_reason": _opt_text, "rule": optional(_RULE), "outputs_finite": flag,
     "output_shapes": listing(listing(count)), "profile": optional(_PROFILE),
     "probe_before_ms": _opt_dur, "probe_after_ms": _opt_dur,
     "env_start": optional(_ENVIRONMENT), "env_end": optional(_ENVIRONMENT),
     "stats_source": text, "tool_stats": optional(_TOOL_STATS),
     "ops_reference_ms": _opt_dur, "command": _opt_text, "memory": optional(_MEMORY)},
)  # fmt: skip


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"the result holds {name}, which is not a number JSON allows")


def from_dict(data: Any) -> RunnerResult:
    """A decoded JSON object as a checked ``RunnerResult`` (ProtocolError if it is not one)."""
    if not isinstance(data, dict):
        raise _fail("result", "an object", data)
    version = data.get("protocol")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"the runner speaks protocol {version!r}, this host {PROTOCOL_VERSION}: the device "
            "holds a runner of another benchharness version"
        )
    result: RunnerResult = _RESULT(data, "result")
    if result.ok and result.stats_source == "samples" and not result.samples_ms:
        raise ProtocolError("field result.samples_ms: expected samples of a successful run, got []")
    return result


def decode(stdout: str) -> RunnerResult | None:
    """The result line in a runner's stdout, checked; None if there is no result line.

    The last marked line wins: a runtime may print anything before it.
    """
    line = None
    for candidate in reversed(stdout.splitlines()):
        if candidate.startswith(RESULT_MARKER):
            line = candidate[len(RESULT_MARKER) :]
            break
    if line is None:
        return None
    try:
        data = json.loads(line, parse_constant=_reject_constant)
    except ValueError as exc:  # json.JSONDecodeError, or a RecursionError turned into one
        if isinstance(exc, ProtocolError):
            raise
        raise ProtocolError(f"the result is not valid JSON ({exc}): {line[:200]!r}") from None
    except RecursionError:
        raise ProtocolError("the result nests deeper than any result can") from None
    return from_dict(data)


def encode(result: RunnerResult) -> str:
    """The line the runner prints: marker, then the result as JSON (no NaN or Infinity)."""
    return RESULT_MARKER + result.to_json()
