"""Execute jobs on devices: one thread per device, one job at a time on each, in rounds.

Every device runs in its own thread with its own transport (a lock file also keeps a second
``bench`` process off the same device). Each artifact is measured in R fresh runner processes,
interleaved in a random order per round (docs/method.md), and its ``runs.csv`` row is rewritten
after every process, so an interrupted run keeps every finished process and ``--resume``
completes only what is missing. A job's first process calibrates the warm-up of its later ones
(``dispatch/warmup.py``). A job's failure (a transport error, a runner that fails or returns a
malformed result) becomes its failed row; the device's other jobs and the other devices go on.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from benchharness.dispatch.cooldown import DeviceCooldown, describe, read_temperature
from benchharness.dispatch.locks import device_lock
from benchharness.dispatch.op_profile import OpsOutcome
from benchharness.dispatch.reporter import NullReporter, Reporter
from benchharness.dispatch.resume import restore
from benchharness.dispatch.session import DeviceSession
from benchharness.dispatch.state import JobState, job_row, job_samples
from benchharness.dispatch.warmup import warmup_target
from benchharness.errors import CommandTimeoutError, HarnessError, RunnerError, TransportError
from benchharness.ondevice.protocol import RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import RunOptions, job_id
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.rows import process_values
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from benchharness.runners import native
from benchharness.runners import python as python_runner
from benchharness.runners.python import RunnerSettings
from benchharness.transport.base import Transport

#: The per-operator pass of a job: its profile joined to cost (``dispatch.ops.collect_ops``).
OpsHook = Callable[[DeviceSession, Artifact, RunnerResult], OpsOutcome]
#: Seconds between joins of the device threads: short, so Ctrl-C reaches the main thread.
JOIN_POLL_S = 0.2


def _settings(
    profile: DeviceProfile,
    artifact: Artifact,
    opts: RunOptions,
    profile_ops: bool,
    warmup_target_n: int | None = None,
) -> RunnerSettings:
    """What one runner process is asked: the run's method, its threads and pinning (else the
    profile's), and its job's calibrated warm-up count if it has one."""
    return RunnerSettings(
        fmt=artifact.format,
        method=opts.method,
        threads=opts.threads or profile.threads,
        affinity=opts.affinity or profile.affinity,
        providers=profile.providers,
        profile_runs=opts.profile_runs if profile_ops else 0,
        warmup_target_n=warmup_target_n,
    )


def run_once(
    session: DeviceSession,
    artifact: Artifact,
    opts: RunOptions,
    profile_ops: bool,
    warmup_target_n: int | None = None,
) -> RunnerResult:
    """One runner process for one artifact; transport failures retried after reconnecting.

    ``warmup_target_n``: the job's calibrated warm-up count (``dispatch.warmup.warmup_target``;
    None: the full rule). A native tool has its own warm-up and ignores it."""
    attempts = opts.retries + 1
    for attempt in range(attempts):
        try:
            settings = _settings(session.profile, artifact, opts, profile_ops, warmup_target_n)
            # a device without python runs the format's native tool (rule: runners/native.py)
            tool = native.native_tool(session.profile, artifact.format)
            if tool is not None:
                return native.run_process(session, tool, artifact, settings, opts.timeout_s)
            session.prepare()
            model_path = session.artifact_path(artifact)
            workdir = session.workdir
            if workdir:
                session.transport.run(["mkdir", "-p", workdir], timeout=60)
            argv = python_runner.runner_argv(
                session.python, session.runner_dir, model_path, settings, workdir
            )
            result = session.transport.run(argv, timeout=opts.timeout_s)
            return python_runner.parse_output(
                result.stdout, result.stderr, result.returncode, device=session.profile.name
            )
        except CommandTimeoutError:
            raise
        except TransportError:
            if attempt + 1 >= attempts or session.aborted:
                raise
            session.reconnect()
    raise AssertionError("unreachable")


def _states(
    store: RunStore,
    profile: DeviceProfile,
    artifacts: Sequence[Artifact],
    opts: RunOptions,
    lock: threading.Lock,
) -> list[JobState]:
    """The device's jobs still to finish, partial ones refilled from the store."""
    done = store.finished_job_ids()
    states: list[JobState] = []
    for a in artifacts:
        jid = job_id(profile.name, a, opts)
        if jid in done:
            continue
        state = JobState(artifact=a, job_id=jid)
        with lock:
            restore(store, state)
        if a.error:
            state.error = a.error
        states.append(state)
    return states


