"""What one job has produced so far in a run, and its row."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchharness.ondevice.protocol import RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import RunOptions
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results import rows
from benchharness.results.schema import OpRow, RunRow, SampleRow


@dataclass
class JobState:
    """One device x artifact job: its finished processes, operator rows and failure."""

    artifact: Artifact
    job_id: str
    results: list[RunnerResult] = field(default_factory=list)
    ops_rows: list[OpRow] = field(default_factory=list)
    #: summed operator time over end-to-end as first computed (kept when resumed)
    ops_sum_ratio: float | None = None
    error: str | None = None
    #: why the job has no operator rows, when its per-operator pass failed (``runs.csv`` has no
    #: column for it: the job's row is written without it)
    ops_error: str | None = None
    started_at: str = ""
    wall_s: float = 0.0


def job_row(
    profile: DeviceProfile, state: JobState, opts: RunOptions, run_id: str, processes_wanted: int
) -> RunRow:
    """The job's ``runs.csv`` row as it stands."""
    return rows.build_row(
        run_id=run_id,
        job_id=state.job_id,
        device=profile.name,
        transport=profile.transport,
        affinity=opts.affinity or profile.affinity or "",
        artifact=state.artifact,
        results=state.results,
        processes_wanted=processes_wanted,
        error=state.error,
        ops_rows=state.ops_rows,
        ops_ratio=state.ops_sum_ratio,
        ops_error=state.ops_error,
        started_at=state.started_at,
        wall_s=state.wall_s,
    )


def job_samples(profile: DeviceProfile, state: JobState) -> list[SampleRow]:
    """The job's ``samples.csv`` rows: every inference of its finished processes."""
    return rows.sample_rows(profile.name, state.artifact, state.results)
