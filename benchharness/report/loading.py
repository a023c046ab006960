"""The rows of the run folders a report reads: opened, and what it needs per job beside them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from benchharness.errors import ResultsError
from benchharness.results.schema import OpRow, RunRow, SampleRow
from benchharness.results.store import RunStore


def ops_traffic(ops: Iterable[OpRow]) -> dict[tuple[str, str], float]:
    """(run_id, job_id) -> sum of per-operator bytes, for jobs whose ops carry bytes."""
    totals: dict[tuple[str, str], float] = {}
    for op in ops:
        if op.bytes is None:
            continue
        key = (op.run_id, op.job_id)
        totals[key] = totals.get(key, 0.0) + op.bytes
    return totals


def quartiles(samples: Iterable[SampleRow]) -> dict[tuple[str, str], tuple[float, float]]:
    """(run_id, job_id) -> (q1, q3) of the raw per-inference latencies."""
    by_job: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in samples:
        if row.latency_ms is not None:
            by_job[(row.run_id, row.job_id)].append(row.latency_ms)
    out = {}
    for key, values in by_job.items():
        q1, q3 = np.quantile(np.asarray(values), [0.25, 0.75])
        out[key] = (float(q1), float(q3))
    return out


def _environment_of(r: RunRow) -> dict[str, object]:
    """The columns of a row that describe where and with what it ran, by column name."""
    return {
        "cpu_model": r.cpu_model,
        "governor": r.governor,
        "max_freq_mhz": r.max_freq_mhz,
        "runtime": r.runtime,
        "runtime_version": r.runtime_version,
        "provider": r.provider,
        "threads": r.threads,
        "affinity": r.affinity,
        "harness_version": r.harness_version,
    }


def environment(runs: Sequence[RunRow]) -> dict[str, str]:
    """Column -> every value the rows hold for it (``a, b``); columns no row fills are left out."""
    described = [_environment_of(r) for r in runs]
    env: dict[str, str] = {}
    for col in _environment_of(RunRow()):  # the columns, in the order the table shows them
        seen = sorted({str(d[col]) for d in described if d[col] not in (None, "")})
        if seen:
            env[col] = ", ".join(seen)
    return env


def load(results_dir: Path, run_ids: Sequence[str]) -> list[RunStore]:
    """Open every run; ResultsError names the one that is missing or has no rows."""
    if not run_ids:
        raise ResultsError("no run given; name one or more RUN_IDs (see `bench results`)")
    stores = []
    for rid in run_ids:
        store = RunStore.open(results_dir, rid)
        if not store.runs:
            raise ResultsError(f"run {store.run_id} ({store.path}) has no rows in runs.csv yet")
        stores.append(store)
    return stores
