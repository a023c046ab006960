"""The statistics of a series: a least-squares line on log-log axes and rank correlations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

#: Fewer points than this make any rank correlation meaningless (two points always agree).
MIN_POINTS_CORRELATION = 3
#: A straight line needs two points with distinct MACs.
MIN_POINTS_FIT = 2


@dataclass(frozen=True)
class Fit:
    """log10(median_ms) = intercept + slope * log10(x), least squares."""

    slope: float
    intercept: float
    r2: float
    n: int

    def predict(self, x: float) -> float:
        return float(10 ** (self.intercept + self.slope * math.log10(x)))


@dataclass(frozen=True)
class Correlation:
    spearman: float
    spearman_p: float
    kendall: float
    kendall_p: float
    n: int


def loglog_fit(xs: Sequence[float], ys: Sequence[float]) -> Fit | None:
    """Least squares on log10(y) vs log10(x); None without two distinct positive x."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pairs) < MIN_POINTS_FIT or len({x for x, _ in pairs}) < MIN_POINTS_FIT:
        return None
    lx = np.log10([x for x, _ in pairs])
    ly = np.log10([y for _, y in pairs])
    slope, intercept = np.polyfit(lx, ly, 1)
    pred = intercept + slope * lx
    ss_res = float(np.sum((ly - pred) ** 2))
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return Fit(slope=float(slope), intercept=float(intercept), r2=r2, n=len(pairs))


def rank_correlation(xs: Sequence[float], ys: Sequence[float]) -> Correlation | None:
    """Spearman and Kendall (tau-b) with two-sided p-values; None with too few points."""
    if len(xs) < MIN_POINTS_CORRELATION or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    rho = sps.spearmanr(xs, ys)
    tau = sps.kendalltau(xs, ys)
    return Correlation(
        spearman=float(rho.statistic),
        spearman_p=float(rho.pvalue),
        kendall=float(tau.statistic),
        kendall_p=float(tau.pvalue),
        n=len(xs),
    )
