"""Compare two run folders: open their stores and hand the rows to ``analysis``.

``analysis/comparison.py`` (latency), ``analysis/memory_compare.py`` (peak memory) and
``analysis/gates.py`` (``--fail-on``) work on rows; this is where run folders are read for them,
for ``bench compare``, the tests and scripts.
"""

from __future__ import annotations

from pathlib import Path

from benchharness.analysis.comparison import DEFAULT_THRESHOLD, Comparison, compare_runs
from benchharness.analysis.gates import FailOn, GatedComparison, apply_gates
from benchharness.analysis.memory_compare import compare_memory
from benchharness.results.store import RunStore


def _open(results_dir: Path, run_a: str, run_b: str) -> tuple[RunStore, RunStore]:
    return RunStore.open(results_dir, run_a), RunStore.open(results_dir, run_b)


def _latency(
    store_a: RunStore, store_b: RunStore, threshold: float, allow_mismatch: bool
) -> Comparison:
    return compare_runs(
        store_a.runs,
        store_a.samples,
        store_b.runs,
        store_b.samples,
        threshold=threshold,
        allow_mismatch=allow_mismatch,
        run_a=store_a.run_id,
        run_b=store_b.run_id,
    )


def compare_run_ids(
    results_dir: Path,
    run_a: str,
    run_b: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    allow_mismatch: bool = False,
) -> Comparison:
    """Load two run folders (ids under ``results_dir`` or paths) and compare B's latency
    against A's (``comparison.compare_runs``)."""
    store_a, store_b = _open(results_dir, run_a, run_b)
    return _latency(store_a, store_b, threshold, allow_mismatch)


def compare_and_gate(
    results_dir: Path,
    run_a: str,
    run_b: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    allow_mismatch: bool = False,
    fail_on: FailOn | None = None,
) -> GatedComparison:
    """``bench compare``: B against A on latency and on peak memory (both at ``threshold``),
    with the ``fail_on`` gates applied."""
    store_a, store_b = _open(results_dir, run_a, run_b)
    latency = _latency(store_a, store_b, threshold, allow_mismatch)
    memory = compare_memory(store_a.runs, store_b.runs, latency.threshold)
    return apply_gates(latency, memory, fail_on or FailOn())
