"""How a run is to be measured: the options every job of it shares, and the job's identity."""

from __future__ import annotations

from dataclasses import dataclass

from benchharness.device.protocol import DEFAULT_PROFILE_RUNS
from benchharness.plan.artifacts import Artifact

#: R of METHOD.md: fresh runner processes per artifact, so one slow phase is visible.
DEFAULT_PROCESSES = 3
#: --quick is for iteration: one process.
QUICK_PROCESSES = 1
#: Per runner process: the 120 s measuring cap + 30 s warm-up cap + load, profiling, slack.
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

    @property
    def n_processes(self) -> int:
        if self.processes is not None:
            return self.processes
        return QUICK_PROCESSES if self.quick else DEFAULT_PROCESSES


def job_id(device: str, artifact: Artifact, settings: RunOptions) -> str:
    threads = settings.threads or "auto"
    return f"{device}|{artifact.key}|t{threads}|a{settings.affinity or '-'}"
