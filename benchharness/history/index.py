"""An SQLite index of the series points of every run folder under a results folder.

The CSVs stay the record: the index (``RESULTS_DIR/.history.sqlite``) only saves re-reading them.
Each run folder is known by its name and the modification time and size of its ``runs.csv`` and
``run.json``; ``update`` re-reads a folder only when that stamp changed (a resumed run, a new
one), forgets folders that are gone, and keeps a folder whose CSV cannot be read as damaged (with
why) so that every query warns about it without reading it again. ``points`` then answers from
the index alone: ``bench history`` over 10,000 runs stats 10,000 files and runs one query.

The index is rebuilt from scratch when its layout (``INDEX_VERSION``) or the results schema
changed, or when SQLite finds it damaged; where the results folder is read-only it lives in
memory for the one command.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness.errors import ResultsError
from benchharness.history.series import (
    SERIES_COLUMNS,
    Point,
    SeriesKey,
    group_series,
    run_points,
)
from benchharness.results.schema import SCHEMA_VERSION, RunRow
from benchharness.results.store import RUN_ID_RE, read_records

#: The index file inside the results folder (a dot-file: no run id starts with a dot).
INDEX_FILE = ".history.sqlite"
#: Bumped whenever the tables or what a point holds change: an older index is rebuilt.
INDEX_VERSION = 1
#: Seconds a second ``bench history`` waits for another's update of the same index.
BUSY_TIMEOUT_S = 30.0
#: A folder's stamp: (runs.csv mtime_ns, size, run.json mtime_ns, size); -1 where absent.
Stamp = tuple[int, int, int, int]

_TABLES = """
CREATE TABLE IF NOT EXISTS info (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    name TEXT PRIMARY KEY,
    runs_mtime_ns INTEGER NOT NULL, runs_size INTEGER NOT NULL,
    meta_mtime_ns INTEGER NOT NULL, meta_size INTEGER NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS points (
    folder TEXT NOT NULL REFERENCES folders(name) ON DELETE CASCADE,
    device TEXT NOT NULL, model TEXT NOT NULL, format TEXT NOT NULL, precision TEXT NOT NULL,
    threads INTEGER, runtime TEXT NOT NULL,
    run_id TEXT NOT NULL, started_at TEXT, finished_at TEXT, created TEXT,
    median_ms REAL NOT NULL, ci_low_ms REAL, ci_high_ms REAL, ci_level REAL,
    processes INTEGER, process_medians TEXT NOT NULL, flags TEXT NOT NULL,
    status TEXT NOT NULL, rows INTEGER NOT NULL, env TEXT NOT NULL,
    sort_date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS points_series ON points (device, model, format);
CREATE INDEX IF NOT EXISTS points_folder ON points (folder);
"""
#: What an index must have been built with to be reused.
_INFO = {"index_version": str(INDEX_VERSION), "schema_version": str(SCHEMA_VERSION)}
_POINT_COLUMNS = (
    "device", "model", "format", "precision", "threads", "runtime",
    "run_id", "started_at", "finished_at", "created", "median_ms", "ci_low_ms", "ci_high_ms",
    "ci_level", "processes", "process_medians", "flags", "status", "rows", "env",
)  # fmt: skip


@dataclass
class IndexUpdate:
    """What one ``update`` did: folders read, left alone, forgotten; damaged ones and why."""

    read: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)  # every damaged folder, not just new
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": len(self.read),
            "unchanged": self.unchanged,
            "removed": len(self.removed),
            "damaged": self.damaged,
        }


@dataclass(frozen=True)
class FolderRead:
    """A run folder as read: its points, or why it could not be (``error``)."""

    points: list[tuple[SeriesKey, Point]]
    error: str | None = None
    warning: str | None = None


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (-1, -1)
    return (info.st_mtime_ns, info.st_size)


def folder_stamp(folder: Path) -> Stamp:
    return (*_stat(folder / "runs.csv"), *_stat(folder / "run.json"))


def run_folders(results_dir: Path) -> dict[str, Stamp]:
    """Every run folder (a valid run id holding a runs.csv) and its stamp."""
    out: dict[str, Stamp] = {}
    try:
        entries = list(os.scandir(results_dir))
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise ResultsError(f"cannot list {results_dir}: {exc.strerror or exc}") from exc
    for entry in entries:
        if not RUN_ID_RE.match(entry.name) or not entry.is_dir():
            continue
        stamp = folder_stamp(Path(entry.path))
        if stamp[0] >= 0:
            out[entry.name] = stamp
    return out


def read_folder(folder: Path) -> FolderRead:
    """The points of one run folder; a damaged runs.csv is an error, a damaged run.json only a
    warning (its host fields are then unknown)."""
    try:
        rows = read_records(folder / "runs.csv", RunRow, runs=True)
    except ResultsError as exc:
        return FolderRead(points=[], error=str(exc))
    meta: dict[str, Any] = {}
    warning = None
    meta_path = folder / "run.json"
    if meta_path.exists():
        try:
            loaded = json.loads(meta_path.read_text(encoding="utf-8"))
            meta = loaded if isinstance(loaded, dict) else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            warning = f"{meta_path}: {exc}; its host fields are left out"
    return FolderRead(points=run_points(folder.name, rows, meta), warning=warning)


def _point_values(folder: str, key: SeriesKey, p: Point) -> tuple[Any, ...]:
    return (
        folder, key.device, key.model, key.format, key.precision, key.threads, key.runtime,
        p.run_id, p.started_at, p.finished_at, p.created, p.median_ms, p.ci_low_ms, p.ci_high_ms,
        p.ci_level, p.processes, ";".join(repr(v) for v in p.process_medians_ms),
        ";".join(p.flags), p.status, p.rows, json.dumps(p.env), p.date,
    )  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _key(*columns: Any) -> SeriesKey:
    """One key object per series, however many points share it."""
    return SeriesKey(*columns)


@functools.lru_cache(maxsize=4096)
def _env_of(text: str) -> tuple[tuple[str, str], ...]:
    """A stored environment; runs of a series mostly share one, so each text is parsed once."""
    return tuple((str(k), str(v)) for k, v in json.loads(text))


def _point_of(row: tuple[Any, ...]) -> tuple[SeriesKey, Point]:
    """A ``points`` row (``_POINT_COLUMNS`` in order) as its series and point."""
    (device, model, fmt, precision, threads, runtime, run_id, started_at, finished_at, created,
     median, low, high, level, processes, medians, flags, status, rows, env) = row  # fmt: skip
    key = _key(device, model, fmt, precision, threads, runtime)
    point = Point(
        run_id=run_id,
        started_at=started_at,
        finished_at=finished_at,
        created=created,
        median_ms=median,
        ci_low_ms=low,
        ci_high_ms=high,
        ci_level=level,
        processes=processes,
        process_medians_ms=tuple(map(float, medians.split(";"))) if medians else (),
        flags=tuple(flags.split(";")) if flags else (),
        status=status,
        rows=rows,
        env=_env_of(env),
    )
    return key, point


class HistoryIndex:
    """The index of one results folder (``open`` it, ``update`` it, ask it for ``points``)."""

    def __init__(self, results_dir: Path, db: sqlite3.Connection, warnings: Sequence[str] = ()):
        self.results_dir = results_dir
        self.db = db
        self.db.execute("PRAGMA foreign_keys = ON")
        self.open_warnings = list(warnings)

    @classmethod
    def open(cls, results_dir: Path, path: Path | None = None) -> HistoryIndex:
        """The index at ``path`` (default: ``results_dir/.history.sqlite``), rebuilt when stale
        or damaged; in memory when it cannot be written there."""
        path = path or results_dir / INDEX_FILE
        problem = _unwritable(path)
        if problem is None:
            try:
                return cls(results_dir, _connect(path))
            except (sqlite3.Error, OSError) as exc:
                problem = str(exc)
        warning = f"cannot keep the history index at {path} ({problem}); every run was read"
        return cls(results_dir, _prepare(sqlite3.connect(":memory:")), [warning])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> HistoryIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self) -> IndexUpdate:
        """Bring the index in line with the folders (see the module docstring)."""
        result = IndexUpdate(warnings=list(self.open_warnings))
        current = run_folders(self.results_dir)
        with self._transaction():
            known = {
                name: ((runs_mtime, runs_size, meta_mtime, meta_size), error)
                for name, runs_mtime, runs_size, meta_mtime, meta_size, error in self.db.execute(
                    "SELECT name, runs_mtime_ns, runs_size, meta_mtime_ns, meta_size, error "
                    "FROM folders"
                )
            }
            for name in sorted(set(known) - set(current)):
                self.db.execute("DELETE FROM folders WHERE name = ?", (name,))
                result.removed.append(name)
            for name in sorted(current):
                stamp = current[name]
                if name in known and known[name][0] == stamp:
                    result.unchanged += 1
                    error = known[name][1]
                else:
                    error = self._reindex(name, stamp, result)
                if error is not None:
                    result.damaged[name] = error
        return result

    def _reindex(self, name: str, stamp: Stamp, result: IndexUpdate) -> str | None:
        read = read_folder(self.results_dir / name)
        result.read.append(name)
        if read.warning:
            result.warnings.append(read.warning)
        self.db.execute("DELETE FROM folders WHERE name = ?", (name,))
        self.db.execute("INSERT INTO folders VALUES (?, ?, ?, ?, ?, ?)", (name, *stamp, read.error))
        marks = ", ".join("?" * (len(_POINT_COLUMNS) + 2))
        self.db.executemany(
            f"INSERT INTO points (folder, {', '.join(_POINT_COLUMNS)}, sort_date) VALUES ({marks})",
            [_point_values(name, key, point) for key, point in read.points],
        )
        return read.error

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE: a second updater waits here rather than failing at its first write
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def points(
        self,
        *,
        device: str | None = None,
        model: str | None = None,
        format: str | None = None,
        last: int | None = None,
    ) -> dict[SeriesKey, list[Point]]:
        """The indexed points, by series (oldest first), of the series matching every filter;
        with ``last``, only each series' newest ``last`` points."""
        where: list[str] = []
        args: list[str | int] = []
        for column, value in (("device", device), ("model", model), ("format", format)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        columns = ", ".join(_POINT_COLUMNS)
        query = f"SELECT {columns} FROM points{clause}"
        if last is not None:
            # the newest points of each series, counted in the order history sorts them
            query = (
                f"SELECT {columns} FROM (SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY "
                f"{', '.join(SERIES_COLUMNS)} ORDER BY sort_date DESC, "
                "COALESCE(finished_at, '') DESC, run_id DESC) AS newest "
                f"FROM points{clause}) WHERE newest <= ?"
            )
            args.append(last)
        return group_series(_point_of(r) for r in self.db.execute(query, args))

    def known(self, column: str) -> list[str]:
        """The distinct values of a series column (``device``, ``model``, ``format``)."""
        if column not in ("device", "model", "format"):
            raise ValueError(f"not a filter column: {column}")
        return [r[0] for r in self.db.execute(f"SELECT DISTINCT {column} FROM points ORDER BY 1")]


def _unwritable(path: Path) -> str | None:
    """Why the index file cannot be written, or None (SQLite would fail only at the update)."""
    target = path if path.exists() else path.parent
    if not target.is_dir() and target is path.parent:
        return f"no folder {target}"
    return None if os.access(target, os.W_OK) else f"{target} is read-only"


def _prepare(db: sqlite3.Connection) -> sqlite3.Connection:
    # autocommit mode: transactions are begun explicitly (_transaction)
    db.isolation_level = None
    db.executescript(_TABLES)
    return db


def _connect(path: Path) -> sqlite3.Connection:
    """A connection to an index file that matches this harness, rebuilt when it does not."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        db.isolation_level = None
        if _info(db) == _INFO:
            return db
    except sqlite3.DatabaseError:
        pass  # not an SQLite file any more: rebuilt below
    db.close()
    path.unlink(missing_ok=True)
    db = _prepare(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S))
    db.executemany("INSERT INTO info VALUES (?, ?)", _INFO.items())
    return db


def _info(db: sqlite3.Connection) -> dict[str, str]:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "info" not in tables:
        return {}
    return {str(k): str(v) for k, v in db.execute("SELECT name, value FROM info")}
