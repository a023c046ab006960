"""Change points of a latency series: where its level stepped, by how much, how surely.

Pure numbers in, numbers out: no files, no rows (``history/timeline.py`` feeds it points).

Each point is one run's measurement of a series: the log of its latency level (the mean of its
log process medians, or the log of its median when it has one process) and how precisely that
run pinned it (the spread of its process medians, or its interval). The model is

    x_i = mu_seg(i) + e_i,   e_i ~ N(0, v_i),   v_i = within_i + tau^2,

piecewise constant in log latency (a step is a ratio), with ``within_i`` the run's own sampling
variance and ``tau^2`` what runs add on top of their processes (a reboot, a neighbour, another
day), estimated from the series itself: from its consecutive differences, those that are
steps or spikes trimmed away (``difference_scale``), pulled towards a prior of a few per cent
while the series is short, and taken at an upper confidence bound (``CAUTION``): a variance set
too low, by a series that happened to be quiet, is what makes noise look like steps.

The fit is the exact minimum of the weighted squared error plus a penalty per change point
(PELT, Killick et al. 2012; the same penalised piecewise-constant idea as asv's step detection,
with weights from each run's interval, in log space). Changes smaller than ``MIN_STEP`` are merged
away afterwards: they are within what the environment moves anyway. Each change reports its
ratio (level after / level before), the ratio's 95 % interval and a two-sided p-value from the two
segments' weighted means.

``newest_step`` is the CI gate's question: the last point against the stable segment the fit
finds in the points before it.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

#: Penalty per change point, in units of log(n) of the weighted squared error (chi-square
#: units when v_i is right). Tuned with benchmarks/history_detect.py: 2 % process noise and
#: 5 % steps give >= 90 % of steps found at <= 1 false change per 100 points (README figures).
PENALTY_PER_LOG_N = 2.0
#: The penalty never drops below this (short series): a lone change must explain ~3 sd.
MIN_PENALTY = 9.0
#: Steps below 1 % are merged away: a rebuilt artifact, a kernel update or the weather of a
#: shared machine moves latency that much, and such a change is noise to whoever reads history.
MIN_STEP = 0.01
#: No point is taken as more precise than 0.3 % (log units): timers, clocks and placement make
#: finer agreement between runs luck, and one over-precise run would split the series.
MIN_POINT_SD = 0.003
#: What runs add to their processes' spread, before the series shows its own: a few per cent
#: between fresh processes on a desktop (docs/method.md), so 2 % ...
PRIOR_RUN_SD = 0.02
#: ... worth this many consecutive differences: it decides a 3-run series, a 100-run one hardly.
PRIOR_DIFFS = 4.0
#: Weight of the series' pooled process variance in each run's own (shrinkage, in degrees of
#: freedom): two or three processes that agree by chance do not make a run exact.
PRIOR_PROCESS_DF = 4.0
#: The median absolute deviation of a normal variable is this many standard deviations.
MAD_TO_SD = 1.4826
#: Consecutive differences beyond this many robust sds are steps or spikes, not noise ...
TRIM = 3.0
#: ... and the variance of a standard normal cut there, which the kept ones estimate.
TRIMMED_VARIANCE = 1.0 - 2.0 * TRIM * float(sps.norm.pdf(TRIM)) / (
    2.0 * float(sps.norm.cdf(TRIM)) - 1.0
)
#: Consecutive differences overlap (each point is in two): worth this many independent ones.
DIFF_EFFICIENCY = 0.67
#: The variance used is the upper bound of this one-sided confidence of the one estimated.
CAUTION = 0.8
#: Level of the intervals of step ratios, as everywhere in the harness's reports.
CONFIDENCE = 0.95


@functools.lru_cache(maxsize=64)
def _quantile(confidence: float, df: int) -> float:
    """Half-width of a two-sided interval in standard errors: Student's t over ``df`` degrees of
    freedom, the normal for none (one process: order statistics of many samples). Cached:
    every point of a series asks the same."""
    if df >= 1:
        return float(sps.t.ppf(0.5 + confidence / 2.0, df))
    return float(sps.norm.ppf(0.5 + confidence / 2.0))


@dataclass(frozen=True, slots=True)
class Observation:
    """One point as the detector sees it (log units throughout)."""

    level: float  # mean log process median, or log median
    processes: int  # how many process medians ``level`` averages (1: a median alone)
    process_var: float | None = None  # sample variance of the log process medians (2+)
    interval_var: float | None = None  # variance of ``level`` from the row's interval

    @classmethod
    def from_values(
        cls,
        values_ms: Sequence[float],
        *,
        ci_low_ms: float | None = None,
        ci_high_ms: float | None = None,
        confidence: float = CONFIDENCE,
    ) -> Observation:
        """A point from its process medians (or one median) and, when it has one, the interval
        of its median at ``confidence`` (its variance is used when the values cannot show one)."""
        logs = [math.log(v) for v in values_ms if v > 0 and math.isfinite(v)]
        if not logs:
            raise ValueError("a point needs at least one positive latency")
        r = len(logs)
        level = sum(logs) / r
        process_var = float(np.var(logs, ddof=1)) if r >= 2 else None
        interval_var = None
        if ci_low_ms and ci_high_ms and ci_high_ms >= ci_low_ms > 0:
            half = (math.log(ci_high_ms) - math.log(ci_low_ms)) / 2.0
            interval_var = (half / _quantile(confidence, r - 1)) ** 2
        return cls(level=level, processes=r, process_var=process_var, interval_var=interval_var)


@dataclass(frozen=True, slots=True)
class Segment:
    """Points ``start`` up to ``stop`` (exclusive) at one level."""

    start: int
    stop: int
    level: float  # weighted mean log latency
    se: float  # its standard error (log units)

    @property
    def latency(self) -> float:
        """The level as a latency (the geometric mean of the points, weighted)."""
        return math.exp(self.level)


@dataclass(frozen=True, slots=True)
class Step:
    """A level change: the ratio of the level from ``index`` on to the level before it."""

    index: int
    ratio: float
    low: float
    high: float
    p_value: float


@dataclass(frozen=True, slots=True)
class Fit:
    """A series cut into segments of constant level, and the changes between them."""

    segments: tuple[Segment, ...]
    changes: tuple[Step, ...]
    run_sd: float  # tau: what runs add to their processes' spread

    @property
    def indices(self) -> list[int]:
        return [c.index for c in self.changes]


@dataclass(frozen=True, slots=True)
class NoiseModel:
    """Each point's variance: its own sampling variance plus what runs add (``tau2``)."""

    within: tuple[float, ...]
    tau2: float

    def variance(self, within: float) -> float:
        return max(within + self.tau2, MIN_POINT_SD**2)

    @property
    def variances(self) -> np.ndarray:
        return np.array([self.variance(w) for w in self.within])


