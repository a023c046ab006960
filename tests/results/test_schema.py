"""The results schema: typed records, and folders written before them still load."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from benchharness.errors import ResultsError
from benchharness.results.memory_columns import MEMORY_COLUMNS
from benchharness.results.schema import (
    OPS_COLUMNS,
    RUNS_COLUMNS,
    SCHEMA_VERSION,
    OpRow,
    RunRow,
    SampleRow,
)
from benchharness.results.store import RunStore

FIXTURE = Path(__file__).parents[1] / "fixtures" / "results_v2"
RUN_ID = next(p.name for p in FIXTURE.iterdir() if p.is_dir())


def test_a_folder_written_before_typed_rows_loads_typed() -> None:
    store = RunStore.open(FIXTURE, RUN_ID)
    assert len(store.runs) == 4 and all(isinstance(r, RunRow) for r in store.runs)
    assert {(r.model, r.format) for r in store.runs} == {
        (m, f) for m in ("student_net", "squeezenet1_1") for f in ("onnx", "tflite")
    }
    for row in store.runs:
        assert row.status == "ok" and row.error == ""
        assert isinstance(row.median_ms, float) and row.median_ms > 0
        assert isinstance(row.n, int) and isinstance(row.macs, int)
        assert row.schema_version == SCHEMA_VERSION and row.run_id == RUN_ID
        assert isinstance(row.flag_list, list)
    assert store.ops and all(isinstance(o, OpRow) and o.op_type for o in store.ops)
    assert {o.job_id for o in store.ops} <= {r.job_id for r in store.runs}
    assert len(store.samples) == 80 and all(isinstance(s, SampleRow) for s in store.samples)
    assert all(isinstance(s.latency_ms, float) for s in store.samples)


def test_columns_added_since_the_fixture_come_after_its_own() -> None:
    # a column is only ever appended (a reader of an older folder sees it empty); one that
    # changed meaning or went away needs a schema version and a migration instead
    with (FIXTURE / RUN_ID / "runs.csv").open(newline="") as fh:
        header = tuple(next(csv.reader(fh)))
    assert RUNS_COLUMNS[: len(header)] == header
    with (FIXTURE / RUN_ID / "ops.csv").open(newline="") as fh:
        header = tuple(next(csv.reader(fh)))
    assert OPS_COLUMNS[: len(header)] == header
    runs = RunStore.open(FIXTURE, RUN_ID).runs
    assert all(r.steal_pct is None for r in runs)
    assert all(r.modes is None and r.mode_list == () for r in runs)


def _rewrite(path: Path, drop: set[str], **set_to: str) -> None:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    columns = [c for c in rows[0] if c not in drop]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **set_to})


def test_a_version_1_folder_is_migrated_on_load(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE / RUN_ID, tmp_path / RUN_ID)
    folder = tmp_path / RUN_ID
    _rewrite(folder / "runs.csv", set(MEMORY_COLUMNS), schema_version="1")
    for name in ("ops.csv", "samples.csv"):
        _rewrite(folder / name, set(), schema_version="1")
    store = RunStore.open(tmp_path, RUN_ID)
    for row in store.runs:
        assert row.schema_version == SCHEMA_VERSION
        assert row.mem_peak_bytes is None and row.mem_source is None
        assert row.model_bytes is not None and row.activation_bytes is not None
        assert row.mem_estimate_bytes == row.model_bytes + row.activation_bytes
    assert all(o.schema_version == SCHEMA_VERSION for o in store.ops)


def test_a_damaged_number_names_the_file_line_and_column(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE / RUN_ID, tmp_path / RUN_ID)
    _rewrite(tmp_path / RUN_ID / "runs.csv", set(), median_ms="fast")
    with pytest.raises(
        ResultsError, match=r"runs.csv, line 2, column median_ms: expected a number"
    ):
        RunStore.open(tmp_path, RUN_ID)


def test_a_row_in_memory_reads_as_it_will_reload() -> None:
    row = RunRow.from_values(
        {"model": "m", "median_ms": "1.5", "threads": 2.0, "process_medians_ms": "1;2"}
    )
    assert row.median_ms == 1.5 and row.threads == 2 and row.process_medians_ms == [1.0, 2.0]
    assert row.error == "" and row.cpu_model is None
    assert row.replace(median_ms=3).median_ms == 3.0


def test_an_unknown_column_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match="median"):
        RunRow.from_values({"median": 1.0})


def test_a_folded_row_does_not_run_its_model() -> None:
    assert RunRow(status="ok").runs_its_model
    assert not RunRow(status="ok", flags="HIGH_CV;GRAPH_FOLDED").runs_its_model
    assert not RunRow(status="ok", folded="tflite keeps 5 of 44 convolutions").runs_its_model
