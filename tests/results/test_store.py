from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest

from benchharness.errors import ResultsError
from benchharness.results.schema import OpRow, RunRow, SampleRow
from benchharness.results.store import (
    OPS_COLUMNS,
    RUNS_COLUMNS,
    SAMPLES_COLUMNS,
    SCHEMA_VERSION,
    RunStore,
    atomic_write_text,
    list_runs,
)

REQUIRED_RUNS = (  # noqa: SIM905 - one readable block of column names
    "schema_version run_id device transport runtime runtime_version format precision "
    "model input_shape threads status error n median_ms mean_ms std_ms min_ms max_ms "
    "p90_ms cold_ms macs flops params model_bytes max_abs_err artifact_sha256 "
    "harness_version "
).split()
REQUIRED_OPS = (  # noqa: SIM905 - one readable block of column names
    "schema_version run_id device model format runtime op_index op_name op_type "
    "median_us share macs flops bytes "
).split()


def test_schema_has_every_column_the_design_requires() -> None:
    assert set(REQUIRED_RUNS) <= set(RUNS_COLUMNS)
    assert set(REQUIRED_OPS) <= set(OPS_COLUMNS)
    assert "latency_ms" in SAMPLES_COLUMNS


def _row(job: str, median: float, status: str = "ok") -> RunRow:
    return RunRow(job_id=job, device="local", model="m", format="onnx",
                  median_ms=median, status=status)  # fmt: skip


def test_rows_are_written_with_schema_version_and_replaced_per_job(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path)
    store.add_job(
        _row("a", 1.5), [OpRow(op_index=0, op_name="conv")], [SampleRow(index=0, latency_ms=1.5)]
    )
    store.add_job(_row("b", 2.0))
    store.add_job(_row("a", 1.25))  # a second attempt replaces the first
    with (store.path / "runs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["job_id"] for r in rows] == ["b", "a"]
    assert rows[1]["median_ms"] == "1.25"
    assert {r["schema_version"] for r in rows} == {str(SCHEMA_VERSION)}
    assert all(r["run_id"] == store.run_id for r in rows)
    again = RunStore.open(tmp_path, store.run_id)
    assert again.ops == []  # the retry had no ops, and the old ones went with the old row
    assert again.finished_job_ids() == {"a", "b"}


def test_open_by_path_and_by_id(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "r1")
    store.add_job(_row("a", 1.0))
    assert RunStore.open(tmp_path, "r1").runs[0].job_id == "a"
    assert RunStore.open(Path("/nonexistent"), str(store.path)).run_id == "r1"
    assert list_runs(tmp_path) == ["r1"]


def test_missing_run_names_known_runs(tmp_path: Path) -> None:
    RunStore.create(tmp_path, "r1").add_job(_row("a", 1.0))
    with pytest.raises(ResultsError, match="known runs: r1"):
        RunStore.open(tmp_path, "r2")


def test_existing_run_folder_is_not_overwritten(tmp_path: Path) -> None:
    RunStore.create(tmp_path, "r1")
    with pytest.raises(ResultsError, match="--resume r1"):
        RunStore.create(tmp_path, "r1")


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "r1")
    store.add_job(_row("a", 1.0))
    text = (store.path / "runs.csv").read_text().replace(f"\n{SCHEMA_VERSION},", "\n99,")
    (store.path / "runs.csv").write_text(text)
    with pytest.raises(ResultsError, match="schema_version 99"):
        RunStore.open(tmp_path, "r1")


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "r1")
    for i in range(5):
        store.add_job(_row(str(i), float(i)))
    assert sorted(p.name for p in store.path.iterdir()) == ["ops.csv", "runs.csv", "samples.csv"]


def test_runs_reload_typed_with_numbers(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "r1")
    store.add_job(_row("a", 1.5))
    store.add_job(_row("b", 2.5))
    runs = RunStore.open(tmp_path, "r1").runs
    assert sum(r.median_ms or 0.0 for r in runs) == pytest.approx(4.0)
    assert all(isinstance(r, RunRow) and r.schema_version == SCHEMA_VERSION for r in runs)


def test_atomic_write_gives_the_mode_a_plain_open_would(tmp_path: Path) -> None:
    # mkstemp creates 0600 files; a results CSV or a report is meant to be shared
    path = tmp_path / "report.html"
    atomic_write_text(path, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert path.read_text() == "x"
