"""The interval of a row's median, at the level of what repeats: the runner process.

Fresh runner processes of the same model differ by a few per cent (memory layout, core
placement, neighbours), while thousands of inferences inside one process pin its own median to a
fraction of that (docs/method.md, "How long to measure"). An interval built from the pooled samples
therefore claims a precision that a rerun does not reproduce. The interval here treats each
process as one observation of the random-effects model

    log m_i = log mu + b_i + e_i,   b_i ~ N(0, tau^2) between processes,
                                    e_i ~ N(0, sigma^2 / n_i) the sampling error of m_i,

with ``m_i`` the median of process ``i``. The sample variance of ``log m_i`` estimates
``tau^2 + sigma^2 / n`` directly, so Student's t on the R log process medians (R - 1 degrees of
freedom) is the interval of ``log mu`` with both components in it, and needs no separate
estimate of either. Logs, because a process's disturbance scales its latency (a ratio), and so
that the interval of a ratio in ``bench compare`` is the same statistic. The interval is centred
on the row's reported median (the pooled one, whose target is the same ``mu``) and never drawn
narrower than the order-statistic interval of the pooled samples, which covers the within-process
part alone: a floor for two or three processes that agree by chance, or a quantised timer whose
process medians are all equal.

One process (``--quick``) cannot show process-to-process variance: its interval is the
order-statistic interval of its own samples, and the row says so (``ci_method``). Too few samples
for that interval to reach its level (fewer than 8 at 99 %, 6 at 95 %: even ``[min, max]`` covers
the median with probability ``1 - 2^(1-n)`` only) give no interval at all rather than one that
covers less than its label; a slow device's five-sample row says ``FEW_SAMPLES`` and leaves it
empty.

``ProcessRule`` is the stopping rule on this interval: run at least ``min_processes``, then stop a
model once its 95 % interval lies within ``ci_rel`` of its median, or at ``max_processes``. Its
coverage after such optional stopping is checked by simulation in the tests (a few points under
the nominal level where the process spread sits just above the target; see README).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as sps

from benchharness.ondevice.method import median_ci_indices

#: Level of the stopping target and of ``ci95_*``: the level ``bench compare`` reports and the
#: repeatability goal checks.
PROCESS_CONFIDENCE = 0.95
#: Stop adding processes once the 95 % interval lies within 2 % of the median: reruns' medians
#: then differ by ~1 % (sd), five of them spread by under 3 %, and a 5 % change (compare's
#: threshold) clears two such intervals.
PROCESS_CI_REL = 0.02
#: At least five processes: Student's t falls from 12.7 (2 processes) to 2.78 (5) at 95 %, four
#: degrees of freedom make the spread estimate usable, and 5 against 5 lets compare reach p < 0.01.
MIN_PROCESSES = 5
#: At most ten: a model whose processes spread by 3 % or more reaches the target only after
#: 11+, which no default budget buys; its wider interval says so instead.
MAX_PROCESSES = 10

#: ``ci_method`` of a row whose interval comes from its process medians (or a tool's per-process
#: figures); formatted with the count and what each value is.
METHOD_PROCESSES = "t over {n} {what} (log)"
#: Appended when the pooled samples' order-statistic interval is the floor.
METHOD_FLOOR = "; floor: pooled order statistics"
#: ``ci_method`` of a one-process row.
METHOD_ONE_PROCESS = "order statistics of one process: process-to-process variance not covered"
#: ``ci_method`` of a row with too few samples for an interval at a level: it is left empty.
METHOD_TOO_FEW = "no {level} interval: {n} samples, fewer than an order-statistic interval needs"
#: ``ci_method`` when process values exist but cannot be logged (a timer that read 0).
METHOD_POOLED = "order statistics of the pooled samples: process medians not usable"

#: ``reason`` values: the interval reached the target; the cap was hit; a fixed count was run.
STOP_CI = "ci"
STOP_CAP = "max_processes"
STOP_FIXED = "fixed"


@dataclass(frozen=True)
class Interval:
    """An interval of a median, and what it is (``ci_method``)."""

    low: float
    high: float
    method: str


def t_quantile(confidence: float, df: int) -> float:
    """Two-sided Student-t quantile: the interval's half-width in standard errors."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence} outside (0, 1)")
    return float(sps.t.ppf(0.5 + confidence / 2.0, df))


