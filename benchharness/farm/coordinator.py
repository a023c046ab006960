"""Run a request's jobs on the farm: rounds of runner processes per device, rows as they arrive.

Each ``--device`` is a lane with docs/method.md's method, the same as a local run's
(``dispatch.execute.run_device``): rounds of one process per job still measuring, in a fresh
random order each; after every process the run's process rule (``opts.process_rule``: 5 up to
``--max-processes``, stopped once the interval is within ``--target-ci``) decides whether the
job needs more, and its row is rewritten with why it stopped (``process_stop``). The coordinator
keeps each job's ``JobState``; the workers only ever run one process and send its typed result
back. A job's first process goes to a bench worker's device answering to the lane's name; its
later ones are bound to that device. A lane keeps one process more in flight than it has
devices, so a device never idles for a round trip. Only ``bench worker``s of this version are
sent work (every task names the workers it may run on), never a plain Dask worker.

Faults, each with one outcome:

* a worker dies (or a device vanishes from its worker) mid-job: the job goes on on another
  device of the same ``class`` when a live worker has one, its finished processes kept and
  counted (identical devices: the row names every device that measured it); else its row fails
  naming the host, its finished processes kept for ``--resume``. A process is never in flight
  twice, and Dask's resource of the dead device is gone with it, so nothing else runs there;
* the scheduler is lost: every finished process is already on disk; the workers abort their
  runners on their own; SchedulerLostError says how to ``--resume``;
* Ctrl-C or any error of the coordinator: the processes in flight are cancelled (their workers
  abort the runners) and the run's sessions on the workers are closed, as a local run does;
* no worker serves a ``--device``: FarmError before anything is exported or sent.

Over 600 lines on purpose: the rounds, the process rule, moving a job off a lost device with its
finished processes, and the clean stop all act on the same in-flight table and lanes; the
messages, artifact cache, security and worker side already live in their own modules.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from distributed import Future

from benchharness.dispatch.execute import OpsHook
from benchharness.dispatch.reporter import NullReporter, Reporter
from benchharness.dispatch.resume import restore
from benchharness.dispatch.state import JobState, job_row, job_samples
from benchharness.dispatch.warmup import warmup_target
from benchharness.errors import FarmError, SchedulerLostError
from benchharness.farm import artifact_cache as artifacts
from benchharness.farm.client import Farm, serving
from benchharness.farm.messages import ProcessOutcome, ProcessTask, bound_resources, names_of
from benchharness.farm.worker_plugin import close_run, run_process
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import RunOptions, job_id
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.rows import process_values
from benchharness.results.store import RunStore
from benchharness.stats.intervals import ProcessRule

#: Processes in flight per lane beyond its devices: the next one already waits on the worker.
PIPELINE_EXTRA = 1
#: Seconds between looks at the farm while results are awaited: how soon a dead worker is seen.
POLL_S = 0.5
#: Times a job may move to another device of its class before its row fails.
MAX_RESTARTS = 2
#: Seconds the workers get to close a finished run's sessions (remove its work directories).
CLOSE_TIMEOUT_S = 60.0
#: The same for a run cut short (Ctrl-C, an error): its runners were aborted, so closing is quick,
#: and a user who pressed Ctrl-C is not kept waiting a minute for a worker that went quiet.
STOP_CLOSE_TIMEOUT_S = 20.0
#: Seconds to fetch a finished process's result (a few MB at most) before counting it lost.
RESULT_TIMEOUT_S = 120.0
#: The reporter line of the farm itself (artifact transfers), as "export" is the export's.
FARM_STAGE = "farm"


@dataclass
class FarmJob:
    """One lane's job: its state, and the device its processes are bound to once one ran."""

    state: JobState
    route: str
    device: str | None = None
    worker: str | None = None
    host: str = ""
    profile: DeviceProfile | None = None
    future: Future[ProcessOutcome] | None = None
    restarts: int = 0
    cooldown: dict[str, float | None] = field(default_factory=dict)
    resent: set[str] = field(default_factory=set)
    #: why the process rule says it needs no more processes ("" while it does)
    stop: str = ""
    #: every device and host its processes ran on, in order (more than one after a move)
    devices: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    #: the class of the devices its processes ran on: only those may add to them
    run_class: str | None = None

    @property
    def submitted(self) -> int:
        return len(self.state.results) + (1 if self.future is not None else 0)

    def measuring(self, rule: ProcessRule) -> bool:
        """Whether the job is to get more processes (run_device's "measuring")."""
        return not self.state.error and not self.stop and self.submitted < rule.max_processes


