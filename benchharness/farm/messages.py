"""The tasks and outcomes the coordinator and its bench workers exchange (pickled by Dask, so
only between members of the farm: ``farm/security.py``), and resource names. What a worker says
about itself is plain data instead (``farm/descriptions.py``): it is read before the worker is
known to be one of ours.

A device answers to its profile name and to its optional ``class``; each name is a Dask worker
resource whose amount on a worker is the number of that worker's devices answering to it. A
process of a job bound to a device takes one unit of every name the device answers to, so
class-routed processes on the same worker never outnumber its free devices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from benchharness.dispatch.execute import OpsHook
from benchharness.dispatch.op_profile import OpsOutcome
from benchharness.ondevice.protocol import RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import RunOptions
from benchharness.profiles.device_profile import DeviceProfile


def names_of(profile: DeviceProfile) -> tuple[str, ...]:
    """The resource names a device answers to: its profile name, then its class."""
    if profile.device_class and profile.device_class != profile.name:
        return (profile.name, profile.device_class)
    return (profile.name,)


def worker_resources(profiles: Iterable[DeviceProfile]) -> dict[str, float]:
    """What a worker advertises: per name, how many of its devices answer to it."""
    out: dict[str, float] = {}
    for p in profiles:
        for name in names_of(p):
            out[name] = out.get(name, 0.0) + 1.0
    return out


def bound_resources(profile: DeviceProfile) -> dict[str, float]:
    """The resources a process bound to ``profile``'s device takes on its worker."""
    return dict.fromkeys(names_of(profile), 1.0)


@dataclass(frozen=True)
class ProcessTask:
    """One runner process of one job, as sent to a worker."""

    run_id: str
    job_id: str
    #: the resource name a device must answer to when the job is not bound to one yet
    route: str
    #: the device the job's earlier processes ran on (its later ones must run there too)
    device: str | None
    artifact: Artifact
    opts: RunOptions
    profile_ops: bool
    ops_hook: OpsHook | None
    #: 1-based number of this process within the job, for the display
    process: int = 1
    #: the job's calibrated warm-up count (``dispatch.warmup``); None: the full warm-up rule
    warmup_target_n: int | None = None


@dataclass
class ProcessOutcome:
    """What one process produced on its worker: a typed result or why there is none."""

    job_id: str
    device: str
    host: str
    worker: str
    profile: DeviceProfile | None = None
    result: RunnerResult | None = None
    error: str | None = None
    ops: OpsOutcome | None = None
    #: the job's cooldown columns on that device so far (cooldown_s, cooldown_temp_c)
    cooldown: dict[str, float | None] = field(default_factory=dict)
    #: the device's cooldown settings for run.json, when it has a cooldown
    cooldown_meta: dict[str, float | None] | None = None
    wall_s: float = 0.0
    started_at: str = ""
    #: epoch seconds the runner process started and ended on the device: the gap between one
    #: process's end and the next one's start is the dispatch overhead the device sees
    t_start: float = 0.0
    t_end: float = 0.0
    #: the device vanished from its worker, which has withdrawn it from the farm
    device_gone: bool = False
    #: the worker's artifact cache lacked the artifact (a worker that joined after the sync)
    missing_artifact: bool = False


@dataclass
class DeviceStatus:
    """One device of one worker, as ``bench devices --scheduler`` lists it."""

    profile: DeviceProfile
    #: the job and process running on it now, or None when idle
    busy: str | None = None
    #: why the worker withdrew it (unreachable), or None while it serves
    gone: str | None = None
    #: what the start-up check found (os, cpu) for the listing
    summary: str = ""

    @property
    def name(self) -> str:
        return self.profile.name


@dataclass
class WorkerInfo:
    """A ``bench worker`` as it describes itself."""

    address: str
    host: str
    harness_version: str
    protocol_version: int
    devices: list[DeviceStatus] = field(default_factory=list)
    #: the Dask worker's name (``bench worker --name N`` names it N/DEVICE)
    name: str = ""
