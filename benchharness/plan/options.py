"""How a run is to be measured: the options every job of it shares, and the job's identity."""

from __future__ import annotations

from dataclasses import dataclass

from benchharness.analysis.intervals import (
    MAX_PROCESSES,
    MIN_PROCESSES,
    PROCESS_CI_REL,
    ProcessRule,
)
from benchharness.ondevice.protocol import DEFAULT_PROFILE_RUNS
from benchharness.plan.artifacts import Artifact

#: R of docs/method.md, at least: fresh runner processes per artifact (more until the
#: interval across them meets its target, ``analysis/intervals.ProcessRule``).
DEFAULT_PROCESSES = MIN_PROCESSES
#: --quick is for iteration: one process.
QUICK_PROCESSES = 1
#: Per runner process: a 120 s measuring cap (--max-s may ask for it) + 30 s warm-up cap + load,
#: profiling, slack.
DEFAULT_JOB_TIMEOUT_S = 400.0
#: A transport failure is retried once after reconnecting; a second failure fails the job.
DEFAULT_RETRIES = 1


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
    #: the process rule's cap and target (None: MAX_PROCESSES, PROCESS_CI_REL)
    max_processes: int | None = None
    process_ci_rel: float | None = None

    @property
    def process_rule(self) -> ProcessRule:
        """How many processes each job gets: ``processes`` exactly when given, one with
        ``quick``, else adaptive from ``DEFAULT_PROCESSES`` to the cap."""
        if self.processes is not None:
            return ProcessRule.fixed(self.processes)
        if self.quick:
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


def job_id(device: str, artifact: Artifact, settings: RunOptions) -> str:
    threads = settings.threads or "auto"
    return f"{device}|{artifact.key}|t{threads}|a{settings.affinity or '-'}"
