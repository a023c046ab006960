"""The measurement method of docs/method.md in pure standard-library Python.

This module is shipped to devices with the runner, so it imports only the standard library and
nothing from ``benchharness``. The host's ``benchharness.stats.summary`` reuses it, so the device
and the host compute the same median, quantiles and confidence intervals.

What lives here:

* ``median``, ``quantile``, ``iqr``: plain order statistics (``quantile`` interpolates linearly
  between order statistics, the same rule as numpy's default, so host and device agree).
* ``median_ci_stdlib``: the order-statistic (distribution-free) confidence interval of the median,
  as asv computes it: the interval ``[X_(r), X_(n+1-r)]`` covers the true median with probability
  ``1 - 2 * P(K <= r - 1)``, ``K ~ Binomial(n, 1/2)``; ``r`` is the largest rank for which that
  is at least the confidence asked for.
* ``WarmupRule`` and ``StoppingRule``: when warm-up ends and when measuring ends inside one
  process, with the ``DEFAULT``/``QUICK``/``ADAPTIVE`` and ``WARMUP_DEFAULT``/``WARMUP_DELEGATE``
  presets. How many processes run is the host's business (``stats/intervals.ProcessRule``).
* ``WarmupRule.settle_point`` and ``CalibratedWarmup``: warm-up calibrated once per job. The
  first process runs the full rule and says after how many inferences its latency stayed at its
  final level; later processes warm up for that count with a margin
  (``WarmupRule.calibrated_count``), check they settled, and fall back to the full rule if not.

Both rules are called by the runner after every sample with the samples so far (nanoseconds) and
the elapsed time; they are pure functions of those arguments (fake clocks in tests are trivial).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

#: Above this many samples the binomial tail uses the normal approximation (with continuity
#: correction); for Binomial(n, 1/2) the skew term vanishes, so at this n the chosen rank is at
#: most one off the exact one (checked in the tests), a relative change of the CI below 1/sqrt(n).
NORMAL_APPROX_MIN_N = 50_000

#: The exact binomial sum starts this many standard deviations below n/2: by Hoeffding the mass
#: left out is below exp(-WINDOW_SD**2 / 2) ~ 1e-31, far under double precision of alpha/2, and
#: the sum costs O(sqrt(n)) steps instead of O(n).
EXACT_WINDOW_SD = 12.0

#: Statistics are re-evaluated at the latest when the sample count grew by 1/32 (~3 %), so the
#: O(n log n) sort behind them costs O(32 log n) per sample however long a fast model runs.
CHECK_GROWTH_DIVISOR = 32

#: Why a warm-up ended: two consecutive windows agreed after the minimums (the full rule) ...
WARMUP_STABLE = "stable"
#: ... its time cap passed, settled or not ...
WARMUP_CAP = "cap"
#: ... or a calibrated warm-up's check passed at its count.
WARMUP_CHECKED = "calibrated"

#: A calibrated warm-up runs the first process's settle point times this: a fresh process of the
#: same model on the same device settles at about the same count, and half as much again absorbs
#: the process-to-process jitter of a settle point read at window resolution (the check catches
#: the rest, at the cost of the full rule).
CALIBRATION_MARGIN = 1.5
#: ... and at least this many windows past the settle point, so the two windows the check
#: compares both lie on the settled level (with a settle point of 0: the rule's two windows).
CALIBRATION_CHECK_WINDOWS = 2


def median(xs: Sequence[float]) -> float:
    """The sample median (mean of the two middle values for an even count)."""
    if not xs:
        raise ValueError("median of no samples")
    s = sorted(xs)
    return _sorted_median(s)


def _sorted_median(s: Sequence[float]) -> float:
    n = len(s)
    mid = n // 2
    if n % 2:
        return float(s[mid])
    return (s[mid - 1] + s[mid]) / 2.0


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Quantile ``q`` in [0, 1] of already sorted values, linear between order statistics.

    The same rule as numpy's default (``method="linear"``), so device and host numbers agree.
    """
    n = len(sorted_xs)
    if n == 0:
        raise ValueError("quantile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    frac = h - lo
    return sorted_xs[lo] + frac * (sorted_xs[hi] - sorted_xs[lo])


def iqr(sorted_xs: Sequence[float]) -> float:
    """Interquartile range of already sorted values."""
    return quantile(sorted_xs, 0.75) - quantile(sorted_xs, 0.25)


def median_ci_indices(n: int, confidence: float = 0.99) -> tuple[int, int] | None:
    """0-based indices ``(lo, hi)`` of the order statistics bounding the median's CI.

    ``lo = r - 1`` and ``hi = n - r`` for the largest rank ``r >= 1`` with
    ``P(K <= r - 1) <= (1 - confidence) / 2``, ``K ~ Binomial(n, 1/2)``, so the interval's
    coverage ``1 - 2 P(K <= r - 1)`` is at least ``confidence``. ``None`` when even
    ``[min, max]`` covers less than that (n too small: fewer than 8 samples at 99 %).
    """
    if n <= 0:
        return None
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence} outside (0, 1)")
    tail = (1.0 - confidence) / 2.0
    c = _approx_cutoff(n, tail) if n >= NORMAL_APPROX_MIN_N else _exact_cutoff(n, tail)
    if c < 0:
        return None
    return c, n - 1 - c