@dataclass
class Lane:
    """One ``--device``: its jobs in rounds, and what it has in flight."""

    target: str
    profile: DeviceProfile
    jobs: list[FarmJob]
    rng: random.Random
    round_no: int = -1
    queue: list[FarmJob] = field(default_factory=list)
    in_flight: int = 0
    error: str | None = None
    #: epoch seconds of the lane's first send and last result (the workers' clocks are epoch too)
    first_submit: float | None = None
    last_result: float | None = None
    busy_s: float = 0.0
    processes: int = 0
    #: (device, worker, t_start, t_end) of every process that ran, for the dispatch figures
    spans: list[tuple[str, str, float, float]] = field(default_factory=list)


def next_job(lane: Lane, rule: ProcessRule) -> FarmJob | None:
    """The next job of the lane's current round whose last process is back; a new round,
    shuffled, once the current one is all sent (run_device's rounds). A job leaves the rounds
    once it failed, the rule stopped it or it reached the cap; a resumed job skips the rounds its
    processes already stand for."""
    for _ in range(rule.max_processes + 2):  # each pass adds a round: never more than the cap
        lane.queue = [j for j in lane.queue if not j.state.error and not j.stop]
        for i, job in enumerate(lane.queue):
            if job.future is None:
                return lane.queue.pop(i)
        if lane.queue:
            return None  # the rest wait for their process in flight
        pending = [j for j in lane.jobs if j.measuring(rule)]
        if not pending:
            return None
        lane.round_no += 1
        lane.queue = [j for j in pending if j.submitted <= lane.round_no]
        lane.rng.shuffle(lane.queue)
    return None