def _one_process(
    session: DeviceSession,
    state: JobState,
    opts: RunOptions,
    ops_hook: OpsHook | None,
    reporter: Reporter,
    stop: threading.Event,
) -> None:
    """Run one process of ``state``'s job and record what came of it in ``state``; a process
    cut short by Ctrl-C (``stop``) records nothing: the job is not failed, only unfinished."""
    a = state.artifact
    profile_ops = opts.profile_ops and not state.ops_rows and ops_hook is not None
    try:
        result = run_once(session, a, opts, profile_ops, warmup_target(state.results, opts.method))
        if not result.ok:
            raise RunnerError(result.error or "the runner failed")
        state.results.append(result)
        if profile_ops and ops_hook is not None and result.profile is not None:
            reporter.stage(session.profile.name, f"{a.model} {a.format} operator profile")
            outcome = ops_hook(session, a, result)
            state.ops_rows, state.ops_sum_ratio = outcome.rows, outcome.sum_ratio
            state.ops_error = outcome.error
    except HarnessError as exc:
        if stop.is_set():
            raise KeyboardInterrupt from exc
        state.error = f"{type(exc).__name__}: {exc}"


@dataclass
class _DeviceRun:
    """One device's part of a run: what each step of ``run_device`` works with."""

    store: RunStore
    profile: DeviceProfile
    opts: RunOptions
    reporter: Reporter
    ops_hook: OpsHook | None
    lock: threading.Lock
    stop: threading.Event
    session: DeviceSession
    cooling: DeviceCooldown
    #: job id -> why it needs no more processes
    stops: dict[str, str]
    #: jobs whose row this run has written
    written: set[str] = field(default_factory=set)


def run_device(
    store: RunStore,
    profile: DeviceProfile,
    artifacts: Sequence[Artifact],
    opts: RunOptions,
    reporter: Reporter,
    transport_factory: Callable[[DeviceProfile], Transport],
    ops_hook: OpsHook | None,
    lock: threading.Lock,
    stop: threading.Event | None = None,
    sessions: dict[str, DeviceSession] | None = None,
) -> None:
    """All jobs of one device, in rounds of shuffled order; never raises for one job's failure.

    Each round runs one process of every job still measuring, in a fresh random order; after
    each process the job's process rule (``opts.process_rule``) decides whether it needs more
    (its interval across processes is not yet within the target and the cap is not reached). A
    job that stopped drops out of later rounds, so quiet models finish early and noisy ones get
    processes; its row says why it stopped (``process_stop``) and stays ``partial`` until then.

    ``stop`` set (Ctrl-C in a run of several devices) ends it before the next process;
    ``sessions`` lets the caller reach the device's session meanwhile (to abort it).
    """
    rng = random.Random(opts.seed)
    states = _states(store, profile, artifacts, opts, lock)
    # a resumed job may need no more processes
    stops = _stopped(states, opts)
    with device_lock(profile):
        reporter.stage(profile.name, "connecting")
        session = DeviceSession(profile, store.run_id, transport_factory)
        if sessions is not None:
            sessions[profile.name] = session
        try:
            cooling = _cooldown(store, profile, session, lock)
            run = _DeviceRun(store, profile, opts, reporter, ops_hook, lock,
                             stop or threading.Event(), session, cooling, stops)  # fmt: skip
            _measure_rounds(run, states, rng)
            _write_unmeasured(run, states)
        finally:
            session.close()


def _stopped(states: Sequence[JobState], opts: RunOptions) -> dict[str, str]:
    """Job id -> why it needs no more processes, for the jobs whose restored processes do."""
    rule = opts.process_rule
    return {
        s.job_id: why
        for s in states
        if s.results and not s.error and (why := rule.reason(process_values(s.results)))
    }


def _cooldown(
    store: RunStore, profile: DeviceProfile, session: DeviceSession, lock: threading.Lock
) -> DeviceCooldown:
    """The device's cooldowns for this run, their settings recorded in run.json."""
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
    return cooling


