"""The CI gate of ``bench gate``, as data: does the newest run of a series open a regression?

For each series, the newest point is set against the stable segment before it: the last
segment of the change-point fit over the earlier points (the latest ``WINDOW`` of them,
``changepoint.newest_step``). The series
regressed when the ratio newest / baseline is at least ``1 + threshold`` and significant
(one-sided p below ``ALPHA``, the level of ``bench compare``). A regression that appeared earlier
and persists is not the newest run's doing: that run's gate failed when it was the newest.
The decision names the series, the step with its interval, the run it appeared in and the
environment changes at that run (the likely cause).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchharness.analysis.comparison import ALPHA, DEFAULT_THRESHOLD
from benchharness.history.changepoint import NewestStep, newest_step
from benchharness.history.series import EnvChanges, Point, SeriesKey, env_changes
from benchharness.history.timeline import describe_changes

#: The newest run is set against at most this many runs before it: the stable segment it is
#: compared with is the last of their fit, and runs further back cannot move that (they would
#: only cost time: the gate runs in CI over every series).
WINDOW = 200
#: p-values below this print as "< 1e-4": more digits would claim a precision the model lacks.
P_FLOOR = 1e-4
P_FLOOR_TEXT = "1e-4"


@dataclass(frozen=True)
class SeriesVerdict:
    """The gate's finding on one series."""

    key: SeriesKey
    newest: Point
    previous: Point | None
    baseline: tuple[Point, ...]  # the stable segment the newest point is set against
    step: NewestStep | None  # None: a single run, nothing to compare
    regressed: bool
    causes: EnvChanges = field(default_factory=dict)

    def describe(self) -> str:
        """One line: the series, the step, since which run, against what, the likely cause."""
        if self.step is None:
            return f"{self.key.label}: one run ({self.newest.run_id}), nothing to compare yet"
        s = self.step
        change = f"{s.ratio - 1:+.1%} (x{s.ratio:.3f} [{s.low:.3f}, {s.high:.3f}], {_p(s)})"
        first, last = self.baseline[0], self.baseline[-1]
        against = (
            f"against {len(self.baseline)} run{'s' if len(self.baseline) > 1 else ''} "
            f"{first.run_id}..{last.run_id} at {s.baseline.latency:.4g} ms"
        )
        if not self.regressed:
            return f"{self.key.label}: {change} in run {self.newest.run_id} {against}: ok"
        cause = describe_changes(self.causes) or "no recorded environment change"
        return (
            f"{self.key.label} regressed by {change} since run {self.newest.run_id}"
            f"{_on(self.newest)} {against}; likely cause: {cause}"
        )

    def as_dict(self) -> dict[str, Any]:
        s = self.step
        return {
            **self.key.as_dict(),
            "label": self.key.label,
            "regressed": self.regressed,
            "newest_run_id": self.newest.run_id,
            "newest_date": self.newest.date,
            "newest_median_ms": self.newest.median_ms,
            "previous_run_id": self.previous.run_id if self.previous else None,
            "baseline_run_ids": [p.run_id for p in self.baseline],
            "baseline_ms": s.baseline.latency if s else None,
            "ratio": s.ratio if s else None,
            "ci_low": s.low if s else None,
            "ci_high": s.high if s else None,
            "p_value": s.p_slower if s else None,
            "causes": {k: {"before": a, "after": b} for k, (a, b) in self.causes.items()},
            "message": self.describe(),
        }


def _p(step: NewestStep) -> str:
    return f"p < {P_FLOOR_TEXT}" if step.p_slower < P_FLOOR else f"p = {step.p_slower:.2g}"


def _on(point: Point) -> str:
    return f" ({point.date})" if point.date else ""


@dataclass(frozen=True)
class GateDecision:
    """Every series' verdict; the gate passes when none regressed."""

    threshold: float
    alpha: float
    verdicts: tuple[SeriesVerdict, ...]

    @property
    def regressions(self) -> list[SeriesVerdict]:
        return [v for v in self.verdicts if v.regressed]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def message(self) -> str:
        """Why the gate failed (every regressed series), or that it passed."""
        if self.passed:
            return (
                f"no newest run opens a regression of {self.threshold * 100:g}% or more in "
                f"{len(self.verdicts)} series"
            )
        return "; ".join(v.describe() for v in self.regressions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "message": self.message(),
            "series": [v.as_dict() for v in self.verdicts],
        }


def judge(
    key: SeriesKey, points: Sequence[Point], threshold: float, alpha: float = ALPHA
) -> SeriesVerdict:
    """The gate's verdict on one series, oldest point first (see the module docstring)."""
    newest = points[-1]
    recent = points[-WINDOW:]
    step = newest_step([p.observation() for p in recent])
    if step is None:
        return SeriesVerdict(key, newest, None, (), None, regressed=False)
    previous = points[-2]
    baseline = recent[step.baseline.start : step.baseline.stop]
    regressed = step.ratio >= 1.0 + threshold and step.p_slower < alpha
    return SeriesVerdict(
        key=key,
        newest=newest,
        previous=previous,
        baseline=tuple(baseline),
        step=step,
        regressed=regressed,
        causes=env_changes(previous, newest),
    )


def decide(
    series: Mapping[SeriesKey, Sequence[Point]],
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = ALPHA,
) -> GateDecision:
    """The gate over every series given (points oldest first)."""
    return GateDecision(
        threshold=threshold,
        alpha=alpha,
        verdicts=tuple(judge(k, pts, threshold, alpha) for k, pts in series.items()),
    )
