"""The results folder: its CSV schema, atomic writes, and loading runs back.

A run folder ``results/RUN_ID/`` holds ``run.json``, ``runs.csv``, ``ops.csv`` and ``samples.csv``.
Each CSV is rewritten whole to a temporary file and renamed over the old one after every job, so
an interrupted run (Ctrl-C, a killed process, a full disk) leaves every finished row intact and
never a half-written line.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import io
import json
import os
import re
import secrets
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from benchharness.atomic import write_text_atomic
from benchharness.errors import ResultsError
from benchharness.lockfile import held
from benchharness.results.memory_columns import MEMORY_COLUMNS, estimate_bytes
from benchharness.results.schema import (
    INT,
    OPS_COLUMNS,
    RUNS_COLUMNS,
    SAMPLES_COLUMNS,
    SCHEMA_VERSION,
    OpRow,
    Record,
    RunRow,
    SampleRow,
    cell,
    parse_cell,
)

R = TypeVar("R", bound=Record)

#: Where results go unless ``--results-dir`` or ``BENCH_RESULTS_DIR`` says otherwise.
DEFAULT_RESULTS_DIR = Path("results")

#: A run id names a folder here and a work directory on every device (removed with ``rm -rf``
#: when the run ends): a letter or digit first, so ``.``, ``..`` and ``-rf`` never pass.
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: A run.json is a few KB (the request, the host, versions); far more is not one bench wrote.
MAX_META_BYTES = 16 * 2**20
#: Held by the process writing a run (``RunStore.writing``).
LOCK_FILE = ".writer.lock"
#: errno -> what to do, for writes into a results folder.
_WRITE_ADVICE = {
    errno.ENOSPC: "no space left on this host; free space or pass --results-dir on a larger disk",
    errno.EDQUOT: "disk quota exceeded; free space or pass --results-dir elsewhere",
    errno.EROFS: "the file system is read-only; pass --results-dir somewhere writable",
    errno.EACCES: "permission denied; fix the folder's owner or mode, or pass --results-dir",
    errno.EPERM: "permission denied; fix the folder's owner or mode, or pass --results-dir",
}


def validate_run_id(run_id: str) -> str:
    """``run_id`` if it is a valid run id, else ResultsError saying what one looks like."""
    if not RUN_ID_RE.match(run_id) or "\n" in run_id:
        raise ResultsError(
            f"{run_id!r} is not a valid run id: letters, digits, '.', '_' and '-' only, a letter "
            "or digit first, at most 128 (e.g. 20261201-120000-ab12)"
        )
    return run_id


def _runs_v1_to_v2(row: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no memory columns: nothing was measured, the estimate is its own columns.
    (Rows are text cells here, as read from the file.)"""
    row = {**dict.fromkeys(MEMORY_COLUMNS, ""), **row}
    try:
        weights = parse_cell(INT, row.get("model_bytes"))
        activations = parse_cell(INT, row.get("activation_bytes"))
    except ValueError:
        return row  # the typed read that follows names the damaged cell
    row["mem_estimate_bytes"] = cell(estimate_bytes(weights, activations))
    return row


#: ``runs.csv`` row migrations, by the version they upgrade from (ops and samples kept their
#: columns, so only their version number moves).
MIGRATIONS = {1: _runs_v1_to_v2}


def migrate_rows(path: Path, rows: list[dict[str, Any]], *, runs: bool) -> list[dict[str, Any]]:
    """Rows (text cells) of an older schema brought to ``SCHEMA_VERSION``; ResultsError for a
    newer one."""
    out = []
    for lineno, row in enumerate(rows, start=2):
        try:
            version = parse_cell(INT, row.get("schema_version"))
        except ValueError:
            raise ResultsError(
                f"{path}, line {lineno}, column schema_version: expected a number, got "
                f"{row.get('schema_version')!r}; the file was edited or damaged"
            ) from None
        if version is not None and version > SCHEMA_VERSION:
            raise ResultsError(
                f"{path} has schema_version {version}; this harness reads up to "
                f"{SCHEMA_VERSION}: use the bench version that wrote it"
            )
        while version is not None and version < SCHEMA_VERSION:
            step = MIGRATIONS.get(version)
            if step is None:
                raise ResultsError(f"{path} has schema_version {version}, which no migration reads")
            row = step(row) if runs else dict(row)
            version += 1
            row["schema_version"] = str(version)
        out.append(row)
    return out


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC timestamp plus a short random suffix."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half
    (``benchharness.atomic``).

    An OSError (a full disk, a read-only or foreign folder) is a ResultsError that says what to
    do; the old file stays as it was.
    """
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        advice = _WRITE_ADVICE.get(exc.errno or 0, exc.strerror or str(exc))
        raise ResultsError(f"cannot write {path}: {advice}") from exc


def rows_to_csv(columns: Sequence[str], rows: Iterable[Record]) -> str:
    buf = io.StringIO()
    # CRLF, as RFC 4180 has it: the csv module quotes a cell only for the characters of the line
    # terminator, so with "\n" alone a device's "\r" in an error message would split the row
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(row.cells())
    return buf.getvalue()


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV as written (text cells); [] when the file does not exist."""
    if not path.exists():
        return []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}; the file may be damaged") from exc