def log_halfwidth(values: Sequence[float], confidence: float) -> float | None:
    """Half-width, in log units, of the t-interval of the mean log value; None below two values
    or when a value is not positive (no log)."""
    r = len(values)
    if r < 2 or any(v <= 0 or not math.isfinite(v) for v in values):
        return None
    logs = [math.log(v) for v in values]
    mean = sum(logs) / r
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (r - 1))
    return t_quantile(confidence, r - 1) * sd / math.sqrt(r)


def process_interval(
    values: Sequence[float], centre: float, confidence: float
) -> tuple[float, float] | None:
    """``centre * exp(-+ t * sd(log values) / sqrt(R))``; None when it cannot be formed."""
    half = log_halfwidth(values, confidence)
    if half is None or centre <= 0:
        return None
    return centre * math.exp(-half), centre * math.exp(half)


def order_interval(
    sorted_samples: Sequence[float], confidence: float
) -> tuple[float, float] | None:
    """The order-statistic interval of the median at ``confidence``; None when the samples are
    too few for any such interval to reach it (``[min, max]`` would cover less)."""
    idx = median_ci_indices(len(sorted_samples), confidence)
    if idx is None:
        return None
    return float(sorted_samples[idx[0]]), float(sorted_samples[idx[1]])


def median_interval(
    sorted_samples: Sequence[float],
    process_values: Sequence[float],
    centre: float | None,
    confidence: float,
    *,
    what: str = "process medians",
) -> Interval | None:
    """The row's interval of its median at ``confidence`` (see the module docstring).

    ``sorted_samples``: every sample of the row, sorted (empty for a native tool's aggregates);
    ``process_values``: one figure per process (its median, or a tool's median or mean);
    ``centre``: the row's median. None when neither enough samples (``order_interval``) nor two
    process values exist.
    """
    within = order_interval(sorted_samples, confidence)
    if centre is not None and len(process_values) >= 2:
        between = process_interval(process_values, centre, confidence)
        if between is not None:
            low, high = between
            method = METHOD_PROCESSES.format(n=len(process_values), what=what)
            if within is not None:
                low, high = min(low, within[0]), max(high, within[1])
                method += METHOD_FLOOR
            return Interval(low, high, method)
    if within is not None:
        method = METHOD_POOLED if len(process_values) >= 2 else METHOD_ONE_PROCESS
        return Interval(within[0], within[1], method)
    return None


@dataclass(frozen=True)
class ProcessRule:
    """How many runner processes a model gets (docs/method.md: stop on the interval across
    processes).

    Adaptive: at least ``min_processes``; then stop once the ``confidence`` interval of the median
    (``log_halfwidth`` of the process values) lies within ``ci_rel`` of it on both sides; never
    more than ``max_processes``. Not adaptive: exactly ``max_processes`` (``--processes N``,
    ``--quick``). A pure function of the process values, so fake results test it.
    """

    min_processes: int = MIN_PROCESSES
    max_processes: int = MAX_PROCESSES
    ci_rel: float = PROCESS_CI_REL
    confidence: float = PROCESS_CONFIDENCE
    adaptive: bool = True

    def __post_init__(self) -> None:
        if self.min_processes < 1 or self.max_processes < self.min_processes:
            raise ValueError(
                f"processes: need 1 <= min ({self.min_processes}) <= max ({self.max_processes})"
            )
        if self.ci_rel <= 0:
            raise ValueError(f"the interval target {self.ci_rel} must be positive")

    @classmethod
    def fixed(cls, processes: int) -> ProcessRule:
        return cls(min_processes=processes, max_processes=processes, adaptive=False)

    def reason(self, values: Sequence[float]) -> str | None:
        """Why a model measured in ``len(values)`` processes needs no more, or None."""
        r = len(values)
        if r >= self.max_processes:
            return STOP_CAP if self.adaptive else STOP_FIXED
        if not self.adaptive or r < self.min_processes:
            return None
        half = log_halfwidth(values, self.confidence)
        if half is not None and math.expm1(half) <= self.ci_rel:
            return STOP_CI
        return None

    def wanted(self, done: int, stopped: bool) -> int:
        """Processes the model is expected to get, as a row written now should say it."""
        if stopped:
            return done
        return min(self.max_processes, max(self.min_processes, done + 1))

    def describe(self) -> str:
        if not self.adaptive:
            return str(self.max_processes)
        return f"{self.min_processes}-{self.max_processes}"