def within_variances(points: Sequence[Observation]) -> list[float]:
    """Each point's own sampling variance of its level.

    With process medians: their variance, shrunk towards the series' pooled one, over the
    count. With one value: the row's interval, else the pooled process variance (one process of
    a series whose other runs show what processes spread by), else 0 (left to ``tau2``).
    """
    df = sum(p.processes - 1 for p in points if p.process_var is not None)
    pooled = (
        sum((p.processes - 1) * (p.process_var or 0.0) for p in points if p.process_var is not None)
        / df
        if df
        else None
    )
    out = []
    for p in points:
        if p.process_var is not None:
            own_df = p.processes - 1
            prior = pooled if pooled is not None else p.process_var
            shrunk = (own_df * p.process_var + PRIOR_PROCESS_DF * prior) / (
                own_df + PRIOR_PROCESS_DF
            )
            out.append(shrunk / p.processes)
        elif p.interval_var is not None:
            out.append(max(p.interval_var, pooled or 0.0))
        else:
            out.append(pooled or 0.0)
    return out


def difference_scale(levels: np.ndarray) -> float:
    """The sd of one point's noise, from the differences of consecutive points.

    A step or a spike is one or two large differences among many: differences beyond
    ``TRIM`` robust sds (the median absolute deviation's) are left out, and the mean square of
    the others, corrected for the trimmed tails of a normal, is the variance of a difference,
    twice a point's. More efficient than the median absolute deviation alone (a 40-run series
    pins its sd to ~15 % rather than ~20 %), and as blind to steps.
    """
    diffs = np.diff(levels)
    if len(diffs) == 0:
        return 0.0
    centre = float(np.median(diffs))
    robust = MAD_TO_SD * float(np.median(np.abs(diffs - centre)))
    if robust == 0.0:
        return 0.0
    kept = diffs[np.abs(diffs - centre) <= TRIM * robust]
    return math.sqrt(float(np.mean(kept**2)) / TRIMMED_VARIANCE / 2.0)


def _caution(diffs: int) -> float:
    """How much to widen an estimated variance so that it is rarely below the true one: its
    upper one-sided ``CAUTION`` bound, with the degrees of freedom ``diffs`` differences are
    worth. An estimate from a short series is uncertain, and a variance set too low is what
    makes noise look like steps."""
    df = DIFF_EFFICIENCY * diffs + PRIOR_DIFFS
    return df / float(sps.chi2.ppf(1.0 - CAUTION, df))


def noise_model(points: Sequence[Observation]) -> NoiseModel:
    """The variance model of a series (see the module docstring)."""
    within = within_variances(points)
    levels = np.array([p.level for p in points])
    m = len(points) - 1
    observed = 0.0
    if m > 0:
        # a point's noise, less what the runs' own sampling explains: tau^2
        observed = max(0.0, difference_scale(levels) ** 2 - float(np.median(within)))
    tau2 = (m * observed + PRIOR_DIFFS * PRIOR_RUN_SD**2) / (m + PRIOR_DIFFS)
    return NoiseModel(within=tuple(within), tau2=tau2 * _caution(m))


def penalty(n: int) -> float:
    """The cost of one change point in a series of ``n`` points."""
    return max(MIN_PENALTY, PENALTY_PER_LOG_N * math.log(max(n, 2)))


