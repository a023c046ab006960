"""Fuzzing the results reload: a run folder whose CSVs and run.json are damaged opens, or is a
HarnessError, never another exception (``RunStore.open``, as every command that reads runs);
what opens holds finite numbers only."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchharness.errors import HarnessError
from benchharness.results.schema import Record
from benchharness.results.store import RunStore
from tests.fuzz.mutations import (
    RAW_JSON,
    json_values,
    mutated_bytes,
    mutated_json,
    paths,
    record,
    render,
)

READER = "results folder"
#: A run folder as ``bench run`` wrote it (``tests/fixtures/results_v2``, schema version 2).
SEED = Path(__file__).parents[1] / "fixtures" / "results_v2" / "20261206-222244-cc5f"
CSV_FILES = ("runs.csv", "ops.csv", "samples.csv")
FILES = (*CSV_FILES, "run.json")
SEED_BYTES = {name: (SEED / name).read_bytes() for name in FILES}
META = json.loads(SEED_BYTES["run.json"])
META_PATHS = paths(META)
#: Cells a CSV reader must survive: numbers no column holds, non-numbers, formulas, quotes,
#: line breaks inside a cell, NUL.
CELLS = [
    "1e999",
    "-1e999",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "9" * 400,
    "9" * 5000,
    str(2**70),
    "-1",
    "-0",
    "12.0",
    "1.5",
    "1e308",
    "0x10",
    "1_000",
    "",
    " ",
    "'=cmd",
    "=1+1",
    '"',
    "a\r\nb",
    "a\nb",
    "\0",
    "1;2;;x",
    "ok",
    "failed",
    "x" * 200_000,  # past the csv module's field limit
]


@st.composite
def mutated_csv(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with cells replaced, cells or columns added or removed (still CSV)."""
    rows = list(csv.reader(io.StringIO(seed.decode("utf-8"))))
    for _ in range(draw(st.integers(1, 4))):
        r = draw(st.integers(0, len(rows) - 1))
        c = draw(st.integers(0, max(len(rows[r]) - 1, 0)))
        cell = draw(st.one_of(st.sampled_from(CELLS), st.text(max_size=30)))
        how = draw(st.sampled_from(["cell", "cell", "extra cell", "extra column", "drop cell"]))
        if how == "cell" and rows[r]:
            rows[r][c] = cell
        elif how == "extra cell":
            rows[r].append(cell)
        elif how == "extra column":
            for i, row in enumerate(rows):
                row.append(draw(st.text(max_size=10)) if i == 0 else cell)
        elif rows[r]:
            del rows[r][c]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogatepass")


def file_mutations(name: str) -> st.SearchStrategy[bytes]:
    seed = SEED_BYTES[name]
    if name == "run.json":
        structured = st.one_of(
            mutated_json(META, META_PATHS),
            json_values.map(render),
            st.sampled_from(RAW_JSON),
        ).map(lambda t: t.encode("utf-8", "surrogatepass"))
    else:
        structured = mutated_csv(seed)
    return st.one_of(structured, mutated_bytes(seed), st.binary(max_size=512))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results-fuzz")


def write_folder(results: Path, damaged: dict[str, bytes]) -> Path:
    """The seed run folder in ``results``, with the ``damaged`` files' bytes instead."""
    folder = results / SEED.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name in FILES:
        (folder / name).write_bytes(damaged.get(name, SEED_BYTES[name]))
    return folder


def open_or_refuse(results: Path, damaged: dict[str, bytes]) -> None:
    folder = write_folder(results, damaged)
    try:
        store = RunStore.open(results, SEED.name)
    except HarnessError as exc:
        record(READER, exc, folder)
        return
    record(READER, None)
    for row in (*store.runs, *store.ops, *store.samples):
        assert all(in_range(v) for v in numbers(row)), row


#: The integers a column may hold: what a signed 64-bit column of any other tool holds too.
INT64 = range(-(2**63), 2**63)


def in_range(value: float) -> bool:
    """An integer that fits 64 bits, or a finite float (``math.isfinite`` of a huge integer
    raises OverflowError, so integers are judged apart)."""
    return value in INT64 if isinstance(value, int) else math.isfinite(value)


def numbers(row: Record) -> list[float]:
    """Every number a row holds, lists flattened: each must be in range once loaded."""
    out: list[float] = []
    for value in row.as_dict().values():
        if isinstance(value, list):
            out += value
        elif isinstance(value, (int, float)):
            out.append(value)
    return out


def test_the_seed_opens(results: Path) -> None:
    open_or_refuse(results, {})
    assert RunStore.open(results, SEED.name).runs


@given(data=st.data(), names=st.sets(st.sampled_from(CSV_FILES), min_size=1, max_size=2))
def test_damaged_csvs(results: Path, data: st.DataObject, names: set[str]) -> None:
    damaged = {name: data.draw(file_mutations(name), label=name) for name in sorted(names)}
    open_or_refuse(results, damaged)


@given(data=st.data(), with_csv=st.booleans())
def test_damaged_run_json(results: Path, data: st.DataObject, with_csv: bool) -> None:
    damaged = {"run.json": data.draw(file_mutations("run.json"), label="run.json")}
    if with_csv:
        name = data.draw(st.sampled_from(CSV_FILES))
        damaged[name] = data.draw(file_mutations(name), label=name)
    open_or_refuse(results, damaged)


#: (file, column, cell): a number out of range, where a float, a list and an int column are.
OUT_OF_RANGE = [
    ("runs.csv", "median_ms", "1e999"),
    ("runs.csv", "median_ms", "nan"),
    ("runs.csv", "process_medians_ms", "1.0;-inf"),
    ("ops.csv", "median_raw_us", "inf"),
    ("samples.csv", "latency_ms", "NaN"),
    ("runs.csv", "macs", "1e999"),
    ("runs.csv", "n", "9" * 400),
    ("ops.csv", "bytes", "1e300"),
    ("samples.csv", "index", str(-(2**63) - 1)),
]


@pytest.mark.parametrize(("name", "column", "cell"), OUT_OF_RANGE)
def test_a_number_out_of_range_is_refused_by_name(
    results: Path, name: str, column: str, cell: str
) -> None:
    # found by this fuzzing: ``1e999`` read back as infinity, and 400 nines as an integer no
    # float holds, and both reached every reader
    rows = list(csv.DictReader(io.StringIO(SEED_BYTES[name].decode("utf-8"))))
    rows[0][column] = cell
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    write_folder(results, {name: buf.getvalue().encode()})
    with pytest.raises(HarnessError, match=rf"{name}, line 2, column {column}"):
        RunStore.open(results, SEED.name)
