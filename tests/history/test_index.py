"""The SQLite index: built from the CSVs, updated folder by folder, damaged folders skipped."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchharness.errors import UsageError
from benchharness.history import index as index_module
from benchharness.history.index import INDEX_FILE, FolderRead, HistoryIndex
from benchharness.history.timeline import load_history
from tests.history.synthetic import run_id, step_levels, write_series


@pytest.fixture()
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The run folders the index reads, in order."""
    seen: list[str] = []
    real = index_module.read_folder

    def counting(folder: Path) -> FolderRead:
        seen.append(folder.name)
        return real(folder)

    monkeypatch.setattr(index_module, "read_folder", counting)
    return seen


def update(results: Path) -> index_module.IndexUpdate:
    with HistoryIndex.open(results) as index:
        return index.update()


def test_unchanged_folders_are_not_read_again(tmp_path: Path, reads: list[str]) -> None:
    results = tmp_path / "results"
    ids = write_series(results, [10.0] * 5, seed=1)
    first = update(results)
    assert sorted(first.read) == ids and first.unchanged == 0
    assert (results / INDEX_FILE).is_file()
    reads.clear()

    again = update(results)
    assert again.read == [] and again.unchanged == 5 and reads == []

    [new] = write_series(results, [10.0], seed=2, start=5)
    added = update(results)
    assert added.read == [new] and added.unchanged == 5 and reads == [new]

    with HistoryIndex.open(results) as index:
        [(_, points)] = index.points().items()
        assert [p.run_id for p in points] == [*ids, new]
        [(_, tail)] = index.points(last=2).items()
        assert [p.run_id for p in tail] == [ids[-1], new]


def test_a_rewritten_folder_is_read_again_and_a_removed_one_forgotten(tmp_path: Path) -> None:
    results = tmp_path / "results"
    ids = write_series(results, [10.0] * 3, seed=1)
    update(results)
    runs_csv = results / ids[1] / "runs.csv"
    # a resumed run rewrites its runs.csv: here the same bytes, but another mtime
    os.utime(runs_csv, ns=(1, 1))
    shutil.rmtree(results / ids[2])
    changed = update(results)
    assert changed.read == [ids[1]] and changed.removed == [ids[2]] and changed.unchanged == 1
    with HistoryIndex.open(results) as index:
        [(_, points)] = index.points().items()
        assert [p.run_id for p in points] == ids[:2]


def test_a_damaged_csv_is_skipped_with_a_warning(tmp_path: Path, reads: list[str]) -> None:
    results = tmp_path / "results"
    ids = write_series(results, step_levels(8, {}), seed=3)
    runs_csv = results / ids[4] / "runs.csv"
    text = runs_csv.read_text(encoding="utf-8")
    runs_csv.write_text(text.replace(",ok,", ",ok,not-a-number-here,", 1), encoding="utf-8")
    (results / "not-a-run").mkdir()  # no runs.csv: not a run folder at all

    history = load_history(results)
    [series] = history.series
    assert [p.run_id for p in series.points] == ids[:4] + ids[5:]
    assert list(history.update.damaged) == [ids[4]]
    [warning] = history.warnings
    assert warning.startswith(f"skipped run {ids[4]}: ") and "runs.csv" in warning

    # known damaged: warned about again, not read again
    reads.clear()
    again = load_history(results)
    assert reads == [] and again.warnings == history.warnings


def test_a_damaged_run_json_keeps_the_rows(tmp_path: Path) -> None:
    results = tmp_path / "results"
    ids = write_series(results, [10.0] * 3, seed=4)
    (results / ids[1] / "run.json").write_text("{not json", encoding="utf-8")
    history = load_history(results)
    assert len(history.series[0].points) == 3
    assert any("run.json" in w and "host fields" in w for w in history.warnings)
    assert "host.hostname" not in history.series[0].points[1].env_map


def test_a_stale_or_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_series(results, [10.0] * 3, seed=5)
    (results / INDEX_FILE).write_bytes(b"this is not an SQLite database, it was overwritten")
    assert len(update(results).read) == 3
    with HistoryIndex.open(results) as index:
        index.db.execute("UPDATE info SET value = '0' WHERE name = 'index_version'")
    assert len(update(results).read) == 3  # an older layout: rebuilt, every folder read


def test_filters_and_what_exists(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_series(results, [10.0] * 3, seed=6)
    write_series(results, [5.0] * 3, seed=7, start=3, device="devB", format="tflite")
    assert [s.key.device for s in load_history(results).series] == ["devA", "devB"]
    [only] = load_history(results, device="devB").series
    assert only.key.format == "tflite" and len(only.points) == 3
    with pytest.raises(UsageError, match=r"no series matches --device devC .*devices: devA, devB"):
        load_history(results, device="devC")
    with pytest.raises(UsageError, match="no results folder"):
        load_history(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no measured series"):
        load_history(tmp_path / "empty")


def test_folder_names_that_are_no_run_ids_are_ignored(tmp_path: Path) -> None:
    results = tmp_path / "results"
    [only] = write_series(results, [10.0], seed=8)
    shutil.copytree(results / only, results / ".hidden-copy")
    assert update(results).read == [run_id(0)]
