"""The worker side of the farm: a Dask worker plugin that owns this host's devices, and the task
functions the coordinator sends (one runner process, the cache check, the end of a run).

A process runs through the same machinery as ``bench run`` on one machine: the device's
``DeviceSession`` (kept for the whole run, so the runner and each artifact are pushed once),
``dispatch.execute.run_once`` and the per-operator pass, with the ORT trace fetched here where
it lives. Every device has a lock of its own, so two processes never share a device, whatever
resource the scheduler granted them; the file lock of ``dispatch.locks`` is held by
``bench worker`` for its whole life, so a ``bench run`` on this host cannot take the device either.

Stops are the local run's: a process whose task is cancelled (the coordinator's Ctrl-C, a farm
error, a coordinator gone), a scheduler lost and a worker stopped all abort the runner on the
device (``DeviceSession.abort``) and close the session, which removes the run's folder there.
What the coordinator is told about this worker is plain data (``farm/descriptions.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from distributed import WorkerPlugin, get_worker

from benchharness import __version__
from benchharness.dispatch.cooldown import DeviceCooldown, read_temperature
from benchharness.dispatch.execute import run_once
from benchharness.dispatch.inspect import check_device
from benchharness.dispatch.op_profile import OpsOutcome, collect_ops
from benchharness.dispatch.session import DeviceSession
from benchharness.errors import (
    CommandTimeoutError,
    FarmError,
    HarnessError,
    RunnerError,
    TransportError,
)
from benchharness.farm import artifact_cache as artifacts
from benchharness.farm.descriptions import worker_payload
from benchharness.farm.messages import (
    DeviceStatus,
    ProcessOutcome,
    ProcessTask,
    WorkerInfo,
    names_of,
)
from benchharness.ondevice.protocol import PROTOCOL_VERSION, RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.transport.base import Transport

#: The name the plugin is registered under on its Dask worker.
PLUGIN_NAME = "benchharness-farm"
#: Seconds the worker waits for the scheduler to take a withdrawn device off its books.
WITHDRAW_TIMEOUT_S = 30.0
#: The key prefix of a runner process's task (the coordinator names them so).
PROCESS_KEY_PREFIX = "bench-process-"
#: Task states that mean a running process is no longer wanted: cancelled by its client (or
#: its client gone), or released by the scheduler.
UNWANTED = ("cancelled", "released", "forgotten")

TransportFactory = Callable[[DeviceProfile], Transport]


class DeviceSlot:
    """One device of this worker: its lock, its sessions per run and what it is doing."""

    def __init__(self, profile: DeviceProfile, summary: str = "") -> None:
        self.profile = profile
        self.summary = summary
        self.lock = threading.Lock()
        self.sessions: dict[str, DeviceSession] = {}
        self.cooling: dict[str, DeviceCooldown] = {}
        self.busy: str | None = None
        self.gone: str | None = None
        #: the Dask key of the process measuring now, and its run
        self.key: str | None = None
        self.run_id: str | None = None

    @property
    def name(self) -> str:
        return self.profile.name

    def close_run(self, run_id: str) -> None:
        session = self.sessions.pop(run_id, None)
        self.cooling.pop(run_id, None)
        if session is not None:
            session.close()

    def close_all(self) -> None:
        for run_id in list(self.sessions):
            self.close_run(run_id)

    def abort(self, run_id: str | None = None) -> None:
        """From any thread: kill the runner of ``run_id`` (every run when None) on the device;
        the measuring thread then closes the session (``close_aborted``)."""
        for rid, session in list(self.sessions.items()):
            if run_id is None or rid == run_id:
                session.abort()

    def close_aborted(self) -> None:
        """Close the sessions an abort ended (call with the lock held): the run's folder goes,
        and a later process of the run starts a fresh session."""
        for run_id, session in list(self.sessions.items()):
            if session.aborted:
                self.close_run(run_id)


class FarmPlugin(WorkerPlugin):
    """The devices of one ``bench worker``, kept across reconnections to the scheduler."""

    name = PLUGIN_NAME

    def __init__(
        self,
        profiles: Sequence[DeviceProfile],
        summaries: dict[str, str] | None = None,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        from benchharness.transport import open_transport

        summaries = summaries or {}
        self.slots = {p.name: DeviceSlot(p, summaries.get(p.name, "")) for p in profiles}
        self.factory = transport_factory or open_transport
        self.host = socket.gethostname()
        self.worker: Any = None

    # --- Dask's plugin hooks -------------------------------------------------------------------

    def setup(self, worker: Any) -> None:
        self.worker = worker

    def teardown(self, worker: Any) -> None:
        """The Dask worker is closing (stopped, or its scheduler lost): its runners stop now,
        not when their processes would have ended."""
        self.worker = None
        self.abort_all()

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        """A runner process whose task is no longer wanted is aborted on its device."""
        if start != "executing" or finish not in UNWANTED:
            return
        if not str(key).startswith(PROCESS_KEY_PREFIX):
            return
        for slot in self.slots.values():
            if slot.key == str(key) and slot.run_id is not None:
                # off the event loop: closing a transport may wait on the network
                threading.Thread(target=slot.abort, args=(slot.run_id,), daemon=True).start()

    # --- what this worker offers ---------------------------------------------------------------

    def resources(self) -> dict[str, float]:
        """Per name, the devices still serving that answer to it (0 for a withdrawn one)."""
        out: dict[str, float] = {}
        for slot in self.slots.values():
            for name in names_of(slot.profile):
                out[name] = out.get(name, 0.0) + (0.0 if slot.gone else 1.0)
        return out

    def describe(self, address: str) -> WorkerInfo:
        """This worker's description (sent as plain data: ``describe_worker``)."""
        name = getattr(self.worker, "name", None)
        return WorkerInfo(
            address=address,
            name=str(name) if name is not None and name != address else "",
            host=self.host,
            harness_version=__version__,
            protocol_version=PROTOCOL_VERSION,
            devices=[
                DeviceStatus(profile=s.profile, busy=s.busy, gone=s.gone, summary=s.summary)
                for s in self.slots.values()
            ],
        )

    def pick(self, route: str) -> DeviceSlot | None:
        """A device answering to ``route``: a free one if any (the scheduler's resource counts
        make one free almost always), else the first, whose lock the process then waits for."""
        members = [s for s in self.slots.values() if route in names_of(s.profile) and not s.gone]
        for slot in members:
            if not slot.lock.locked():
                return slot
        return members[0] if members else None

    # --- one runner process --------------------------------------------------------------------

    def run(self, task: ProcessTask) -> ProcessOutcome:
        address = self.worker.address if self.worker is not None else ""
        slot = self.slots.get(task.device) if task.device else self.pick(task.route)
        if slot is None:
            wanted = task.device or task.route
            return ProcessOutcome(
                job_id=task.job_id, device=wanted, host=self.host, worker=address,
                error=f"FarmError: the worker on {self.host} has no device {wanted} serving",
                device_gone=True,
            )  # fmt: skip
        with slot.lock:
            outcome = ProcessOutcome(
                job_id=task.job_id, device=slot.name, host=self.host, worker=address,
                profile=slot.profile,
            )  # fmt: skip
            if slot.gone:
                outcome.error, outcome.device_gone = f"FarmError: {slot.gone}", True
                return outcome
            a = task.artifact
            with artifacts.pinned(a.sha256):
                path = artifacts.present(a.sha256, a.format)
                if path is None:
                    outcome.missing_artifact = True
                    return outcome
                slot.busy = f"{a.model} {a.format} process {task.process}"
                slot.key, slot.run_id = _current_key(self.worker), task.run_id
                try:
                    self._measure(slot, task, replace(a, path=path), outcome)
                finally:
                    slot.busy = slot.key = slot.run_id = None
                    with contextlib.suppress(HarnessError, OSError):
                        slot.close_aborted()
            return outcome

    def _session(self, slot: DeviceSlot, run_id: str) -> tuple[DeviceSession, DeviceCooldown]:
        session = slot.sessions.get(run_id)
        if session is not None and session.aborted:
            slot.close_run(run_id)  # a stop ended it (a lost scheduler): this run goes on anew
            session = None
        if session is None:
            session = slot.sessions[run_id] = DeviceSession(slot.profile, run_id, self.factory)
        cooling = slot.cooling.get(run_id)
        if cooling is None:
            p = slot.profile
            # read through session.transport at call time: a reconnect replaces it
            cooling = slot.cooling[run_id] = DeviceCooldown(
                p.cooldown_min_s, p.cooldown_max_s, lambda: read_temperature(session.transport)
            )
        return session, cooling

    def _measure(
        self, slot: DeviceSlot, task: ProcessTask, artifact: Artifact, outcome: ProcessOutcome
    ) -> None:
        t0 = time.perf_counter()
        outcome.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        session: DeviceSession | None = None
        try:
            session, cooling = self._session(slot, task.run_id)
            cooling.before(task.job_id)
            if cooling.enabled:
                outcome.cooldown_meta = cooling.meta()
            outcome.cooldown = cooling.columns(task.job_id)
            t0, outcome.t_start = time.perf_counter(), time.time()
            result = run_once(
                session, artifact, task.opts, task.profile_ops, task.warmup_target_n
            )
            if not result.ok:
                raise RunnerError(result.error or "the runner failed")
            outcome.result = result
            if task.profile_ops:
                outcome.ops = self._ops(session, artifact, result, task)
        except CommandTimeoutError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        except TransportError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            if session is not None and session.aborted:
                outcome.error = f"FarmError: the process was stopped on {slot.name} ({exc})"
                return self._timed(outcome, t0)
            # run_once has reconnected once already: is the device there at all?
            if session is None or not self._reachable(slot, session):
                self.withdraw(slot, f"{slot.name} vanished from the worker on {self.host}: {exc}")
                outcome.error, outcome.device_gone = f"FarmError: {slot.gone}", True
        except HarnessError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        self._timed(outcome, t0)

    @staticmethod
    def _timed(outcome: ProcessOutcome, t0: float) -> None:
        outcome.wall_s = time.perf_counter() - t0
        outcome.t_end = outcome.t_start + outcome.wall_s if outcome.t_start else time.time()

    @staticmethod
    def _ops(
        session: DeviceSession, artifact: Artifact, result: RunnerResult, task: ProcessTask
    ) -> OpsOutcome:
        """The per-operator pass; whatever stops it is the row's ``ops_error``, never lost."""
        if result.profile is None:
            return OpsOutcome(error="the runner returned no operator profile")
        hook = task.ops_hook or collect_ops
        try:
            return hook(session, artifact, result)
        except (HarnessError, OSError, ValueError, KeyError) as exc:
            return OpsOutcome(error=f"{type(exc).__name__}: {exc}")

    def _reachable(self, slot: DeviceSlot, session: DeviceSession) -> bool:
        with contextlib.suppress(HarnessError, OSError):
            session.reconnect()
            return check_device(slot.profile, session.transport).reachable
        return False

    def withdraw(self, slot: DeviceSlot, reason: str) -> None:
        """Take a vanished device off the farm: the scheduler sends it nothing more."""
        slot.gone = reason
        with contextlib.suppress(HarnessError, OSError):
            slot.close_all()
        worker = self.worker
        if worker is None:
            return
        coro = worker.set_resources(**self.resources())
        with contextlib.suppress(Exception):  # a worker closing meanwhile: nothing to tell
            asyncio.run_coroutine_threadsafe(coro, worker.loop.asyncio_loop).result(
                WITHDRAW_TIMEOUT_S
            )

    def close_run(self, run_id: str) -> None:
        """The run is over (finished, interrupted or failed): its runners stop and its
        sessions close."""
        for slot in self.slots.values():
            slot.abort(run_id)
        for slot in self.slots.values():
            with slot.lock, contextlib.suppress(HarnessError, OSError):
                slot.close_run(run_id)

    def abort_all(self) -> None:
        """Every runner of every run stops now (from any thread, without waiting)."""
        for slot in self.slots.values():
            with contextlib.suppress(HarnessError, OSError):
                slot.abort()

    def close_all(self) -> None:
        self.abort_all()
        for slot in self.slots.values():
            with slot.lock, contextlib.suppress(HarnessError, OSError):
                slot.close_all()


# --- the functions the coordinator sends (imported by name on the worker) ----------------------


def _plugin(worker: Any) -> FarmPlugin:
    plugin = worker.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, FarmPlugin):
        raise FarmError(f"the Dask worker at {worker.address} is not a `bench worker`")
    return plugin


def run_process(task: ProcessTask) -> ProcessOutcome:
    """A task: one runner process of one job on a device of this worker."""
    return _plugin(get_worker()).run(task)


def close_run(run_id: str) -> None:
    """A task: the run is over, so its sessions close (their work directories are removed)."""
    _plugin(get_worker()).close_run(run_id)


def describe_worker(dask_worker: Any) -> dict[str, Any] | None:
    """Run by ``Client.run`` on each marked worker: what it holds, as plain data."""
    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, FarmPlugin):
        return None
    return worker_payload(plugin.describe(dask_worker.address))


def _current_key(worker: Any) -> str | None:
    """The Dask key of the task this thread runs (None outside a task)."""
    with contextlib.suppress(Exception):  # not in a task: nothing can cancel it
        return str(worker.get_current_task())
    return None
