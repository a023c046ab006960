"""``--resume``: a partial job's finished processes rebuilt from the results folder."""

from __future__ import annotations

from typing import Any

from benchharness.dispatch.state import JobState
from benchharness.ondevice.protocol import Environment, RunnerResult
from benchharness.results.memory_columns import memory_from_row
from benchharness.results.store import RunStore

#: What a restored process takes from its row (the runner result fields of the same names).
RESTORED_COLUMNS = ("runtime", "runtime_version", "provider", "threads", "load_ms", "cold_ms")


def restore(store: RunStore, state: JobState) -> None:
    """Refill ``state`` from samples.csv, ops.csv and its runs.csv row (typed on reload).

    Only python-runner processes come back: a native tool's process has no samples to rebuild
    from, so a partial native job measures its processes again. The environment the first
    process saw is taken from the row, so the resumed row keeps its environment columns (and
    the flags they raise, such as CLOCKS_UNLOCKED).
    """
    by_proc: dict[int, list[float]] = {}
    for s in store.samples:
        if s.get("job_id") == state.job_id and s.get("latency_ms") is not None:
            by_proc.setdefault(int(s["process"]), []).append(float(s["latency_ms"]))
    row = next((r for r in store.runs if r.get("job_id") == state.job_id), {})
    env = Environment(
        cpu_model=row.get("cpu_model"),
        governor=row.get("governor"),
        max_freq_mhz=row.get("max_freq_mhz"),
        temp_c=row.get("temp_start_c"),
        loadavg=row.get("loadavg_start"),
    )
    kept: dict[str, Any] = {k: row.get(k) for k in RESTORED_COLUMNS}
    for p in sorted(by_proc):
        first = not state.results
        state.results.append(
            RunnerResult(
                samples_ms=by_proc[p],
                env_start=env if first else None,
                # the row keeps the largest figures of the processes: carried by the first
                memory=memory_from_row(row) if first else None,
                **kept,
            )
        )
    state.ops_rows = [
        {k: v for k, v in r.items() if k not in ("schema_version", "run_id", "job_id")}
        for r in store.ops
        if r.get("job_id") == state.job_id
    ]
    state.ops_sum_ratio = row.get("ops_sum_ratio")