class Coordinator:
    def __init__(
        self,
        farm: Farm,
        store: RunStore,
        profiles: Sequence[DeviceProfile],
        artifact_list: Sequence[Artifact],
        opts: RunOptions,
        reporter: Reporter,
        ops_hook: OpsHook | None,
    ) -> None:
        self.farm = farm
        self.store = store
        self.opts = opts
        self.reporter = reporter
        self.ops_hook = ops_hook
        self.rule = opts.process_rule
        self.artifacts = list(artifact_list)
        self.done: queue.Queue[Future[ProcessOutcome]] = queue.Queue()
        self.flying: dict[Any, tuple[Lane, FarmJob]] = {}  # by Dask key
        self.seq = 0
        self.live: dict[str, dict[str, float]] = farm.live_addresses()
        self.last_watch = time.monotonic()
        self.used_workers: set[str] = set()
        self.unwritten: dict[str, tuple[Lane, FarmJob]] = {}
        #: jobs whose row this run has written
        self.written: set[str] = set()
        self.meta: dict[str, Any] = store.meta.setdefault("farm", {})
        self.lanes = [self._lane(p) for p in profiles]

    # --- set-up ----------------------------------------------------------------------------------

    def _lane(self, profile: DeviceProfile) -> Lane:
        target = profile.name
        done = self.store.finished_job_ids()
        jobs = []
        for a in self.artifacts:
            jid = job_id(target, a, self.opts)
            if jid in done:
                continue
            state = JobState(artifact=a, job_id=jid)
            restore(self.store, state)
            if a.error:
                state.error = a.error
            job = FarmJob(state=state, route=target)
            if state.results:
                self._resumed(target, job)
            jobs.append(job)
        return Lane(target, profile, jobs, random.Random(self.opts.seed))

    def _resumed(self, target: str, job: FarmJob) -> None:
        """A resumed partial job: whether the rule wants more of it, why its operators are
        missing, and the devices its processes ran on; it goes on where they ran, else on any
        device answering to the lane's name (the same device, or one of its class)."""
        state = job.state
        row = next((r for r in self.store.runs if r.job_id == state.job_id), None)
        if not state.error:
            job.stop = self.rule.reason(process_values(state.results)) or ""
        if row is None:
            return
        if not state.ops_rows:
            state.ops_error = row.ops_error
        job.devices = [d for d in (row.worker_device or "").split(",") if d]
        job.hosts = [h for h in (row.worker_host or "").split(",") if h]
        last = job.devices[-1] if job.devices else target
        for p in self.farm.providers(target, self.live):
            if p.device.name == last:
                self._bind(job, p.device.name, p.worker.address, p.worker.host, p.device.profile)
                return
        job.run_class = next(
            (p.device.profile.device_class for p in self.farm.providers(target, self.live)), None
        )

    @staticmethod
    def _bind(job: FarmJob, device: str, worker: str, host: str, profile: DeviceProfile) -> None:
        """Bind the job's next processes to ``device``; a job whose finished processes ran on
        another class of device fails instead: they could not count together."""
        if job.state.results and job.run_class and profile.device_class != job.run_class:
            job.state.error = (
                f"FarmError: its {len(job.state.results)} finished processes ran on "
                f"{', '.join(job.devices)} (class {job.run_class}); {device} is of class "
                f"{profile.device_class}, so they cannot count together: finish it with "
                "`bench run --resume` when a device of that class serves"
            )
            return
        job.device, job.worker, job.host, job.profile = device, worker, host, profile
        job.run_class = profile.device_class
        if not job.devices or job.devices[-1] != device:
            job.devices.append(device)
        if host and (not job.hosts or job.hosts[-1] != host):
            job.hosts.append(host)

    def _sync_artifacts(self) -> None:
        """Every artifact onto every worker that may run it (a lane's name or its class)."""
        names = set()
        for lane in self.lanes:
            names.add(lane.target)
            for p in self.farm.providers(lane.target):
                names.update(names_of(p.device.profile))
        todo = [a for a in self.artifacts if not a.error]
        hosts = {a: self.farm.workers[a].host for a in serving(self.farm, names)}
        for address, host in sorted(hosts.items()):
            self.reporter.stage(FARM_STAGE, f"artifacts to {host} ({address})")
        sent = artifacts.sync(self.farm.client, sorted(hosts), todo)
        self.meta["sent_bytes"] = {a: self.meta.get("sent_bytes", {}).get(a, 0) + n
                                   for a, n in sent.items()}  # fmt: skip
        self.reporter.stage(FARM_STAGE, f"artifacts on {len(hosts)} worker(s)")

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> dict[str, str | None]:
        self.meta.update(scheduler=self.farm.address,
                         workers={a: w.host for a, w in self.farm.workers.items()})  # fmt: skip
        self.store.write_meta()
        try:
            self._sync_artifacts()
            self._loop()
        except SchedulerLostError as exc:
            self._stop(lost=True)
            raise SchedulerLostError(
                f"{exc}; every finished process is kept in {self.store.path}; when the scheduler "
                f"and its workers are back, finish with `bench run --resume {self.store.run_id}"
                f" --scheduler {self.farm.address}`"
            ) from None
        except BaseException:  # Ctrl-C, a FarmError: the runners stop, as a local run's do
            self._stop(lost=False)
            raise
        self._finish()
        self._close_runs(CLOSE_TIMEOUT_S)
        return {lane.target: lane.error for lane in self.lanes}

    def _loop(self) -> None:
        """Send, collect and watch until no lane has a process to send or in flight."""
        while True:
            for lane in self.lanes:
                self._fill(lane)
            # rows after sending: a device never waits for this disk
            self._flush_rows()
            if not self.flying:
                return
            try:
                future = self.done.get(timeout=POLL_S)
            except queue.Empty:
                future = None
            if future is not None:
                self._collect(future)
            if time.monotonic() - self.last_watch >= POLL_S:
                self._watch()

    def _stop(self, *, lost: bool) -> None:
        """A run cut short: the rows as they stand, every process in flight cancelled (its
        worker aborts the runner on the device) and the run's sessions closed on the workers;
        without a scheduler the workers abort on their own when they lose it."""
        self._flush_rows()
        self._cancel_all()
        if not lost:
            with contextlib.suppress(Exception):  # a scheduler gone meanwhile: nothing to close
                self._close_runs(STOP_CLOSE_TIMEOUT_S)

    def _fill(self, lane: Lane) -> None:
        devices = len(self.farm.providers(lane.target, self.live)) or 1
        while lane.in_flight < devices + PIPELINE_EXTRA:
            job = next_job(lane, self.rule)
            if job is None:
                return
            self._submit(lane, job)

    def _submit(self, lane: Lane, job: FarmJob) -> None:
        state, a = job.state, job.state.artifact
        if job.device is not None and job.profile is not None and job.worker is not None:
            resources, workers = bound_resources(job.profile), [job.worker]
        else:
            # only the bench workers serving the route: a plain Dask worker offering the same
            # resource is never sent a process
            workers = sorted(w for w in serving(self.farm, [job.route]) if w in self.live)
            resources = {job.route: 1.0}
            if not workers:
                self._reroute(lane, job, f"no live bench worker serves {job.route}", retry=True)
                return
        if not state.started_at:
            state.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        number = len(state.results) + 1
        task = ProcessTask(
            run_id=self.store.run_id, job_id=state.job_id, route=job.route, device=job.device,
            artifact=a, opts=self.opts,
            profile_ops=self.opts.profile_ops and not state.ops_rows and self.ops_hook is not None,
            ops_hook=self.ops_hook, process=number,
            warmup_target_n=warmup_target(state.results, self.opts.method),
        )  # fmt: skip
        self.seq += 1
        future = self.farm.client.submit(
            run_process, task, key=f"bench-process-{uuid.uuid4().hex}",
            resources=resources, workers=workers, allow_other_workers=False,
            pure=False, retries=0, priority=-self.seq,  # first sent, first run
        )  # fmt: skip
        job.future = future
        lane.in_flight += 1
        lane.first_submit = lane.first_submit or time.time()
        self.flying[future.key] = (lane, job)
        where = f" on {job.device}" if job.device and job.device != lane.target else ""
        self.reporter.stage(
            lane.target, f"{a.model} {a.format} process {number}/{self.rule.describe()}{where}"
        )
        future.add_done_callback(self.done.put)

    def _collect(self, future: Future[ProcessOutcome]) -> None:
        entry = self.flying.pop(future.key, None)
        if entry is None:
            return  # cancelled here: the job was rerouted or failed meanwhile
        lane, job = entry
        lane.in_flight -= 1
        job.future = None
        lane.last_result = time.time()
        if future.status == "cancelled":
            raise self.farm.lost("the scheduler cancelled the work in flight")
        if future.status not in ("finished", "error"):
            # "lost": its result died with its worker before it was fetched; run it again
            self._requeue(lane, job)
            return
        if future.status == "error":
            exc = future.exception()
            future.release()
            # KilledWorker: the process was on workers that died Dask's allowed-failures times
            job.state.error = f"FarmError: the process failed in Dask: {type(exc).__name__}: {exc}"
            self._write(lane, job)
            return
        try:
            outcome = future.result(timeout=RESULT_TIMEOUT_S)
        except TimeoutError:
            self._requeue(lane, job)
            return
        except Exception as exc:  # Dask's CancelledError and comm errors: the scheduler is gone
            raise self.farm.lost(f"{type(exc).__name__}: {exc}") from None
        finally:
            future.release()
        if not isinstance(outcome, ProcessOutcome):  # only a bench worker of ours answers so
            job.state.error = f"FarmError: a worker answered a process with {type(outcome)}"
            self._write(lane, job)
            return
        self.used_workers.add(outcome.worker)
        self._apply(lane, job, outcome)

    def _requeue(self, lane: Lane, job: FarmJob) -> None:
        """A process whose result never came: the job waits for the farm's next look, which
        reroutes it if its device is gone, and otherwise sends the process again."""
        self._watch()
        if not job.state.error and job.future is None and job not in lane.queue:
            lane.queue.insert(0, job)

    def _apply(self, lane: Lane, job: FarmJob, outcome: ProcessOutcome) -> None:
        state = job.state
        if state.error:
            return  # the job failed while this process was on its way
        if outcome.missing_artifact:
            if outcome.worker in job.resent:
                state.error = f"FarmError: the worker at {outcome.worker} cannot keep artifacts"
                self._write(lane, job)
                return
            job.resent.add(outcome.worker)
            self.reporter.stage(FARM_STAGE, f"artifact to {outcome.host} ({outcome.worker})")
            artifacts.send_one(self.farm.client, outcome.worker, state.artifact)
            if job not in lane.queue:
                lane.queue.insert(0, job)
            return
        if outcome.device_gone:
            said = outcome.error or f"{outcome.device} vanished from {outcome.host}"
            reason = said.removeprefix("FarmError: ")
            # at once, not at the next look: no job may be sent to it meanwhile
            self.farm.mark_gone(outcome.worker, outcome.device, reason)
            if job.device is None:
                self._reroute(lane, job, reason, retry=True)
            self._device_lost(outcome.worker, outcome.device, reason)
            return
        if job.device is None and outcome.profile is not None:
            self._bind(job, outcome.device, outcome.worker, outcome.host, outcome.profile)
            if state.error:  # its earlier processes ran on another class: this one cannot count
                self._write(lane, job)
                return
        lane.busy_s += outcome.wall_s
        lane.processes += 1
        if outcome.t_start:  # a runner process started (not a session that failed before)
            lane.spans.append((outcome.device, outcome.worker, outcome.t_start, outcome.t_end))
        if outcome.error:
            state.error = outcome.error
        elif outcome.result is not None:
            state.results.append(outcome.result)
            if outcome.ops is not None:
                state.ops_rows, state.ops_sum_ratio = outcome.ops.rows, outcome.ops.sum_ratio
                state.ops_error = outcome.ops.error
            job.stop = self.rule.reason(process_values(state.results)) or ""
        state.wall_s += outcome.wall_s
        job.cooldown = outcome.cooldown
        if outcome.cooldown_meta is not None:
            devices = self.store.meta.setdefault("devices", {})
            devices.setdefault(lane.target, {})["cooldown"] = outcome.cooldown_meta
            self.store.write_meta()
        self._write(lane, job)

    def _write(self, lane: Lane, job: FarmJob) -> None:
        """The job's row as it stands, written once the next processes are on their way."""
        self.unwritten[job.state.job_id] = (lane, job)

    def _flush_rows(self) -> None:
        while self.unwritten:
            _, (lane, job) = self.unwritten.popitem()
            self._write_now(lane, job)

    def _write_now(self, lane: Lane, job: FarmJob) -> None:
        """The row as a local run writes it (the rule's processes wanted, why it stopped), with
        where it ran: every device and host, in order, when it moved."""
        profile = replace(job.profile or lane.profile, name=lane.target)
        stopped = bool(job.stop) and not job.state.error
        wanted = self.rule.wanted(len(job.state.results), stopped)
        row = job_row(profile, job.state, self.opts, self.store.run_id, wanted)
        row = row.replace(**job.cooldown).replace(
            worker_host=",".join(job.hosts) or None,
            worker_device=",".join(job.devices) or None,
            process_stop=job.stop,
        )
        self.store.add_job(row, job.state.ops_rows, job_samples(profile, job.state))
        self.written.add(job.state.job_id)
        self.reporter.job_done(lane.target, row)

    # --- faults ----------------------------------------------------------------------------------

    def _watch(self) -> None:
        """Compare the scheduler's workers with the last look: who died, what was withdrawn."""
        self.last_watch = time.monotonic()
        live = self.farm.live_addresses()
        before, self.live = self.live, live
        for address in set(before) - set(live):
            info = self.farm.workers.get(address)
            host = info.host if info else address
            whys = {
                d.name: f"the worker on {host} ({address}) holding {d.name} died or lost its link"
                for d in (info.devices if info else [])
            }
            # all of its devices first, so none of them is picked to stand in for another
            for device, why in whys.items():
                self.farm.mark_gone(address, device, why)
            for device, why in whys.items():
                self._device_lost(address, device, why)
        for address, resources in live.items():
            info = self.farm.workers.get(address)
            if info is None:
                continue
            for d in info.devices:
                had = before.get(address, {}).get(d.name, 0)
                if not d.gone and resources.get(d.name, 0) <= 0 < had:
                    why = f"{d.name} was withdrawn by its worker on {info.host}"
                    self.farm.mark_gone(address, d.name, why)
                    self._device_lost(address, d.name, why)
        if self.farm.unknown(live):
            # a worker joined: a bench worker may serve a lane or stand in for one (what it
            # lacks of the artifacts it is sent when a process finds its cache without them);
            # a plain Dask worker is noted once and never asked again
            self.farm.refresh(strict=False)

    def _device_lost(self, worker: str, device: str, reason: str) -> None:
        """Every unfinished job bound to that device, or routed to a name nobody serves now,
        starts over on its class or fails."""
        for lane in self.lanes:
            for job in lane.jobs:
                if job.state.error or (not job.measuring(self.rule) and job.future is None):
                    continue
                bound_there = job.device == device and job.worker == worker
                stranded = job.device is None and not self.farm.providers(job.route, self.live)
                if bound_there or stranded:
                    self._reroute(lane, job, reason)

    def _reroute(self, lane: Lane, job: FarmJob, reason: str, *, retry: bool = False) -> None:
        """The job's device is gone: it goes on on another device of its class, its finished
        processes kept and counted (they ran on a device of that same class), or its row fails
        saying so."""
        if job.future is not None:
            self.flying.pop(job.future.key, None)
            lane.in_flight -= 1
            with contextlib.suppress(Exception):
                job.future.cancel()
            job.future = None
        route_class = job.run_class or (job.profile or lane.profile).device_class
        options = [n for n in (job.route if retry else None, route_class) if n]
        served = next((n for n in options if self.farm.providers(n, self.live)), None)
        st = job.state
        kept = len(st.results)
        if served is not None and job.restarts < MAX_RESTARTS:
            job.restarts += 1
            job.device = job.worker = job.profile = None
            job.route, job.cooldown = served, {}
            self.meta.setdefault("restarts", []).append(
                {"job_id": st.job_id, "reason": reason, "route": served, "kept_processes": kept,
                 "devices": list(job.devices)}
            )  # fmt: skip
            self.reporter.stage(lane.target, f"{st.artifact.model} {st.artifact.format}: "
                                f"{reason}; on to {served}, {kept} process(es) kept")  # fmt: skip
            if job not in lane.queue:
                lane.queue.insert(0, job)
            return
        where = f"; no live worker has another device of class {route_class}" if route_class else ""
        held = (
            f"its {kept} finished process(es) are kept in {self.store.path}"
            if kept
            else "no process of it had finished"
        )
        job.state.error = (
            f"FarmError: {reason}{where}; {held}: finish it with "
            f"`bench run --resume {self.store.run_id}` when the device is back"
        )
        lane.error = lane.error or job.state.error
        self._write(lane, job)

    # --- the end ---------------------------------------------------------------------------------

    def _cancel_all(self) -> None:
        futures = [job.future for _, job in self.flying.values() if job.future is not None]
        self.flying.clear()
        if futures:
            with contextlib.suppress(Exception):
                self.farm.client.cancel(futures)

    def _finish(self) -> None:
        """Rows for the jobs no process wrote (run_device's ``_write_unmeasured``: a failed
        export, a resumed job that needed no more processes), and the lanes' dispatch figures."""
        have = {r.job_id for r in self.store.runs}
        for lane in self.lanes:
            for job in lane.jobs:
                jid = job.state.job_id
                if jid in self.written or (job.state.error and jid in have):
                    continue
                if not job.state.error and not job.stop and jid not in have:
                    job.state.error = "FarmError: no worker ran it"
                if job.state.error or job.stop:
                    self._write(lane, job)
        self._flush_rows()
        self.meta["dispatch"] = {lane.target: dispatch_figures(lane) for lane in self.lanes}
        self.store.write_meta()

    def _close_runs(self, timeout_s: float) -> None:
        """Every live bench worker closes the run's sessions (aborting what still runs): the
        run's folders on the devices are removed."""
        client, run_id = self.farm.client, self.store.run_id
        futures = [
            client.submit(
                close_run, run_id, workers=[w], pure=False, key=f"bench-close-{run_id}-{w}"
            )
            for w in sorted((self.used_workers | set(self.farm.workers)) & set(self.live))
        ]
        deadline = time.monotonic() + timeout_s
        for future in futures:
            # (distributed.wait would look for a default client; this one is not the default)
            with contextlib.suppress(Exception):  # a worker gone by now keeps nothing of the run
                future.result(timeout=max(0.1, deadline - time.monotonic()))
            future.release()