def _measure_rounds(run: _DeviceRun, states: Sequence[JobState], rng: random.Random) -> None:
    """Rounds of one process per job still measuring, in a fresh random order each."""
    for round_no in range(run.opts.process_rule.max_processes):
        measuring = [s for s in states if not s.error and s.job_id not in run.stops]
        if not measuring:
            break
        # a resumed job skips the rounds its restored processes already stand for
        todo = [s for s in measuring if len(s.results) <= round_no]
        rng.shuffle(todo)
        for state in todo:
            if run.stop.is_set():
                raise KeyboardInterrupt
            _measure_once(run, state, round_no)


def _measure_once(run: _DeviceRun, state: JobState, round_no: int) -> None:
    """Cool down, run one process of the job, and write the job's row as it now stands."""
    profile, rule, a = run.profile, run.opts.process_rule, state.artifact
    run.cooling.before(
        state.job_id,
        lambda waited, temp, target: run.reporter.stage(
            profile.name, describe(waited, temp, target, run.cooling.limit_s)
        ),
    )
    run.reporter.stage(
        profile.name, f"{a.model} {a.format} process {round_no + 1}/{rule.describe()}"
    )
    if not state.started_at:
        state.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    _one_process(run.session, state, run.opts, run.ops_hook, run.reporter, run.stop)
    state.wall_s += time.perf_counter() - t0
    why = rule.reason(process_values(state.results))
    if why and not state.error:
        run.stops[state.job_id] = why
    wanted = rule.wanted(len(state.results), bool(why))
    row = job_row(profile, state, run.opts, run.store.run_id, wanted)
    _record(run, state, row.replace(**run.cooling.columns(state.job_id)))
    run.written.add(state.job_id)


def _write_unmeasured(run: _DeviceRun, states: Sequence[JobState]) -> None:
    """Rows of the jobs no round wrote: failed before any process, or resumed with every
    process they needed."""
    for state in states:
        if state.job_id in run.written:
            continue
        if state.error and any(r.job_id == state.job_id for r in run.store.runs):
            continue
        if state.error or state.job_id in run.stops:
            row = job_row(run.profile, state, run.opts, run.store.run_id, len(state.results))
            _record(run, state, row)


def _record(run: _DeviceRun, state: JobState, row: RunRow) -> None:
    """Store the job's row (with why it stopped), its operators and samples; show the row."""
    row = row.replace(process_stop=run.stops.get(state.job_id, ""))
    with run.lock:
        run.store.add_job(row, state.ops_rows, job_samples(run.profile, state))
    run.reporter.job_done(run.profile.name, row)


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
    stop = threading.Event()
    sessions: dict[str, DeviceSession] = {}

    def work(profile: DeviceProfile) -> None:
        try:
            run_device(
                store, profile, artifacts, opts, reporter, factory, ops_hook, lock, stop, sessions
            )
            outcome[profile.name] = None
        except HarnessError as exc:
            outcome[profile.name] = f"{type(exc).__name__}: {exc}"
            reporter.stage(profile.name, f"failed: {exc}")
            fail_remaining(store, profile, artifacts, opts, lock, outcome[profile.name] or "")
        except KeyboardInterrupt:
            outcome[profile.name] = "interrupted"

    if len(profiles) == 1:
        work(profiles[0])
        if outcome.get(profiles[0].name) == "interrupted":
            raise KeyboardInterrupt
        return outcome
    # not daemons: on Ctrl-C each device thread must still clean its device up (kill the runner
    # there, remove the run's folder) before this process exits
    threads = [threading.Thread(target=work, args=(p,), name=f"device-{p.name}") for p in profiles]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(JOIN_POLL_S)
    except KeyboardInterrupt:
        stop.set()
        for session in list(sessions.values()):
            session.abort()
        for t in threads:
            t.join()
        raise
    return outcome


def fail_remaining(
    store: RunStore,
    profile: DeviceProfile,
    artifacts: Sequence[Artifact],
    opts: RunOptions,
    lock: threading.Lock,
    error: str,
) -> None:
    """A device that could not be used at all: every job not yet finished gets a failed row."""
    with lock:
        have = {r.job_id for r in store.runs}
        for a in artifacts:
            jid = job_id(profile.name, a, opts)
            if jid not in have:
                state = JobState(artifact=a, job_id=jid, error=error)
                store.add_job(job_row(profile, state, opts, store.run_id, opts.n_processes))
