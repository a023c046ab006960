"""Plan and execute jobs: export and cost on this host, then device x artifact jobs.

Every device runs in its own thread with its own transport, one job at a time (a lock file also
keeps a second ``bench`` process off the same device). Each artifact is measured in R fresh
runner processes, interleaved in a random order per round (METHOD.md), and its ``runs.csv`` row is
rewritten after every process, so an interrupted run keeps every finished process and
``--resume`` completes only what is missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import posixpath
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from benchharness import __version__
from benchharness.cooldown import DeviceCooldown, describe, read_temperature
from benchharness.devices.profile import DeviceProfile
from benchharness.errors import (
    CommandTimeoutError,
    DeviceLockError,
    HarnessError,
    RunnerError,
    TransportError,
)
from benchharness.runners import native, python_runner
from benchharness.runners.python_runner import RunnerSettings
from benchharness.stats import Summary, ToolSummary, summarize, summarize_tool_stats
from benchharness.store import RunStore
from benchharness.transport.base import Transport

#: R of METHOD.md: fresh runner processes per artifact, so one slow phase is visible.
DEFAULT_PROCESSES = 3
#: --quick is for iteration: one process.
QUICK_PROCESSES = 1
#: Inferences of the per-operator pass (own session, after timing): a stable per-op median.
DEFAULT_PROFILE_RUNS = 50
#: Per runner process: the 120 s measuring cap + 30 s warm-up cap + load, profiling, slack.
DEFAULT_JOB_TIMEOUT_S = 400.0
#: A transport failure is retried once after reconnecting; a second failure fails the job.
DEFAULT_RETRIES = 1
#: Where device locks live: per user, shared by every bench process on this host.
LOCK_DIR = Path(os.environ.get("BENCH_LOCK_DIR", Path.home() / ".cache" / "benchharness" / "locks"))


@dataclass
class Artifact:
    """An exported (or user-given) model file and what is known of it before timing."""

    model: str
    source: str
    input_shape: str
    format: str
    precision: str
    path: Path | None
    sha256: str = ""
    max_abs_err: float | None = None
    tolerance: float | None = None
    error: str | None = None
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.model}|{self.format}|{self.precision}|{self.input_shape}"


@dataclass(frozen=True)
class RunOptions:
    formats: tuple[str, ...] = ("onnx", "tflite")
    precision: str = "fp32"
    threads: int | None = None
    affinity: str | None = None
    quick: bool = False
    processes: int | None = None
    profile_ops: bool = True
    profile_runs: int = DEFAULT_PROFILE_RUNS
    timeout_s: float = DEFAULT_JOB_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    min_n: int | None = None
    min_s: float | None = None
    max_s: float | None = None
    warmup_min_s: float | None = None
    seed: int | None = None

    @property
    def n_processes(self) -> int:
        if self.processes is not None:
            return self.processes
        return QUICK_PROCESSES if self.quick else DEFAULT_PROCESSES


class Reporter(Protocol):
    """What the dispatcher tells a display; the CLI draws it, tests record it."""

    def stage(self, device: str, text: str) -> None: ...

    def job_done(self, device: str, row: dict[str, Any]) -> None: ...


class NullReporter:
    def stage(self, device: str, text: str) -> None:
        pass

    def job_done(self, device: str, row: dict[str, Any]) -> None:
        pass


def job_id(device: str, artifact: Artifact, settings: RunOptions) -> str:
    threads = settings.threads or "auto"
    return f"{device}|{artifact.key}|t{threads}|a{settings.affinity or '-'}"


@contextlib.contextmanager
def device_lock(name: str) -> Iterator[None]:
    """Hold the device for this process; another process gets a clear DeviceLockError."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    path = LOCK_DIR / f"{name}.lock"
    fh = path.open("a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise DeviceLockError(
                f"device {name} is busy: {holder} is running on it; wait for it to finish "
                f"(or remove {path} if that process is gone)"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"bench pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


@dataclass
class _JobState:
    artifact: Artifact
    job_id: str
    results: list[dict[str, Any]] = field(default_factory=list)
    ops_rows: list[dict[str, Any]] = field(default_factory=list)
    ops_sum_ratio: float | None = None
    error: str | None = None
    started_at: str = ""
    wall_s: float = 0.0


class DeviceSession:
    """One device's transport and work directory for the length of a run."""

    def __init__(
        self,
        profile: DeviceProfile,
        run_id: str,
        transport_factory: Callable[[DeviceProfile], Transport],
    ) -> None:
        self.profile = profile
        self.factory = transport_factory
        self.transport = transport_factory(profile)
        self.local = profile.transport == "local"
        self.python = profile.runtimes.get("python") or (
            python_runner.local_python() if self.local else "python3"
        )
        self.workdir = (
            None if self.local else posixpath.join(profile.workdir or "/tmp/benchharness", run_id)
        )
        self.runner_dir = str(python_runner.RUNNER_DIR) if self.local else ""
        self.pushed: dict[str, str] = {}

    def reconnect(self) -> None:
        with contextlib.suppress(HarnessError, OSError):
            self.transport.close()
        self.transport = self.factory(self.profile)
        self.runner_dir = "" if not self.local else self.runner_dir

    def prepare(self) -> None:
        if not self.local and not self.runner_dir:
            assert self.workdir is not None
            self.runner_dir = python_runner.deploy_runner(self.transport, self.workdir)

    def artifact_path(self, artifact: Artifact) -> str:
        assert artifact.path is not None
        if self.local:
            return str(artifact.path)
        # artifacts live beside the run directories, keyed by hash, so later runs skip the push
        remote = posixpath.join(
            self.profile.workdir or "/tmp/benchharness",
            "artifacts",
            f"{artifact.sha256[:16]}.{artifact.format}",
        )
        if self.pushed.get(remote) != artifact.sha256:
            self.transport.run(["mkdir", "-p", posixpath.dirname(remote)], timeout=60)
            python_runner.push_if_changed(self.transport, artifact.path, remote, artifact.sha256)
            self.pushed[remote] = artifact.sha256
        return remote

    def close(self) -> None:
        if self.workdir:
            with contextlib.suppress(HarnessError, OSError):
                self.transport.run(["rm", "-rf", self.workdir], timeout=60)
        with contextlib.suppress(HarnessError, OSError):
            self.transport.close()


def _settings(
    profile: DeviceProfile, artifact: Artifact, opts: RunOptions, profile_ops: bool
) -> RunnerSettings:
    return RunnerSettings(
        fmt=artifact.format,
        threads=opts.threads or profile.threads,
        affinity=opts.affinity or profile.affinity,
        quick=opts.quick,
        min_n=opts.min_n,
        min_s=opts.min_s,
        max_s=opts.max_s,
        warmup_min_s=opts.warmup_min_s,
        providers=profile.providers,
        profile_runs=opts.profile_runs if profile_ops else 0,
    )


def _run_once(
    session: DeviceSession, state: _JobState, opts: RunOptions, profile_ops: bool
) -> dict[str, Any]:
    """One runner process for one artifact; transport failures retried after reconnecting."""
    attempts = opts.retries + 1
    for attempt in range(attempts):
        try:
            # a device without python runs the format's native tool (rule: runners/native.py)
            tool = native.native_tool(session.profile, state.artifact.format)
            if tool is not None:
                settings = _settings(session.profile, state.artifact, opts, profile_ops)
                return native.run_process(session, tool, state.artifact, settings, opts.timeout_s)
            session.prepare()
            model_path = session.artifact_path(state.artifact)
            settings = _settings(session.profile, state.artifact, opts, profile_ops)
            workdir = session.workdir
            if workdir:
                session.transport.run(["mkdir", "-p", workdir], timeout=60)
            argv = python_runner.runner_argv(
                session.python, session.runner_dir, model_path, settings, workdir
            )
            result = session.transport.run(argv, timeout=opts.timeout_s)
            return python_runner.parse_output(result.stdout, result.stderr, result.returncode)
        except CommandTimeoutError:
            raise
        except TransportError:
            if attempt + 1 >= attempts:
                raise
            session.reconnect()
    raise AssertionError("unreachable")


def build_row(
    profile: DeviceProfile, state: _JobState, opts: RunOptions, run_id: str, processes_wanted: int
) -> dict[str, Any]:
    a = state.artifact
    first = state.results[0] if state.results else {}
    last = state.results[-1] if state.results else {}
    row: dict[str, Any] = {
        "run_id": run_id,
        "job_id": state.job_id,
        "device": profile.name,
        "transport": profile.transport,
        "format": a.format,
        "precision": a.precision,
        "model": a.model,
        "source": a.source,
        "input_shape": a.input_shape,
        "affinity": opts.affinity or profile.affinity or "",
        "artifact_sha256": a.sha256,
        "artifact": str(a.path) if a.path else "",
        "max_abs_err": a.max_abs_err,
        "tolerance": a.tolerance,
        "harness_version": __version__,
        "started_at": state.started_at,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_s": round(state.wall_s, 3),
        **{
            k: a.cost.get(k) for k in ("macs", "flops", "params", "model_bytes", "activation_bytes")
        },
    }
    if first:
        env_s = first.get("env_start") or {}
        env_e = last.get("env_end") or {}
        row.update(
            runtime=first.get("runtime"),
            runtime_version=first.get("runtime_version"),
            provider=first.get("provider"),
            threads=first.get("threads"),
            load_ms=first.get("load_ms"),
            cpu_model=env_s.get("cpu_model"),
            governor=env_s.get("governor"),
            max_freq_mhz=env_s.get("max_freq_mhz"),
            temp_start_c=env_s.get("temp_c"),
            temp_end_c=env_e.get("temp_c"),
            loadavg_start=env_s.get("loadavg"),
        )
    if state.error or not state.results:
        row.update(status="failed", error=state.error or "no runner process finished")
        return row
    samples = [s for r in state.results for s in r["samples_ms"]]
    proc_medians = [statistics.median(r["samples_ms"]) for r in state.results if r["samples_ms"]]
    probes = [
        r["probe_after_ms"] / r["probe_before_ms"]
        for r in state.results
        if r.get("probe_before_ms") and r.get("probe_after_ms")
    ]
    temps = [(r.get("env_start") or {}).get("temp_c") for r in state.results]
    temps_end = [(r.get("env_end") or {}).get("temp_c") for r in state.results]
    thermal_rose = any(
        s is not None and e is not None and e - s > THERMAL_RISE_C
        for s, e in zip(temps, temps_end, strict=True)
    )
    tool_stats = native.tool_stats(state.results)
    summary: Summary | ToolSummary
    if tool_stats is not None:
        # a native tool printed aggregates, not samples: summarised as printed, nothing invented
        summary = summarize_tool_stats(
            tool_stats,
            warmup_n=sum(int(r.get("warmup_n") or 0) for r in state.results),
            cold_ms=first.get("cold_ms"),
            governor=row.get("governor"),
            thermal_rose=thermal_rose,
        )
        row["stats_source"] = first.get("stats_source")
    else:
        summary = summarize(
            samples,
            process_medians_ms=proc_medians if len(proc_medians) > 1 else (),
            warmup_n=sum(int(r.get("warmup_n", 0)) for r in state.results),
            cold_ms=first.get("cold_ms"),
            governor=row.get("governor"),
            throttle_ratio=max(probes) if probes else None,
            thermal_rose=thermal_rose,
            process_sizes=[len(r["samples_ms"]) for r in state.results],
        )
        row["stats_source"] = "samples"
    row.update(summary.as_row())
    macs = a.cost.get("macs")
    if macs and summary.median is not None and summary.median > 0:
        row["gmacs_per_s"] = round(macs / (summary.median / 1e3) / 1e9, 3)
    row["ops_sum_ratio"] = _ops_sum_ratio(state, summary.median)
    problems = []
    if a.max_abs_err is not None and a.tolerance is not None and a.max_abs_err > a.tolerance:
        problems.append(
            f"export disagrees with PyTorch: max_abs_err {a.max_abs_err:.3g} > tolerance "
            f"{a.tolerance:.3g}"
        )
    if not all(r.get("outputs_finite", True) for r in state.results):
        problems.append("the runtime produced non-finite outputs")
    if len(state.results) < processes_wanted:
        row.update(status="partial", error=f"{len(state.results)} of {processes_wanted} processes")
    elif problems:
        row.update(status="failed", error="; ".join(problems))
    else:
        row.update(status="ok", error="")
    return row


#: A rise of the hottest thermal zone during a model beyond this is thermal throttling territory.
THERMAL_RISE_C = 5.0


def _ops_sum_ratio(state: _JobState, median_ms: float | None) -> float | None:
    """Summed per-operator medians over the row's median: against all processes, not only the one
    the profiled pass followed, so one disturbed process does not skew it."""
    times = [_num(r.get("median_us")) for r in state.ops_rows]
    known = [t for t in times if t is not None]
    if not known or not median_ms or median_ms <= 0:
        return state.ops_sum_ratio
    return round(sum(known) / 1e3 / median_ms, 4)


def sample_rows(profile: DeviceProfile, state: _JobState) -> list[dict[str, Any]]:
    a = state.artifact
    rows = []
    for p, result in enumerate(state.results):
        for i, ms in enumerate(result["samples_ms"]):
            rows.append(
                {"device": profile.name, "model": a.model, "format": a.format,
                 "precision": a.precision, "process": p, "index": i, "latency_ms": ms}
            )  # fmt: skip
    return rows


OpsHook = Callable[[DeviceSession, _JobState, dict[str, Any]], None]


def _restore(store: RunStore, state: _JobState) -> None:
    """Rebuild a partial job's finished processes from samples.csv (for --resume)."""
    by_proc: dict[int, list[float]] = {}
    for s in store.samples:
        if s.get("job_id") == state.job_id:
            by_proc.setdefault(int(s["process"]), []).append(float(s["latency_ms"]))
    row = next((r for r in store.runs if r.get("job_id") == state.job_id), {})
    for p in sorted(by_proc):
        state.results.append(
            {"samples_ms": by_proc[p], "runtime": row.get("runtime"),
             "runtime_version": row.get("runtime_version"), "provider": row.get("provider"),
             "threads": row.get("threads"), "load_ms": _num(row.get("load_ms")),
             "cold_ms": _num(row.get("cold_ms")), "restored": True}
        )  # fmt: skip
    state.ops_rows = [
        {k: v for k, v in r.items() if k not in ("schema_version", "run_id", "job_id")}
        for r in store.ops
        if r.get("job_id") == state.job_id
    ]
    state.ops_sum_ratio = _num(row.get("ops_sum_ratio"))


def _num(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def run_device(
    store: RunStore,
    profile: DeviceProfile,
    artifacts: Sequence[Artifact],
    opts: RunOptions,
    reporter: Reporter,
    transport_factory: Callable[[DeviceProfile], Transport],
    ops_hook: OpsHook | None,
    lock: threading.Lock,
) -> None:
    """All jobs of one device, in rounds of shuffled order; never raises for one job's failure."""
    rng = random.Random(opts.seed)
    done = store.finished_job_ids()
    states: list[_JobState] = []
    for a in artifacts:
        jid = job_id(profile.name, a, opts)
        if jid in done:
            continue
        state = _JobState(artifact=a, job_id=jid)
        with lock:
            _restore(store, state)
        if a.error:
            state.error = a.error
        states.append(state)
    wanted = opts.n_processes
    with device_lock(profile.name):
        reporter.stage(profile.name, "connecting")
        session = DeviceSession(profile, store.run_id, transport_factory)
        try:
            # read through session.transport at call time: a reconnect replaces it
            cooling = DeviceCooldown(
                profile.cooldown_min_s,
                profile.cooldown_max_s,
                lambda: read_temperature(session.transport),
            )
            if cooling.enabled:
                with lock:
                    devices = store.meta.setdefault("devices", {})
                    devices.setdefault(profile.name, {})["cooldown"] = cooling.meta()
                    store.write_meta()
            for round_no in range(wanted):
                todo = [s for s in states if not s.error and len(s.results) <= round_no]
                rng.shuffle(todo)
                for state in todo:
                    a = state.artifact
                    cooling.before(
                        state.job_id,
                        lambda waited, temp, target: reporter.stage(
                            profile.name, describe(waited, temp, target, cooling.limit_s)
                        ),
                    )
                    reporter.stage(
                        profile.name,
                        f"{a.model} {a.format} process {round_no + 1}/{wanted}",
                    )
                    if not state.started_at:
                        state.started_at = datetime.now(UTC).isoformat(timespec="seconds")
                    t0 = time.perf_counter()
                    profile_ops = opts.profile_ops and not state.ops_rows and ops_hook is not None
                    try:
                        result = _run_once(session, state, opts, profile_ops)
                        if not result.get("ok"):
                            raise RunnerError(str(result.get("error", "the runner failed")))
                        state.results.append(result)
                        if profile_ops and ops_hook is not None and "profile" in result:
                            reporter.stage(profile.name, f"{a.model} {a.format} operator profile")
                            ops_hook(session, state, result)
                    except HarnessError as exc:
                        state.error = f"{type(exc).__name__}: {exc}"
                    state.wall_s += time.perf_counter() - t0
                    row = build_row(profile, state, opts, store.run_id, wanted)
                    row.update(cooling.columns(state.job_id))
                    with lock:
                        store.add_job(row, state.ops_rows, sample_rows(profile, state))
                    reporter.job_done(profile.name, row)
            for state in states:
                if state.error and not any(r.get("job_id") == state.job_id for r in store.runs):
                    row = build_row(profile, state, opts, store.run_id, wanted)
                    with lock:
                        store.add_job(row)
                    reporter.job_done(profile.name, row)
        finally:
            session.close()


def execute(
    store: RunStore,
    profiles: Sequence[DeviceProfile],
    artifacts: Sequence[Artifact],
    opts: RunOptions,
    *,
    reporter: Reporter | None = None,
    transport_factory: Callable[[DeviceProfile], Transport] | None = None,
    ops_hook: OpsHook | None = None,
) -> dict[str, str | None]:
    """Run every device concurrently; returns device -> error (None when it ran to the end)."""
    from benchharness.transport import open_transport

    reporter = reporter or NullReporter()
    factory = transport_factory or open_transport
    lock = threading.Lock()
    outcome: dict[str, str | None] = {}

    def work(profile: DeviceProfile) -> None:
        try:
            run_device(store, profile, artifacts, opts, reporter, factory, ops_hook, lock)
            outcome[profile.name] = None
        except HarnessError as exc:
            outcome[profile.name] = f"{type(exc).__name__}: {exc}"
            reporter.stage(profile.name, f"failed: {exc}")
            _fail_remaining(store, profile, artifacts, opts, lock, outcome[profile.name] or "")

    if len(profiles) == 1:
        work(profiles[0])
        return outcome
    threads = [threading.Thread(target=work, args=(p,), name=f"device-{p.name}") for p in profiles]
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)  # short joins keep Ctrl-C deliverable to the main thread
    return outcome


def _fail_remaining(
    store: RunStore,
    profile: DeviceProfile,
    artifacts: Sequence[Artifact],
    opts: RunOptions,
    lock: threading.Lock,
    error: str,
) -> None:
    """A device that could not be used at all: every job not yet finished gets a failed row."""
    with lock:
        have = {r.get("job_id") for r in store.runs}
        for a in artifacts:
            jid = job_id(profile.name, a, opts)
            if jid not in have:
                state = _JobState(artifact=a, job_id=jid, error=error)
                store.add_job(build_row(profile, state, opts, store.run_id, opts.n_processes))