def _exact_cutoff(n: int, tail: float) -> int:
    """Largest ``c`` with ``P(K <= c) <= tail`` for ``K ~ Binomial(n, 1/2)``; -1 if none."""
    sd = math.sqrt(n) / 2.0
    c0 = max(0, math.floor(n / 2.0 - EXACT_WINDOW_SD * sd))
    # log-space start avoids 2**-n underflow; the recurrence then stays in ordinary floats
    log_pmf = math.lgamma(n + 1) - math.lgamma(c0 + 1) - math.lgamma(n - c0 + 1) - n * math.log(2)
    pmf = math.exp(log_pmf)
    cdf = 0.0
    for c in range(c0, n + 1):
        cdf += pmf
        if cdf > tail:
            return c - 1
        pmf *= (n - c) / (c + 1)
    return n  # unreachable for tail < 1: the whole distribution sums to 1


def _approx_cutoff(n: int, tail: float) -> int:
    """``_exact_cutoff`` by the normal approximation with continuity correction."""
    z = NormalDist().inv_cdf(tail)  # negative
    return math.floor(n / 2.0 - 0.5 + z * math.sqrt(n) / 2.0)


def median_ci_stdlib(sorted_xs: Sequence[float], confidence: float = 0.99) -> tuple[float, float]:
    """Order-statistic confidence interval of the median of already sorted values.

    When too few samples exist for the confidence asked, the widest interval there is,
    ``(min, max)``, is returned (it then covers less than ``confidence``).
    """
    n = len(sorted_xs)
    if n == 0:
        raise ValueError("confidence interval of no samples")
    idx = median_ci_indices(n, confidence)
    if idx is None:
        return float(sorted_xs[0]), float(sorted_xs[-1])
    return float(sorted_xs[idx[0]]), float(sorted_xs[idx[1]])


def warmup_stable(window_medians: Sequence[float], tol: float = 0.05) -> bool:
    """True when the last two window medians differ by at most ``tol`` of the smaller one.

    Relative to the smaller of the two so the test is symmetric (a 5 % rise and a 5 % fall
    count the same).
    """
    if len(window_medians) < 2:
        return False
    a, b = window_medians[-2], window_medians[-1]
    smaller = min(a, b)
    if smaller <= 0:
        return a == b
    return abs(a - b) <= tol * smaller