def read_meta(path: Path) -> dict[str, Any]:
    """``run.json``: a JSON object of bounded size; anything else is a ResultsError."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_META_BYTES + 1)
        if len(data) > MAX_META_BYTES:
            raise ResultsError(
                f"{path} is over {MAX_META_BYTES // 2**20} MiB; a run.json is a few KB: the file "
                "is not one bench wrote"
            )
        meta = json.loads(data.decode("utf-8"))
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, too deep, huge integers
        raise ResultsError(f"cannot read {path}: {exc}; the file is damaged") from None
    if not isinstance(meta, dict):
        raise ResultsError(f"{path} holds {type(meta).__name__}, expected a JSON object")
    return meta


def read_records(path: Path, record: type[R], *, runs: bool = False) -> list[R]:
    """The rows of one of the run's CSVs as typed records, migrated to ``SCHEMA_VERSION``."""
    raw = read_csv_rows(path)
    for lineno, cells in enumerate(raw, start=2):
        if None in cells:  # more cells than the header names: a damaged line
            raise ResultsError(f"{path}, line {lineno}: more cells than columns")
    return [
        record.from_cells(cells, f"{path}, line {lineno}")
        for lineno, cells in enumerate(migrate_rows(path, raw, runs=runs), start=2)
    ]


@dataclass
class RunStore:
    """One run folder, loaded into memory and written back atomically after every change."""

    path: Path
    runs: list[RunRow] = field(default_factory=list)
    ops: list[OpRow] = field(default_factory=list)
    samples: list[SampleRow] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the folder's name is the run id every device's work directory is named after
        validate_run_id(self.path.name)

    @property
    def run_id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, results_dir: Path, run_id: str | None = None) -> RunStore:
        run_id = validate_run_id(run_id) if run_id is not None else new_run_id()
        path = results_dir / run_id
        if path.exists():
            raise ResultsError(f"results folder {path} already exists; use --resume {run_id}")
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            advice = _WRITE_ADVICE.get(exc.errno or 0, exc.strerror or str(exc))
            raise ResultsError(f"cannot create {path}: {advice}") from exc
        return cls(path=path)

    @classmethod
    def open(cls, results_dir: Path, run_id_or_path: str) -> RunStore:
        """Open ``results_dir/RUN_ID`` or a results folder given by path (its real name, which
        must be a valid run id, is the run id: ``.`` inside a run folder is that run)."""
        store = cls.at(results_dir, run_id_or_path)
        store.load()
        return store

    @classmethod
    def at(cls, results_dir: Path, run_id_or_path: str) -> RunStore:
        """The run folder, not yet loaded (to take ``writing()`` before reading it)."""
        path = Path(run_id_or_path)
        if (path / "runs.csv").exists() or (path / "run.json").exists():
            path = path.resolve()
        else:
            path = results_dir / validate_run_id(run_id_or_path)
        if not path.is_dir():
            known = list_runs(results_dir)
            hint = f"; known runs: {', '.join(known[-5:])}" if known else ""
            raise ResultsError(f"no results folder {path}{hint}")
        return cls(path=path)

    def load(self) -> None:
        """Read run.json and the CSVs (typed) from the folder."""
        path, store = self.path, self
        meta_path = path / "run.json"
        if meta_path.exists():
            store.meta = read_meta(meta_path)
        store.runs = read_records(path / "runs.csv", RunRow, runs=True)
        store.ops = read_records(path / "ops.csv", OpRow)
        store.samples = read_records(path / "samples.csv", SampleRow)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the run for writing: a second ``bench`` process (two ``--resume`` of one run)
        is refused at once, before it loads rows that the first is still adding to."""
        with held(
            self.path / LOCK_FILE,
            f"bench pid {os.getpid()} on {socket.gethostname()}",
            mode=0o644,
            busy=lambda holder: ResultsError(
                f"run {self.run_id} is being written by {holder}; wait for it to finish "
                "(bench results shows it meanwhile), then resume it if it stopped early"
            ),
            unopened=lambda exc: ResultsError(f"cannot lock {self.path}: {exc.strerror or exc}"),
        ):
            yield

    def write_meta(self) -> None:
        atomic_write_text(self.path / "run.json", json.dumps(self.meta, indent=2, default=str))

    def finished_job_ids(self) -> set[str]:
        return {r.job_id for r in self.runs if r.status == "ok"}

    def add_job(
        self,
        run_row: RunRow,
        ops_rows: Sequence[OpRow] = (),
        sample_rows: Sequence[SampleRow] = (),
    ) -> None:
        """Record one finished job (replacing an earlier attempt of the same job) and persist."""
        job_id = run_row.job_id
        run_id = self.run_id
        self.runs = [r for r in self.runs if r.job_id != job_id]
        self.ops = [r for r in self.ops if r.job_id != job_id]
        self.samples = [r for r in self.samples if r.job_id != job_id]
        self.runs.append(
            dataclasses.replace(run_row, schema_version=SCHEMA_VERSION, run_id=run_id)
        )
        self.ops.extend(
            dataclasses.replace(r, schema_version=SCHEMA_VERSION, run_id=run_id, job_id=job_id)
            for r in ops_rows
        )
        self.samples.extend(
            dataclasses.replace(r, schema_version=SCHEMA_VERSION, run_id=run_id, job_id=job_id)
            for r in sample_rows
        )
        self.flush()

    def flush(self) -> None:
        # samples first, runs last: a runs.csv row is the commit mark of its job on resume
        atomic_write_text(self.path / "samples.csv", rows_to_csv(SAMPLES_COLUMNS, self.samples))
        atomic_write_text(self.path / "ops.csv", rows_to_csv(OPS_COLUMNS, self.ops))
        atomic_write_text(self.path / "runs.csv", rows_to_csv(RUNS_COLUMNS, self.runs))


def list_runs(results_dir: Path) -> list[str]:
    if not results_dir.is_dir():
        return []
    return sorted(p.name for p in results_dir.iterdir() if (p / "runs.csv").exists())