def dispatch_figures(lane: Lane) -> dict[str, Any]:
    """What the farm cost a lane: processes, seconds measuring, seconds from the first send to
    the last result, the idle gaps on each device between one process and the next (the
    per-process dispatch overhead the device sees), and how long the first process took to
    start and the last result to come back (across hosts these two include clock offsets)."""
    gaps: list[float] = []
    by_device: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for device, worker, start, end in lane.spans:
        by_device.setdefault((device, worker), []).append((start, end))
    for spans in by_device.values():
        spans.sort()
        gaps += [max(0.0, b[0] - a[1]) for a, b in itertools.pairwise(spans)]
    return {
        "processes": lane.processes,
        "busy_s": round(lane.busy_s, 3),
        "span_s": round(max(0.0, (_ms(lane.last_result, lane.first_submit) or 0.0) / 1e3), 3),
        "gap_ms": [round(g * 1e3, 3) for g in gaps],
        "first_start_ms": _ms(min((s[2] for s in lane.spans), default=None), lane.first_submit),
        "last_return_ms": _ms(lane.last_result, max((s[3] for s in lane.spans), default=None)),
    }


def _ms(later: float | None, earlier: float | None) -> float | None:
    return round((later - earlier) * 1e3, 3) if later is not None and earlier is not None else None


def execute(
    farm: Farm,
    store: RunStore,
    profiles: Sequence[DeviceProfile],
    artifact_list: Sequence[Artifact],
    opts: RunOptions,
    *,
    reporter: Reporter | None = None,
    ops_hook: OpsHook | None = None,
) -> dict[str, str | None]:
    """Run every lane on the farm; returns device -> error (None when it ran to the end)."""
    if not profiles:
        raise FarmError("no devices to run on")
    coordinator = Coordinator(
        farm, store, profiles, artifact_list, opts, reporter or NullReporter(), ops_hook
    )
    return coordinator.run()