@dataclass(frozen=True)
class WarmupRule:
    """When warm-up ends (docs/method.md): at least ``min_n`` inferences and ``min_s`` seconds, then
    windows of ``window`` inferences until two consecutive window medians differ by at most
    ``tol``; never longer than ``cap_s``.

    Windows are aligned to the start of warm-up (``[n-2w, n-w)`` and ``[n-w, n)`` when ``n`` is
    a multiple of ``w``), so the runner must call ``done`` after every inference.
    """

    min_n: int = 10  # a JIT, allocator or cache needs a few runs before it settles
    min_s: float = 1.0  # and clocks/governors need wall time to ramp up, not just runs
    window: int = 20  # a window median of 20 is steady enough to compare to 5 %
    tol: float = 0.05  # consecutive windows within 5 %: what "warmed up" means in docs/method.md
    cap_s: float = 30.0  # a model that never settles must not stall the whole run

    def reason(self, samples_ns: Sequence[int], elapsed_s: float) -> str | None:
        """Why warm-up ends now (``WARMUP_STABLE``, ``WARMUP_CAP``) or None to go on."""
        if elapsed_s >= self.cap_s:
            return WARMUP_CAP
        n = len(samples_ns)
        w = self.window
        if n < self.min_n or elapsed_s < self.min_s or n < 2 * w or n % w:
            return None
        return WARMUP_STABLE if self.last_windows_agree(samples_ns) else None

    def done(self, samples_ns: Sequence[int], elapsed_s: float) -> bool:
        return self.reason(samples_ns, elapsed_s) is not None

    def last_windows_agree(self, samples_ns: Sequence[int]) -> bool:
        """Whether the last two windows' medians agree within ``tol`` (False before two)."""
        n, w = len(samples_ns), self.window
        if n < 2 * w:
            return False
        previous = median(samples_ns[n - 2 * w : n - w])
        latest = median(samples_ns[n - w :])
        return warmup_stable([previous, latest], self.tol)

    def settle_point(self, samples_ns: Sequence[int]) -> int | None:
        """Inferences after which the warm-up stayed at its final level, or None if it never
        got there (its last two complete windows disagree).

        Windows are aligned to the start of warm-up, as in ``reason``; the settle point is the
        start of the first window whose median, and every later window's, is within ``tol`` of
        the last complete window's. Not the count the rule ran: that includes the time minimum,
        which a fast model spends long after it settled. An unfinished last window is left out.
        """
        w = self.window
        medians = [median(samples_ns[i : i + w]) for i in range(0, len(samples_ns) - w + 1, w)]
        if not warmup_stable(medians, self.tol):
            return None
        first = len(medians) - 1
        while first > 0 and warmup_stable([medians[first - 1], medians[-1]], self.tol):
            first -= 1
        return first * w

    def calibrated_count(self, settle_n: int) -> int:
        """The warm-up a later process of the job runs: ``settle_n`` x ``CALIBRATION_MARGIN``,
        at least ``CALIBRATION_CHECK_WINDOWS`` windows past ``settle_n``, in whole windows (so
        the fallback's windows stay aligned to the start of warm-up)."""
        w = self.window
        wanted = max(settle_n * CALIBRATION_MARGIN, settle_n + CALIBRATION_CHECK_WINDOWS * w)
        return math.ceil(wanted / w) * w


@dataclass(frozen=True)
class CalibratedWarmup:
    """Warm-up of a job's later process, calibrated by its first (docs/method.md): ``target_n``
    inferences, with no time minimum, then one check that the last two windows agree within the
    full rule's ``tol``; if they do not, the full rule ``full`` goes on from there (its
    minimums counted from the start of warm-up, its windows, its cap). The cap holds throughout.

    ``target_n`` below two windows is raised to two: the check compares two.
    """

    target_n: int
    full: WarmupRule = field(default_factory=WarmupRule)

    @property
    def check_n(self) -> int:
        """The count the check is made at."""
        return max(self.target_n, 2 * self.full.window)

    def reason(self, samples_ns: Sequence[int], elapsed_s: float) -> str | None:
        """``WARMUP_CHECKED`` when the count settled; else the full rule's reason."""
        n = len(samples_ns)
        if n < self.check_n:
            return WARMUP_CAP if elapsed_s >= self.full.cap_s else None
        if n == self.check_n and self.full.last_windows_agree(samples_ns):
            return WARMUP_CHECKED
        return self.full.reason(samples_ns, elapsed_s)

    def done(self, samples_ns: Sequence[int], elapsed_s: float) -> bool:
        return self.reason(samples_ns, elapsed_s) is not None

    def settle_point(self, samples_ns: Sequence[int]) -> int | None:
        """Where a warm-up that fell back settled, as the full rule reads it."""
        return self.full.settle_point(samples_ns)


