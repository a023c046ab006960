"""The rows of the run folders a report reads: opened, and what it needs per job beside them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchharness.errors import ResultsError
from benchharness.results.store import RunStore


def flags_of(text: Any) -> tuple[str, ...]:
    """A row's ``flags`` cell (``A;B``) as a tuple."""
    return tuple(f for f in str(text or "").split(";") if f)


def ops_traffic(ops: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    """(run_id, job_id) -> sum of per-operator bytes, for jobs whose ops carry bytes."""
    totals: dict[tuple[str, str], float] = {}
    for op in ops:
        value = op.get("bytes")
        if value is None:
            continue
        key = (str(op.get("run_id", "")), str(op.get("job_id", "")))
        totals[key] = totals.get(key, 0.0) + value
    return totals


def quartiles(samples: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[float, float]]:
    """(run_id, job_id) -> (q1, q3) of the raw per-inference latencies."""
    by_job: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in samples:
        value = row.get("latency_ms")
        if value is not None:
            by_job[(str(row.get("run_id", "")), str(row.get("job_id", "")))].append(value)
    out = {}
    for key, values in by_job.items():
        q1, q3 = np.quantile(np.asarray(values), [0.25, 0.75])
        out[key] = (float(q1), float(q3))
    return out


def environment(runs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for col in (
        "cpu_model",
        "governor",
        "max_freq_mhz",
        "runtime",
        "runtime_version",
        "provider",
        "threads",
        "affinity",
        "harness_version",
    ):
        seen = sorted({str(r.get(col)) for r in runs if r.get(col) not in (None, "")})
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
