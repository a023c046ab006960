"""``--resume``: a partial job's finished processes rebuilt from the results folder."""

from __future__ import annotations

from benchharness.dispatch.state import JobState
from benchharness.ondevice.protocol import WARMUP_FULL, Environment, Rule, RunnerResult
from benchharness.results.memory_columns import memory_from_row
from benchharness.results.rows import warmup_modes
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore


def _samples_by_process(store: RunStore, job_id: str) -> dict[int, list[float]]:
    """The job's stored latencies, per runner process, in the order they were taken."""
    by_proc: dict[int, list[float]] = {}
    for s in store.samples:
        if s.job_id == job_id and s.process is not None and s.latency_ms is not None:
            by_proc.setdefault(s.process, []).append(s.latency_ms)
    return by_proc


def _restored_process(
    row: RunRow, samples_ms: list[float], *, first: bool, warmup_mode: str | None
) -> RunnerResult:
    """One finished process as its runner result: its samples, and what its row says of how it
    ran (the runtime columns, which every process of a job shares; its warm-up, ``warmup_mode``
    read from the row's counts, with the job's settle point on the first and the calibrated
    count on each calibrated one, so the job's next processes run the same warm-up)."""
    env = Environment(
        cpu_model=row.cpu_model,
        governor=row.governor,
        max_freq_mhz=row.max_freq_mhz,
        temp_c=row.temp_start_c,
        loadavg=row.loadavg_start,
    )
    return RunnerResult(
        samples_ms=samples_ms,
        env_start=env if first else None,
        # the row keeps the largest figures of the processes: carried by the first
        memory=memory_from_row(row) if first else None,
        runtime=row.runtime,
        runtime_version=row.runtime_version,
        provider=row.provider,
        threads=row.threads,
        load_ms=row.load_ms,
        cold_ms=row.cold_ms,
        warmup_mode=warmup_mode,
        warmup_settle_n=row.warmup_settle_n if first else None,
        warmup_settle_s=row.warmup_settle_s if first else None,
        rule=Rule(
            warmup_target_n=row.warmup_target_n if warmup_mode not in (None, WARMUP_FULL) else None
        ),
    )


def restore(store: RunStore, state: JobState) -> None:
    """Refill ``state`` from samples.csv, ops.csv and its runs.csv row (typed on reload).

    Only python-runner processes come back: a native tool's process has no samples to rebuild
    from, so a partial native job measures its processes again. The environment the first
    process saw is taken from the row, so the resumed row keeps its environment columns (and
    the flags they raise, such as CLOCKS_UNLOCKED).
    """
    by_proc = _samples_by_process(store, state.job_id)
    # samples without a row (killed between the CSV writes): an empty row, nothing to keep
    row = next((r for r in store.runs if r.job_id == state.job_id), RunRow())
    # the row counts the modes, not their order: the full ones first, as a job runs them
    modes = warmup_modes(row.warmup_mode)
    procs = sorted(by_proc)
    if len(modes) != len(procs):
        modes = []  # counts of other processes than these say nothing about them
    for i, p in enumerate(procs):
        mode = modes[i] if modes else None
        state.results.append(
            _restored_process(row, by_proc[p], first=not state.results, warmup_mode=mode)
        )
    # their identity columns are the stored job's: add_job stamps them again when it is rewritten
    state.ops_rows = [r for r in store.ops if r.job_id == state.job_id]
    state.ops_sum_ratio = row.ops_sum_ratio
