"""Series and their points: every row of every run, grouped by what was measured where.

A series is one model in one format and precision, on one device with one runtime and thread
count (``SeriesKey``); every run that measured it (with ``bench run`` or ``bench import``) adds one
``Point``: its median, the interval of that median, its process medians and flags, and the
environment it was measured in (``ENV_FIELDS``: the artifact by content, the runtime and harness
versions, the CPU and its clocks, the host from ``run.json``). What differs between two points'
environments is what may explain a step between them (``env_changes``).

Built from typed ``RunRow``s; reading the folders is ``history/index.py``'s job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchharness.history.changepoint import Observation
from benchharness.results.schema import RunRow

#: The columns a series is keyed by (issue 28): what was measured, and on what.
SERIES_COLUMNS: tuple[str, ...] = ("device", "model", "format", "precision", "threads", "runtime")

#: Row columns that describe the environment of a point; a change in one may explain a step.
#: ``artifact_sha256`` is the model's artifact by content (a new export, another builder).
ROW_ENV_FIELDS: tuple[str, ...] = (
    "artifact_sha256",
    "runtime_version",
    "provider",
    "harness_version",
    "input_shape",
    "transport",
    "cpu_model",
    "governor",
    "max_freq_mhz",
    "worker_host",
)
#: ``run.json`` fields of the host that ran the harness (``api._host``), as ``host.NAME``.
HOST_ENV_FIELDS: tuple[str, ...] = ("hostname", "platform", "python")
ENV_FIELDS: tuple[str, ...] = (*ROW_ENV_FIELDS, *(f"host.{f}" for f in HOST_ENV_FIELDS))
#: Environment changes between two points: field -> (before, after); None where unrecorded.
EnvChanges = dict[str, tuple[str | None, str | None]]
#: Confidence of the ``ci95_*`` and ``ci99_*`` columns.
CI95, CI99 = 0.95, 0.99


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """What a series follows: one model/format/precision on one device/runtime/thread count."""

    device: str
    model: str
    format: str
    precision: str
    threads: int | None
    runtime: str

    @classmethod
    def of_row(cls, row: RunRow) -> SeriesKey:
        return cls(
            device=row.device,
            model=row.model,
            format=row.format,
            precision=row.precision,
            threads=row.threads,
            runtime=row.runtime or "",
        )

    @property
    def label(self) -> str:
        """``model format/precision runtime tN on device``, as tables and the gate name it."""
        threads = f" t{self.threads}" if self.threads is not None else ""
        runtime = f" {self.runtime}" if self.runtime else ""
        return f"{self.model} {self.format}/{self.precision}{runtime}{threads} on {self.device}"

    def sort_key(self) -> tuple[str, str, str, str, int, str]:
        return (
            self.device, self.model, self.format, self.precision, self.threads or 0, self.runtime
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in SERIES_COLUMNS}


@dataclass(frozen=True, slots=True)
class Point:
    """One run's measurement of a series (its rows of the series pooled: normally one)."""

    run_id: str
    started_at: str | None
    finished_at: str | None
    created: str | None  # run.json's: the date of a point whose rows have none (an import)
    median_ms: float
    ci_low_ms: float | None
    ci_high_ms: float | None
    ci_level: float | None  # 0.95 or 0.99: which columns the interval came from
    processes: int | None
    process_medians_ms: tuple[float, ...]
    flags: tuple[str, ...]
    status: str
    rows: int
    env: tuple[tuple[str, str], ...]  # (field, value) of ENV_FIELDS recorded, in that order

    @property
    def date(self) -> str:
        """When it was measured (ISO text), or "" when neither the rows nor run.json say."""
        return self.started_at or self.finished_at or self.created or ""

    @property
    def env_map(self) -> dict[str, str]:
        return dict(self.env)

    def sort_key(self) -> tuple[str, str, str]:
        # dates are to the second: two runs started in one second go by when they finished;
        # run ids start with their UTC start time, so they order undated (imported) points too
        return (self.date, self.finished_at or "", self.run_id)

    def observation(self) -> Observation:
        """The point as the change-point detector sees it: its process medians when it has two
        or more, else its median and the interval of it."""
        if len(self.process_medians_ms) >= 2:
            return Observation.from_values(self.process_medians_ms)
        return Observation.from_values(
            [self.median_ms],
            ci_low_ms=self.ci_low_ms,
            ci_high_ms=self.ci_high_ms,
            confidence=self.ci_level or CI95,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "created": self.created,
            "date": self.date,
            "median_ms": self.median_ms,
            "ci_low_ms": self.ci_low_ms,
            "ci_high_ms": self.ci_high_ms,
            "ci_level": self.ci_level,
            "processes": self.processes,
            "process_medians_ms": list(self.process_medians_ms),
            "flags": list(self.flags),
            "status": self.status,
            "rows": self.rows,
            "env": self.env_map,
        }


