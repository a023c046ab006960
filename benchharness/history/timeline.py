"""The history of a results folder: its series, their change points and the likely causes.

``load_history`` updates the index (``history/index.py``), takes the series that match the
filters, and runs the change-point detector (``history/changepoint.py``) on each. A change is
reported at the point where the new level begins, with the step's ratio, its interval, and the
environment fields that differ between that point and the one before it: the likely cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness.errors import UsageError
from benchharness.history.changepoint import Fit, Step, detect
from benchharness.history.index import HistoryIndex, IndexUpdate
from benchharness.history.series import EnvChanges, Point, SeriesKey, env_changes


@dataclass(frozen=True)
class Change:
    """A step in a series: where it appeared, how large, and what changed there."""

    step: Step
    point: Point  # the first point at the new level
    previous: Point  # the last point at the old level
    causes: EnvChanges

    @property
    def index(self) -> int:
        return self.step.index

    def cause_text(self) -> str:
        """The environment changes as one line, or a note that none was recorded."""
        return describe_changes(self.causes) or "no recorded environment change"

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.step.index,
            "run_id": self.point.run_id,
            "previous_run_id": self.previous.run_id,
            "date": self.point.date,
            "ratio": self.step.ratio,
            "ci_low": self.step.low,
            "ci_high": self.step.high,
            "p_value": self.step.p_value,
            "causes": {k: {"before": a, "after": b} for k, (a, b) in self.causes.items()},
        }


@dataclass(frozen=True)
class SeriesHistory:
    """One series: its points oldest first, the fit through them and its changes."""

    key: SeriesKey
    points: tuple[Point, ...]
    fit: Fit
    changes: tuple[Change, ...]

    def summary(self) -> str:
        """``12 runs, 2 change points``."""
        runs, changes = len(self.points), len(self.changes)
        return (
            f"{runs} run{'s' if runs != 1 else ''}, "
            f"{changes} change point{'s' if changes != 1 else ''}"
        )

    def changed_fields(self, index: int) -> EnvChanges:
        """What the environment of point ``index`` changed against the point before it."""
        if index == 0:
            return {}
        return env_changes(self.points[index - 1], self.points[index])

    def as_dict(self) -> dict[str, Any]:
        points = []
        for i, p in enumerate(self.points):
            changed = {k: {"before": a, "after": b} for k, (a, b) in self.changed_fields(i).items()}
            points.append({**p.as_dict(), "changed": changed})
        return {
            **self.key.as_dict(),
            "label": self.key.label,
            "points": points,
            "segments": [
                {"start": s.start, "stop": s.stop, "level_ms": s.latency} for s in self.fit.segments
            ],
            "run_sd": self.fit.run_sd,
            "changes": [c.as_dict() for c in self.changes],
        }


@dataclass
class History:
    """Every matching series of a results folder, and what reading it turned up."""

    results_dir: Path
    series: list[SeriesHistory]
    update: IndexUpdate
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "results_dir": str(self.results_dir),
            "series": [s.as_dict() for s in self.series],
            "index": self.update.as_dict(),
            "warnings": self.warnings,
        }


def describe_changes(changes: EnvChanges) -> str:
    """``artifact_sha256 3f2a9c1b -> 77de0a51, runtime_version 1.20 -> 1.21``."""
    return ", ".join(
        f"{name} {_short(name, before)} -> {_short(name, after)}"
        for name, (before, after) in changes.items()
    )


#: Hashes are shown by their first characters, as git shows commits.
SHORT_HASH = 12


def _short(name: str, value: str | None) -> str:
    if value is None:
        return "(none)"
    return value[:SHORT_HASH] if name.endswith("sha256") else value


def series_history(key: SeriesKey, points: Sequence[Point]) -> SeriesHistory:
    """A series with its change points found and their causes named."""
    fit = detect([p.observation() for p in points])
    changes = tuple(
        Change(
            step=step,
            point=points[step.index],
            previous=points[step.index - 1],
            causes=env_changes(points[step.index - 1], points[step.index]),
        )
        for step in fit.changes
    )
    return SeriesHistory(key=key, points=tuple(points), fit=fit, changes=changes)


def _warnings(update: IndexUpdate) -> list[str]:
    damaged = [f"skipped run {name}: {why}" for name, why in sorted(update.damaged.items())]
    return [*update.warnings, *damaged]


@dataclass
class Selection:
    """The points of every matching series (oldest first), before any fit."""

    results_dir: Path
    series: dict[SeriesKey, list[Point]]
    update: IndexUpdate
    warnings: list[str] = field(default_factory=list)


def select_series(
    results_dir: Path,
    *,
    device: str | None = None,
    model: str | None = None,
    format: str | None = None,
    last: int | None = None,
    index_path: Path | None = None,
) -> Selection:
    """The series of ``results_dir`` matching every filter given, read through the index (with
    ``last``, each series' newest ``last`` points only).

    UsageError when the folder holds no run, or no series matches (naming what exists).
    """
    if not results_dir.is_dir():
        raise UsageError(f"no results folder {results_dir}; measure with `bench run` first")
    with HistoryIndex.open(results_dir, index_path) as index:
        update = index.update()
        grouped = index.points(device=device, model=model, format=format, last=last)
        if not grouped:
            raise UsageError(_nothing_matches(index, results_dir, device, model, format))
    return Selection(results_dir, grouped, update, _warnings(update))


def load_history(
    results_dir: Path,
    *,
    device: str | None = None,
    model: str | None = None,
    format: str | None = None,
    index_path: Path | None = None,
) -> History:
    """The history of every series in ``results_dir`` matching the filters (``select_series``),
    each with its change points."""
    selected = select_series(
        results_dir, device=device, model=model, format=format, index_path=index_path
    )
    return History(
        results_dir=results_dir,
        series=[series_history(k, pts) for k, pts in selected.series.items()],
        update=selected.update,
        warnings=selected.warnings,
    )


def _nothing_matches(
    index: HistoryIndex,
    results_dir: Path,
    device: str | None,
    model: str | None,
    format: str | None,
) -> str:
    asked = {"device": device, "model": model, "format": format}
    filters = [f"--{k} {v}" for k, v in asked.items() if v is not None]
    if not filters or not index.known("device"):
        return f"no measured series in {results_dir}; measure with `bench run` first"
    known = "; ".join(
        f"{k}s: {', '.join(index.known(k)) or '-'}" for k, v in asked.items() if v is not None
    )
    return f"no series matches {' '.join(filters)} in {results_dir} ({known})"