def _cumsums(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    zero = np.zeros(1)
    centred = x - np.average(x, weights=w)  # keeps s2 - s1^2/s0 away from cancellation
    return (
        np.concatenate([zero, np.cumsum(w)]),
        np.concatenate([zero, np.cumsum(w * centred)]),
        np.concatenate([zero, np.cumsum(w * centred * centred)]),
    )


def optimal_cuts(x: np.ndarray, w: np.ndarray, beta: float) -> list[int]:
    """PELT: the cut positions minimising weighted squared error + ``beta`` per cut.

    Exact; the pruning keeps the candidates few, so a series of thousands of points takes
    milliseconds (each step is one vectorised pass over the surviving candidates).
    """
    n = len(x)
    c0, c1, c2 = _cumsums(x, w)
    best = np.empty(n + 1)
    best[0] = -beta
    last = np.zeros(n + 1, dtype=np.int64)
    candidates = np.zeros(1, dtype=np.int64)
    for t in range(1, n + 1):
        s0 = c0[t] - c0[candidates]
        s1 = c1[t] - c1[candidates]
        cost = (c2[t] - c2[candidates]) - s1 * s1 / s0
        total = best[candidates] + cost
        j = int(np.argmin(total))
        best[t] = total[j] + beta
        last[t] = candidates[j]
        # a start that cannot beat the best now never will (the cost only grows): drop it
        candidates = np.append(candidates[total <= best[t]], t)
    cuts = []
    t = n
    while t > 0:
        t = int(last[t])
        if t > 0:
            cuts.append(t)
    return sorted(cuts)


def _segment(x: np.ndarray, w: np.ndarray, start: int, stop: int) -> Segment:
    weights = w[start:stop]
    total = float(weights.sum())
    level = float(np.dot(weights, x[start:stop]) / total)
    return Segment(start=start, stop=stop, level=level, se=math.sqrt(1.0 / total))


def _segments(x: np.ndarray, w: np.ndarray, cuts: Sequence[int]) -> list[Segment]:
    bounds = [0, *cuts, len(x)]
    return [_segment(x, w, a, b) for a, b in itertools.pairwise(bounds)]


def _step(before: Segment, after: Segment) -> Step:
    diff = after.level - before.level
    se = math.hypot(before.se, after.se)
    z = float(sps.norm.ppf(0.5 + CONFIDENCE / 2.0))
    return Step(
        index=after.start,
        ratio=math.exp(diff),
        low=math.exp(diff - z * se),
        high=math.exp(diff + z * se),
        p_value=float(2.0 * sps.norm.sf(abs(diff) / se)),
    )


def _merge_small(x: np.ndarray, w: np.ndarray, cuts: list[int]) -> list[Segment]:
    """Segments after merging away, smallest first, every step below ``MIN_STEP``."""
    floor = math.log1p(MIN_STEP)
    while True:
        segments = _segments(x, w, cuts)
        steps = [abs(b.level - a.level) for a, b in itertools.pairwise(segments)]
        if not steps or min(steps) >= floor:
            return segments
        del cuts[int(np.argmin(steps))]


def detect(points: Sequence[Observation], *, beta: float | None = None) -> Fit:
    """The change points of a series, oldest point first (see the module docstring)."""
    if not points:
        return Fit(segments=(), changes=(), run_sd=0.0)
    model = noise_model(points)
    x = np.array([p.level for p in points])
    w = 1.0 / model.variances
    cuts = optimal_cuts(x, w, penalty(len(points)) if beta is None else beta)
    segments = _merge_small(x, w, cuts)
    changes = tuple(_step(a, b) for a, b in itertools.pairwise(segments))
    return Fit(
        segments=tuple(segments),
        changes=changes,
        run_sd=math.sqrt(model.tau2),
    )


@dataclass(frozen=True, slots=True)
class NewestStep:
    """The newest point against the stable segment before it."""

    baseline: Segment  # the last segment of the fit over the earlier points
    ratio: float
    low: float
    high: float
    p_slower: float  # one-sided: the chance of a ratio this high with no change


def newest_step(points: Sequence[Observation]) -> NewestStep | None:
    """Whether the last point steps away from the level the earlier points settled on; None
    with fewer than two points. The earlier points' noise model weighs the last point too, so a
    jump in it cannot widen its own yardstick."""
    if len(points) < 2:
        return None
    earlier = points[:-1]
    fit = detect(earlier)
    baseline = fit.segments[-1]
    model = noise_model(earlier)
    newest_within = within_variances(points)[-1]
    se = math.sqrt(model.variance(newest_within) + baseline.se**2)
    diff = points[-1].level - baseline.level
    z = float(sps.norm.ppf(0.5 + CONFIDENCE / 2.0))
    return NewestStep(
        baseline=baseline,
        ratio=math.exp(diff),
        low=math.exp(diff - z * se),
        high=math.exp(diff + z * se),
        p_slower=float(sps.norm.sf(diff / se)),
    )
