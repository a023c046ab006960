"""How good a latency prediction is (docs/method.md, "Predicting latency"), and the MACs lines.

* share of models within +-10 % and +-5 % of the measured median (nn-Meter's headline figure);
* RMSPE, the root mean square of the relative errors, in percent;
* Spearman's rank correlation of predicted and measured latencies (does it order models right?).

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

    def to_json(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "within_10": self.within_10,
            "within_5": self.within_5,
            "rmspe": self.rmspe,
            "spearman": self.spearman,
            "coverage": self.coverage,
        }


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


def scores(predicted: Sequence[float], measured: Sequence[float]) -> Scores:
    pairs = [
        (p, m)
        for p, m in zip(predicted, measured, strict=True)
        if math.isfinite(p) and math.isfinite(m) and m > 0
    ]
    if not pairs:
        return Scores(0, math.nan, math.nan, math.nan, math.nan)
    p = [x for x, _ in pairs]
    m = [y for _, y in pairs]
    err = np.array(relative_errors(p, m))
    return Scores(
        n=len(pairs),
        within_10=float(np.mean(np.abs(err) <= BANDS[0])),
        within_5=float(np.mean(np.abs(err) <= BANDS[1])),
        rmspe=float(np.sqrt(np.mean(err**2)) * 100.0),
        spearman=spearman(p, m),
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
