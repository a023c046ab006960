"""Synthetic results folders for the history tests: runs written with ``RunStore`` and ``RunRow``
as ``bench run`` writes them, with latencies drawn around known levels (fixed seeds)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore

#: The first synthetic run starts here; each next one an hour later.
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
#: The artifact every run measures unless a test changes it.
SHA_A = "a1" * 32
SHA_B = "b2" * 32
#: One process's spread around the run's level (log sd): 2 %, as the detector benchmark uses.
PROCESS_NOISE = 0.02


def run_id(i: int) -> str:
    """The i-th run's id: sortable like ``new_run_id``'s."""
    return (EPOCH + timedelta(hours=i)).strftime("%Y%m%d-%H%M%S-") + f"{i:04x}"


def started(i: int) -> str:
    return (EPOCH + timedelta(hours=i)).isoformat(timespec="seconds")


def make_row(i: int, level_ms: float, rng: np.random.Generator, **overrides: Any) -> RunRow:
    """A measured row around ``level_ms``: five process medians, their median and interval."""
    processes = int(overrides.pop("processes", 5))
    medians = sorted(level_ms * np.exp(rng.normal(0.0, PROCESS_NOISE, processes)))
    median = float(np.median(medians))
    logs = np.log(medians)
    half = 2.776 * float(np.std(logs, ddof=1)) / math.sqrt(processes) if processes > 1 else 0.01
    values: dict[str, Any] = {
        "job_id": f"devA|net|onnx|fp32|{i}",
        "device": "devA",
        "transport": "local",
        "runtime": "onnxruntime",
        "runtime_version": "1.20.0",
        "format": "onnx",
        "precision": "fp32",
        "model": "net",
        "input_shape": "1x3x32x32",
        "threads": 2,
        "status": "ok",
        "n": 200 * processes,
        "processes": processes,
        "median_ms": median,
        "ci95_low_ms": median * math.exp(-half),
        "ci95_high_ms": median * math.exp(half),
        "process_medians_ms": [float(m) for m in medians] if processes > 1 else [],
        "artifact_sha256": SHA_A,
        "cpu_model": "Synthetic CPU",
        "harness_version": "0.1.0",
        "started_at": started(i),
        "finished_at": started(i),
    }
    values.update(overrides)
    return RunRow.from_values(values)


def write_run(
    results: Path, i: int, rows: Sequence[RunRow], meta: Mapping[str, Any] | None = None
) -> RunStore:
    store = RunStore.create(results, run_id(i))
    store.meta = {
        "run_id": store.run_id,
        "created": started(i),
        "host": {"hostname": "synthetic", "platform": "Linux", "python": "3.11"},
        **(meta or {}),
    }
    store.write_meta()
    for row in rows:
        store.add_job(row)
    return store


def write_series(
    results: Path,
    levels: Sequence[float],
    *,
    seed: int,
    start: int = 0,
    changes: Mapping[int, Mapping[str, Any]] | None = None,
    **overrides: Any,
) -> list[str]:
    """One run per level (run ``start + k`` at ``levels[k]``); ``changes[k]`` are columns that
    run ``k`` and every later one take (a new artifact, a runtime update). Returns the run ids."""
    rng = np.random.default_rng(seed)
    env: dict[str, Any] = {}
    ids = []
    for k, level in enumerate(levels):
        env.update((changes or {}).get(k, {}))
        i = start + k
        write_run(results, i, [make_row(i, level, rng, **{**overrides, **env})])
        ids.append(run_id(i))
    return ids


def step_levels(n: int, steps: Mapping[int, float], base_ms: float = 10.0) -> list[float]:
    """``n`` levels starting at ``base_ms``, multiplied by ``steps[k]`` from run ``k`` on."""
    out, level = [], base_ms
    for k in range(n):
        level *= steps.get(k, 1.0)
        out.append(level)
    return out
