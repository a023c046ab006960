"""The ``modes`` column: filled by the row builder from the summary, round-tripped by the store."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchharness.ondevice.protocol import RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.results.rows import build_row
from benchharness.results.schema import RUNS_COLUMNS, RunRow
from benchharness.results.store import RunStore

#: Issue 29's first real run: process medians of mobilenet_v2 (ONNX Runtime, 2 threads).
BIMODAL = [6.81, 6.69, 3.84, 6.40, 6.49, 6.73, 6.71, 6.75, 4.04, 4.03]
ARTIFACT = Artifact(model="mobilenet_v2", source="zoo", input_shape="1x3x224x224",
                    format="onnx", precision="fp32", path=None, sha256="x")  # fmt: skip


def _processes(levels: list[float], seed: int = 1) -> list[RunnerResult]:
    rng = np.random.default_rng(seed)
    return [
        RunnerResult(
            runtime="onnxruntime", samples_ms=rng.lognormal(math.log(v), 0.01, 101).tolist()
        )
        for v in levels
    ]


def _row(levels: list[float]) -> RunRow:
    results = _processes(levels)
    return build_row(run_id="r", job_id="j", device="local", transport="local", affinity="",
                     artifact=ARTIFACT, results=results, processes_wanted=len(results))  # fmt: skip


def test_the_row_builder_fills_modes_from_the_summary() -> None:
    row = _row(BIMODAL)
    assert row.modes is not None and row.modes.count(";") == 1
    assert [m.count for m in row.mode_list] == [3, 7]
    assert [m.share for m in row.mode_list] == pytest.approx([0.3, 0.7])
    low, high = row.mode_list
    assert low.median_ms == pytest.approx(4.0, rel=0.02)
    assert high.median_ms == pytest.approx(6.7, rel=0.02)
    assert "MULTIMODAL" in row.flag_list and "mixture of 2 modes" in (row.ci_method or "")


def test_one_level_leaves_modes_empty() -> None:
    row = _row([5.0, 5.1, 4.95, 5.05, 5.02, 4.98])
    assert row.modes is None and row.mode_list == ()
    assert "MULTIMODAL" not in row.flag_list


def test_modes_round_trip_through_the_store(tmp_path: Path) -> None:
    row = _row(BIMODAL)
    store = RunStore.create(tmp_path, "r1")
    store.add_job(row)
    (back,) = RunStore.open(tmp_path, "r1").runs
    assert back.modes == row.modes and back.mode_list == row.mode_list
    assert back.processes == 10


def test_modes_is_the_last_column() -> None:
    # appended, as steal_pct and folded were: an older folder reads it empty (test_schema);
    # only the warm-up and profiled-pass columns of issue 29 came after it
    assert RUNS_COLUMNS[RUNS_COLUMNS.index("folded") + 1] == "modes"
    after = RUNS_COLUMNS[RUNS_COLUMNS.index("modes") + 1 :]
    assert all(c.startswith(("warmup_", "ops_")) for c in after)
    assert after[-2:] == ("ops_run_ms", "ops_attempts")


def test_a_damaged_modes_cell_says_so() -> None:
    with pytest.raises(ValueError, match="modes"):
        _ = RunRow(processes=10, modes="4.03;6.71").mode_list