@dataclass(frozen=True)
class StoppingRule:
    """When measuring ends (docs/method.md "How long to measure").

    Measure at least ``min_n`` inferences and ``min_s`` seconds; then, if ``adaptive``, go on
    until the ``confidence`` CI of the median lies within ``ci_rel`` of the median on both sides,
    or IQR/median < ``iqr_rel``; stop at ``max_s`` whatever happens. The statistics are
    re-evaluated only every ``check_every`` samples (and more rarely as ``n`` grows, see
    ``CHECK_GROWTH_DIVISOR``), so the runner calls ``done`` after every inference cheaply.
    """

    min_n: int = 100
    min_s: float = 10.0
    max_s: float = 120.0
    ci_rel: float = 0.01
    iqr_rel: float = 0.10
    check_every: int = 10
    confidence: float = 0.99
    adaptive: bool = True
    #: a cap on the count, so a very fast model cannot return more samples than a result holds
    max_n: int | None = None

    def check_interval(self, n: int) -> int:
        """How many samples apart the statistics are evaluated when ``n`` samples exist."""
        interval = max(1, self.check_every)
        while interval * CHECK_GROWTH_DIVISOR < n:
            interval *= 2
        return interval

    def reason(self, samples_ns: Sequence[int], elapsed_s: float) -> str | None:
        """Why measuring should stop now (``"max_s"``, ``"min"``, ``"ci"``, ``"iqr"``) or None.

        The reason is worth recording beside the result: ``max_s`` means the target precision
        was not reached.
        """
        if elapsed_s >= self.max_s:
            return "max_s"
        n = len(samples_ns)
        if self.max_n is not None and n >= self.max_n:
            return "max_n"
        if n < self.min_n or elapsed_s < self.min_s:
            return None
        if not self.adaptive:
            return "min"
        if n % self.check_interval(n):
            return None
        return self.converged(samples_ns)

    def converged(self, samples_ns: Sequence[int]) -> str | None:
        """``"ci"`` or ``"iqr"`` if the samples meet a precision target, else None."""
        s = sorted(samples_ns)
        m = _sorted_median(s)
        if m <= 0:
            return None
        idx = median_ci_indices(len(s), self.confidence)
        if idx is not None and max(m - s[idx[0]], s[idx[1]] - m) <= self.ci_rel * m:
            return "ci"
        if iqr(s) < self.iqr_rel * m:
            return "iqr"
        return None

    def done(self, samples_ns: Sequence[int], elapsed_s: float) -> bool:
        return self.reason(samples_ns, elapsed_s) is not None


#: docs/method.md default, one of many short processes: >= 50 inferences and >= 0.5 s, then stop; at
#: most 10 s. What repeats is the process (2-10 % apart on an ordinary machine), so precision is
#: bought with processes (the host's ``ProcessRule``), not seconds: 50 inferences already pin a
#: process median to ~0.2 % at this project's within-process spread, 0.5 s spans >100 scheduler
#: ticks, and the warm-up (>= 1 s) stays the larger part of a process. No adaptive extension: a
#: noisy process would buy seconds that cannot fix a between-process spread. The 10 s cap bounds
#: slow models (50 inferences of a 1 s model); the pooled count still flags FEW_SAMPLES.
DEFAULT = StoppingRule(min_n=50, min_s=0.5, max_s=10.0, adaptive=False)

#: The in-process adaptive rule of the first method (>= 100 inferences and >= 10 s, then until
#: the 99 % CI of the median is within 1 % or IQR/median < 0.10, 120 s cap): kept for callers
#: that want one long process, e.g. a device that can start only one.
ADAPTIVE = StoppingRule()

#: ``--quick``: 64 inferences (the fewest that allow a p90) and 5 s, then stop. No adaptive
#: extension: --quick is for smoke tests and iteration, where a predictable, short run time is
#: the point; its numbers carry their spread flags instead of being made precise. The 120 s cap
#: still bounds slow models.
QUICK = StoppingRule(min_n=64, min_s=5.0, adaptive=False)

#: Warm-up on CPUs (docs/method.md): 10 inferences and 1 s, windows of 20 within 5 %, 30 s cap.
WARMUP_DEFAULT = WarmupRule()

#: GPU/NPU delegates compile and upload lazily, so they get 2 s of minimum warm-up (docs/method.md).
WARMUP_DELEGATE = WarmupRule(min_s=2.0)