def _usable(row: RunRow) -> bool:
    """A row with a latency to follow: a failed row has none."""
    return row.median_ms is not None and math.isfinite(row.median_ms) and row.median_ms > 0


def _interval(row: RunRow) -> tuple[float | None, float | None, float | None]:
    """The row's interval of its median: the 95 % one, else the 99 % one (older rows)."""
    if row.ci95_low_ms is not None and row.ci95_high_ms is not None:
        return row.ci95_low_ms, row.ci95_high_ms, CI95
    if row.ci99_low_ms is not None and row.ci99_high_ms is not None:
        return row.ci99_low_ms, row.ci99_high_ms, CI99
    return None, None, None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_env(meta: Mapping[str, Any]) -> dict[str, str]:
    """The ``host.*`` environment fields of a run.json (absent in imported runs)."""
    host = meta.get("host")
    if not isinstance(host, Mapping):
        return {}
    return {f"host.{f}": _text(host.get(f)) for f in HOST_ENV_FIELDS if host.get(f) is not None}


def _env(rows: Sequence[RunRow], host: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The recorded environment of a point; rows of one run that disagree show every value."""
    out = []
    for name in ENV_FIELDS:
        if name in ROW_ENV_FIELDS:
            values = list(dict.fromkeys(_text(getattr(r, name)) for r in rows))
        else:
            values = [host.get(name, "")]
        text = ",".join(v for v in values if v)
        if text:
            out.append((name, text))
    return tuple(out)


def _pooled_median(rows: Sequence[RunRow]) -> float:
    values = sorted(r.median_ms for r in rows if r.median_ms is not None)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2.0


def make_point(
    run_id: str, rows: Sequence[RunRow], host: Mapping[str, str], created: str | None = None
) -> Point:
    """One run's point of a series from its rows of it (usable rows, at least one).

    Several rows (a log imported with several tool runs) pool as processes: each contributes its
    process medians, or its median as one; their interval is then the detector's to form.
    """
    if len(rows) == 1:
        row = rows[0]
        low, high, level = _interval(row)
        medians = tuple(row.process_medians_ms)
        processes = row.processes
        median = row.median_ms
        assert median is not None
    else:
        low = high = level = None
        medians = tuple(v for r in rows for v in (r.process_medians_ms or [r.median_ms or 0.0]))
        processes = sum(r.processes or 1 for r in rows)
        median = _pooled_median(rows)
    started = [r.started_at for r in rows if r.started_at]
    finished = [r.finished_at for r in rows if r.finished_at]
    return Point(
        run_id=run_id,
        started_at=min(started) if started else None,
        finished_at=max(finished) if finished else None,
        created=created,
        median_ms=median,
        ci_low_ms=low,
        ci_high_ms=high,
        ci_level=level,
        processes=processes,
        process_medians_ms=medians,
        flags=tuple(dict.fromkeys(f for r in rows for f in r.flag_list)),
        status="ok" if all(r.ok for r in rows) else "partial",
        rows=len(rows),
        env=_env(rows, host),
    )


def run_points(
    run_id: str, rows: Iterable[RunRow], meta: Mapping[str, Any]
) -> list[tuple[SeriesKey, Point]]:
    """Every series point one run folder holds (its ``runs.csv`` rows and ``run.json``)."""
    grouped: dict[SeriesKey, list[RunRow]] = {}
    for row in rows:
        if _usable(row):
            grouped.setdefault(SeriesKey.of_row(row), []).append(row)
    host = run_env(meta)
    created = meta.get("created")
    created_text = created if isinstance(created, str) else None
    return [
        (key, make_point(run_id, members, host, created_text)) for key, members in grouped.items()
    ]


def env_changes(before: Point, after: Point) -> EnvChanges:
    """The environment fields that differ between two points: field -> (before, after)."""
    old, new = before.env_map, after.env_map
    return {
        name: (old.get(name), new.get(name))
        for name in ENV_FIELDS
        if old.get(name) != new.get(name)
    }


def group_series(
    pairs: Iterable[tuple[SeriesKey, Point]],
) -> dict[SeriesKey, list[Point]]:
    """Points by series, each series oldest first; series in key order."""
    grouped: dict[SeriesKey, list[Point]] = {}
    for key, point in pairs:
        grouped.setdefault(key, []).append(point)
    return {
        key: sorted(grouped[key], key=Point.sort_key)
        for key in sorted(grouped, key=SeriesKey.sort_key)
    }
