"""How a run is to be measured: the options every job of it shares, and the job's identity.

One definition of each setting, composed rather than copied: :class:`Method` (how each runner
process measures) sits inside :class:`RunOptions` (what every job of the run shares), which sits
inside ``api.RunRequest`` (everything ``bench run`` was asked); ``runners.python.RunnerSettings``
holds the same :class:`Method` for one process. ``from_json`` reads each back from run.json's
``request`` section, nested or in the flat shape runs stored before it was nested.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from benchharness.errors import UsageError
from benchharness.ondevice.protocol import DEFAULT_PROFILE_RUNS, WARMUP_CALIBRATED, WARMUP_FULL
from benchharness.plan.artifacts import Artifact
from benchharness.stats.intervals import (
    MAX_PROCESSES,
    MIN_PROCESSES,
    PROCESS_CI_REL,
    ProcessRule,
)

#: R of docs/method.md, at least: fresh runner processes per artifact (more until the
#: interval across them meets its target, ``stats/intervals.ProcessRule``).
DEFAULT_PROCESSES = MIN_PROCESSES
#: --quick is for iteration: one process.
QUICK_PROCESSES = 1
#: Per runner process: a 120 s measuring cap (--max-s may ask for it) + 30 s warm-up cap + load,
#: profiling, slack.
DEFAULT_JOB_TIMEOUT_S = 400.0
#: A transport failure is retried once after reconnecting; a second failure fails the job.
DEFAULT_RETRIES = 1
#: ``Method.warmup``: the job's first process calibrates the warm-up of the others (the default:
#: its ~1 s per process is mostly the time minimum, spent long after a model settled), or the
#: full rule in every process (the method before issue 29, to compare against).
WARMUP_CHOICES = (WARMUP_CALIBRATED, WARMUP_FULL)

_T = TypeVar("_T")


@dataclass(frozen=True)
class Method:
    """How each runner process measures: docs/method.md's preset (``quick``: ``QUICK``, else
    ``DEFAULT``), overrides of its stopping and warm-up rules (None: the preset's own), and
    whether a job's later processes run the warm-up its first one calibrated (``warmup``, one of
    ``WARMUP_CHOICES``; ``warmup_min_s`` is the full rule's minimum, which they skip)."""

    quick: bool = False
    min_n: int | None = None
    min_s: float | None = None
    max_s: float | None = None
    warmup_min_s: float | None = None
    warmup: str = WARMUP_CALIBRATED

    def __post_init__(self) -> None:
        if self.warmup not in WARMUP_CHOICES:
            raise UsageError(f"warm-up {self.warmup!r} is not one of {', '.join(WARMUP_CHOICES)}")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], base: Method) -> Method:
        """The method stored in run.json; a value it lacks is ``base``'s."""
        return cls(
            quick=bool(data.get("quick", base.quick)),
            min_n=data.get("min_n", base.min_n),
            min_s=data.get("min_s", base.min_s),
            max_s=data.get("max_s", base.max_s),
            warmup_min_s=data.get("warmup_min_s", base.warmup_min_s),
            warmup=str(data.get("warmup", base.warmup)),
        )


@dataclass(frozen=True)
class RunOptions:
    """What every job of a run shares: its measuring method and the run-wide settings."""

    method: Method = field(default_factory=Method)
    #: threads and taskset mask for every device (None: each profile's own)
    threads: int | None = None
    affinity: str | None = None
    #: exactly this many processes per job (None: the adaptive process rule)
    processes: int | None = None
    profile_ops: bool = True
    profile_runs: int = DEFAULT_PROFILE_RUNS
    timeout_s: float = DEFAULT_JOB_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    #: seed of the interleaving order (None in a request: ``api.run`` picks one from the clock)
    seed: int | None = None
    #: the process rule's cap and target (None: MAX_PROCESSES, PROCESS_CI_REL)
    max_processes: int | None = None
    process_ci_rel: float | None = None

    @property
    def process_rule(self) -> ProcessRule:
        """How many processes each job gets: ``processes`` exactly when given, one with
        ``quick``, else adaptive from ``DEFAULT_PROCESSES`` to the cap."""
        if self.processes is not None:
            return ProcessRule.fixed(self.processes)
        if self.method.quick:
            return ProcessRule.fixed(QUICK_PROCESSES)
        cap = self.max_processes if self.max_processes is not None else MAX_PROCESSES
        return ProcessRule(
            min_processes=min(DEFAULT_PROCESSES, cap),
            max_processes=cap,
            ci_rel=self.process_ci_rel if self.process_ci_rel is not None else PROCESS_CI_REL,
        )

    @property
    def n_processes(self) -> int:
        """Processes every job gets at least (all of them when the count is fixed)."""
        return self.process_rule.min_processes

    @classmethod
    def from_json(cls, data: Mapping[str, Any], base: RunOptions) -> RunOptions:
        """The options stored in run.json; a value it lacks is ``base``'s. A flat mapping (a
        request stored before ``method`` was nested) holds the method's values itself."""
        return cls(
            method=Method.from_json(data.get("method", data), base.method),
            threads=data.get("threads", base.threads),
            affinity=data.get("affinity", base.affinity),
            processes=data.get("processes", base.processes),
            profile_ops=bool(data.get("profile_ops", base.profile_ops)),
            profile_runs=int(data.get("profile_runs", base.profile_runs)),
            # a request stored before the timeout had a default held None for it
            timeout_s=float(_given(data.get("timeout_s", base.timeout_s), DEFAULT_JOB_TIMEOUT_S)),
            retries=int(data.get("retries", base.retries)),
            seed=data.get("seed", base.seed),
            max_processes=data.get("max_processes", base.max_processes),
            process_ci_rel=data.get("process_ci_rel", base.process_ci_rel),
        )


def _given(value: _T | None, default: _T) -> _T:
    """``value`` unless it is None."""
    return default if value is None else value


def job_id(device: str, artifact: Artifact, settings: RunOptions) -> str:
    threads = settings.threads or "auto"
    return f"{device}|{artifact.key}|t{threads}|a{settings.affinity or '-'}"
