"""The results folder under hostile names, a second writer, spreadsheet formulas and full disks."""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchharness.errors import ResultsError
from benchharness.results import store as store_module
from benchharness.results.schema import OpRow, RunRow
from benchharness.results.store import RunStore, atomic_write_text, validate_run_id

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("bad", [".", "..", "", "a/b", "../x", "-rf", ".hidden", "a b", "x\n"])
def test_hostile_run_ids_are_refused_everywhere(tmp_path: Path, bad: str) -> None:
    results = tmp_path / "results"
    results.mkdir()
    # a real folder named like the run id, so nothing but validation can refuse it
    with pytest.raises(ResultsError, match="run id"):
        validate_run_id(bad)
    with pytest.raises(ResultsError):
        RunStore.create(results, bad)
    if bad not in ("", "x\n"):
        with pytest.raises(ResultsError):
            RunStore.open(results, bad)


def test_resume_dot_is_the_run_it_names_never_an_empty_id(tmp_path: Path) -> None:
    run = RunStore.create(tmp_path / "results", "20261201-000000-abcd")
    run.add_job(RunRow(job_id="j", status="ok"))
    os.chdir(run.path)
    try:
        # Path(".").name is "": the device folder would have been workdir/ itself
        again = RunStore.open(tmp_path / "results", ".")
        assert again.run_id == "20261201-000000-abcd" and again.path == run.path.resolve()
    finally:
        os.chdir(ROOT)
    os.chdir(tmp_path)
    try:
        with pytest.raises(ResultsError, match="not a valid run id"):
            RunStore.open(tmp_path / "results", ".")  # "." is no run folder here
    finally:
        os.chdir(ROOT)


def test_a_second_writer_is_refused_while_the_first_holds_the_run(tmp_path: Path) -> None:
    run = RunStore.create(tmp_path, "r1")
    with run.writing():
        # another process, as a second `bench run --resume r1` would be
        code = textwrap.dedent(f"""
            import sys
            from pathlib import Path
            from benchharness.errors import ResultsError
            from benchharness.results.store import RunStore
            try:
                with RunStore.open(Path({str(tmp_path)!r}), "r1").writing():
                    sys.exit(0)
            except ResultsError as exc:
                print(exc)
                sys.exit(3)
        """)
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "r1 is being written by" in proc.stdout and str(os.getpid()) in proc.stdout
    # released: the next writer gets it
    with run.writing():
        pass


FORMULAS = ["=1+2", "+SUM(A1)", "-cmd|' /C calc'!A0", "@SUM(1)", "\t=1", "\r=1"]


@pytest.mark.parametrize("text", FORMULAS)
def test_cells_a_spreadsheet_would_run_are_neutralised_and_read_back(
    tmp_path: Path, text: str
) -> None:
    run = RunStore.create(tmp_path)
    row = RunRow(job_id="j", model=text, error=text, cpu_model=text, median_ms=-1.5)
    run.add_job(row, [OpRow(op_name=text, op_index=0)])
    with (run.path / "runs.csv").open(newline="") as fh:
        (raw,) = list(csv.DictReader(fh))
    for column in ("model", "error", "cpu_model"):
        assert raw[column] == "'" + text, "a leading quote makes the cell text"
    assert raw["median_ms"] == "-1.5", "numbers stay numbers"
    again = RunStore.open(tmp_path, run.run_id)
    assert again.runs[0].model == text and again.runs[0].median_ms == -1.5
    assert again.ops[0].op_name == text
    assert run.runs[0].model == text, "rows in memory read the same"


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "64k") -> Iterator[Path]:
    """A real file system of ``size`` bytes (root may mount one here; CI runs as root)."""
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_read_only_results_folder_is_a_results_error(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "ro") as mount:
        run = RunStore.create(mount)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        with pytest.raises(ResultsError, match=r"cannot write .*read-only"):
            run.add_job(RunRow(job_id="j", status="ok"))


def test_a_full_disk_is_a_results_error_and_keeps_the_old_file(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small") as mount:
        run = RunStore.create(mount)
        run.add_job(RunRow(job_id="first", status="ok", model="m"))
        before = (run.path / "runs.csv").read_text()
        with pytest.raises(ResultsError, match="no space left"):
            run.add_job(RunRow(job_id="big", status="ok", error="x" * 200_000))
        assert (run.path / "runs.csv").read_text() == before, "the old file is intact"
        assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]


def test_the_folder_is_synced_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a power cut after rename must not lose the new name: fsync of the directory itself.
    # Mocked: a power cut cannot be produced here; the call order is what can be checked.
    synced: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        synced.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real(fd)

    monkeypatch.setattr(store_module.os, "fsync", record)
    atomic_write_text(tmp_path / "x.csv", "a\n")
    assert synced == ["file", "dir"]
