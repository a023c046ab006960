"""How good a latency prediction is (docs/method.md, "Predicting latency"), and the MACs lines.

* share of models within +-10 % and +-5 % of the measured median (nn-Meter's headline figure);
* RMSPE, the root mean square of the relative errors, in percent;
* Spearman's rank correlation of predicted and measured latencies (does it order models right?);
* how many of the measurements **resolve** +-10 % (their own 99 % interval of the median lies
  inside it), and the share within +-10 % over those alone: on a host whose processes fall into
  modes, a model's median can be uncertain by more than the band it is scored on, and a miss on
  such a model says as much about the measurement as about the prediction.

The baselines are the FLOPs predictors of the literature: a least-squares line of latency on
MACs, and a plane on MACs and bytes moved, each fitted on the same models the predictor learned
from. Their fits minimise relative error (weights 1/latency), as the metrics judge it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: The error bands of the issue: nn-Meter reports +-10 %, and +-5 % separates good from close.
BANDS = (0.10, 0.05)


@dataclass(frozen=True)
class Scores:
    n: int
    within_10: float
    within_5: float
    rmspe: float
    spearman: float
    coverage: float = math.nan  # share of measured latencies inside their interval (predictor)
    resolved: int = 0  # measurements whose own 99 % interval lies inside +-10 % (resolves)
    within_10_resolved: float = math.nan  # share within +-10 % over the resolved ones

    def to_json(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "within_10": self.within_10,
            "within_5": self.within_5,
            "rmspe": self.rmspe,
            "spearman": self.spearman,
            "coverage": self.coverage,
            "resolved": self.resolved,
            "within_10_resolved": self.within_10_resolved,
        }


def resolves(
    measured: float, low: float | None, high: float | None, band: float = BANDS[0]
) -> bool:
    """Whether a measurement's own interval ``(low, high)`` around ``measured`` lies inside
    ``measured * (1 +- band)``: whether it can tell a prediction ``band`` off from its own noise.
    A measurement without an interval resolves nothing."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return False
    if not measured > 0:
        return False
    return measured * (1.0 - band) <= low and high <= measured * (1.0 + band)


def coverage(
    intervals: Sequence[tuple[float | None, float | None]], measured: Sequence[float]
) -> float:
    """The share of ``measured`` inside its ``(low, high)`` interval, over the models that have
    one (NaN when none has)."""
    inside = [
        low <= m <= high
        for (low, high), m in zip(intervals, measured, strict=True)
        if low is not None and high is not None and math.isfinite(m)
    ]
    return float(np.mean(inside)) if inside else math.nan


def relative_errors(predicted: Sequence[float], measured: Sequence[float]) -> list[float]:
    return [p / m - 1.0 if m > 0 else math.nan for p, m in zip(predicted, measured, strict=True)]


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho (NaN for fewer than 3 pairs or a constant side)."""
    if len(a) < 3:
        return math.nan
    from scipy.stats import spearmanr

    rho = spearmanr(a, b).statistic
    return float(rho) if rho is not None and math.isfinite(float(rho)) else math.nan


def scores(
    predicted: Sequence[float],
    measured: Sequence[float],
    measured_intervals: Sequence[tuple[float | None, float | None]] | None = None,
) -> Scores:
    """The scores of ``predicted`` against ``measured``; with each measurement's own interval
    (``measured_intervals``), also how many resolve +-10 % and the share within it over those."""
    bounds = measured_intervals or [(None, None)] * len(measured)
    kept = [
        (p, m, b)
        for p, m, b in zip(predicted, measured, bounds, strict=True)
        if math.isfinite(p) and math.isfinite(m) and m > 0
    ]
    if not kept:
        return Scores(0, math.nan, math.nan, math.nan, math.nan)
    p = [x for x, _, _ in kept]
    m = [y for _, y, _ in kept]
    err = np.array(relative_errors(p, m))
    resolved = np.array([resolves(y, *b) for _, y, b in kept], dtype=bool)
    return Scores(
        n=len(kept),
        within_10=float(np.mean(np.abs(err) <= BANDS[0])),
        within_5=float(np.mean(np.abs(err) <= BANDS[1])),
        rmspe=float(np.sqrt(np.mean(err**2)) * 100.0),
        spearman=spearman(p, m),
        resolved=int(resolved.sum()),
        within_10_resolved=(
            float(np.mean(np.abs(err[resolved]) <= BANDS[0])) if resolved.any() else math.nan
        ),
    )


@dataclass(frozen=True)
class LinearFit:
    """``latency = sum(coef * x) + intercept`` over named inputs (MACs, bytes)."""

    inputs: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float

    @classmethod
    def fit(cls, inputs: tuple[str, ...], x: np.ndarray, y: np.ndarray) -> LinearFit:
        if len(y) == 0:
            return cls(inputs, tuple(0.0 for _ in inputs), 0.0)
        w = 1.0 / np.maximum(y, 1e-12)
        design = np.column_stack([x, np.ones(len(y))]) * w[:, None]
        if len(y) <= x.shape[1]:  # too few models for an intercept: a line through zero
            design = x * w[:, None]
            coef, *_ = np.linalg.lstsq(design, y * w, rcond=None)
            return cls(inputs, tuple(float(c) for c in coef), 0.0)
        coef, *_ = np.linalg.lstsq(design, y * w, rcond=None)
        return cls(inputs, tuple(float(c) for c in coef[:-1]), float(coef[-1]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.asarray(x) @ np.asarray(self.coef) + self.intercept
        return out
