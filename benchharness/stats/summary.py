"""Host-side statistics of docs/method.md: the summary of a measurement and its flags.

The pure-stdlib pieces (median, quantiles, the order-statistic CI of the median, the warm-up and
stopping rules) live in ``benchharness.ondevice.method`` because they also run on devices; this
module reuses them and adds what needs numpy/scipy: the summary, the flags and their advice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
from scipy import stats as sps

from benchharness.errors import UsageError
from benchharness.ondevice.method import (
    DEFAULT,
    QUICK,
    WARMUP_DEFAULT,
    WARMUP_DELEGATE,
    StoppingRule,
    WarmupRule,
    median_ci_stdlib,
    warmup_stable,
)
from benchharness.ondevice.protocol import ToolStats
from benchharness.stats.intervals import (
    METHOD_TOO_FEW,
    PROCESS_CONFIDENCE,
    Interval,
    median_interval,
)
from benchharness.stats.modes import Mode, find_modes, format_modes

__all__ = [
    "DEFAULT",
    "FLAGS",
    "FLAG_ADVICE",
    "QUICK",
    "WARMUP_DEFAULT",
    "WARMUP_DELEGATE",
    "StoppingRule",
    "Summary",
    "ToolStats",
    "ToolSummary",
    "WarmupRule",
    "flags_for",
    "median_ci",
    "process_variance_p",
    "summarize",
    "summarize_tool_stats",
    "warmup_stable",
]

#: MLPerf LoadGen early stopping: the fewest samples from which a p90 claim can hold.
P90_MIN_N = 64
#: MLPerf LoadGen early stopping: the fewest samples from which a p99 claim can hold.
P99_MIN_N = 662
#: The confidence of the reported CI of the median (docs/method.md: 99 %).
CI_CONFIDENCE = 0.99
#: The second level reported (``ci95_*``): compare's and the repeatability goal's.
CI95_CONFIDENCE = PROCESS_CONFIDENCE

#: IQR/median at which the spread is wide enough to hide a 5 % change (docs/method.md).
HIGH_IQR_REL = 0.10
#: IQR/median at which something is clearly competing for the device (docs/method.md).
VERY_HIGH_IQR_REL = 0.25
#: std/mean at which outliers dominate the mean (docs/method.md, as pyperf warns).
HIGH_CV = 0.10
#: min or max this far from the mean (as a fraction of it) is an extreme sample (pyperf's check).
EXTREME_REL = 0.50
#: EXTREME needs more than this share of extreme samples (at least one). pyperf's min/max check
#: suits its ~60 values; among the thousands of per-inference samples here one interrupt is all
#: but certain on any machine (33 of 34 rows of a quiet whole-zoo run) and moves nothing reported.
#: A share of 1 % reaches p99, the furthest tail a row reports. Tools that print only min and max
#: keep the min/max rule.
EXTREME_SHARE = 0.01
#: Fewer samples than this leave p90 undefined (= P90_MIN_N), so the tail is unknown.
FEW_SAMPLES_N = P90_MIN_N
#: Last-quarter vs first-quarter median moving by more than this is drift (docs/method.md).
DRIFT_REL = 0.05
#: Quarters need a few samples each before their medians mean anything.
DRIFT_MIN_N = 8
#: A throttle probe slower than this ratio after the model than before means throttling.
THROTTLE_RATIO = 1.10
#: The only governor that holds clocks steady on Linux cpufreq.
LOCKED_GOVERNOR = "performance"
#: Significance of the process-variance test; strict because it runs on every result.
PROCESS_VARIANCE_ALPHA = 0.01
#: Process medians whose spread (sd of their logs) is below this are normal (memory layout, core
#: placement: 1-3 % between processes on this project's VM, quiet); no flag below it even when
#: significant. At 3 % even the process rule's cap of 10 cannot bring the 95 % interval within
#: its 2 % target (t(9) x 3 % / sqrt(10) = 2.1 %). An sd, not the range, because the range of
#: 5-10 processes grows with their number while their spread does not.
PROCESS_VARIANCE_MIN_SD = 0.03
#: Appended to ``ci_method`` when the process medians fall into modes (``stats/modes``): the
#: interval across them is kept, wide as it is, but it spans a mixture, not one level's spread.
METHOD_MIXTURE = "; spans a mixture of {n} modes (see modes), not one level"
#: Width, in standard deviations of the median's rank, of the quantile difference that estimates
#: the standard error of a median (a Siddiqui-Bloch-Gastwirth style sparsity estimate).
PROCESS_SE_Z = 2.0

#: Latencies in ms: any sequence of numbers, or a 1-D numpy array.
Samples: TypeAlias = Sequence[float] | np.ndarray

FLAGS: tuple[str, ...] = (
    "HIGH_IQR",
    "VERY_HIGH_IQR",
    "HIGH_CV",
    "EXTREME",
    "FEW_SAMPLES",
    "DRIFT",
    "THROTTLED",
    "CLOCKS_UNLOCKED",
    "PROCESS_VARIANCE",
    "MULTIMODAL",
    # not statistics: results/rows.py raises them from the artifact's cost (a graph that runs less
    # than its model, cost/folding.py), the environment's ``emulated`` (qemu-user, Rosetta 2;
    # ondevice/probe.py) and ``ops_sum_ratio`` beyond ``OPS_SUM_BOUNDS``
    "GRAPH_FOLDED",
    "EMULATED",
    "OPS_SUM_OFF",
)

#: One line of advice per flag, printed by the CLI under its warning block.
FLAG_ADVICE: dict[str, str] = {
    "HIGH_IQR": "wide spread: close other programs, pin cores with --affinity, or use --threads 1",
    "VERY_HIGH_IQR": (
        "very wide spread: something competes for the device; close other programs, pin cores "
        "with --affinity and rerun"
    ),
    "HIGH_CV": "outliers dominate the mean: close background programs; trust the median",
    "EXTREME": (
        "over 1 % of samples lie 50 % from the mean (interrupts, page faults, GC): rerun, and "
        "close other programs if it persists"
    ),
    "FEW_SAMPLES": "under 64 samples, p90 left empty: drop --quick or give the model more time",
    "DRIFT": "latency drifted during the run: let the device cool, lock its clocks, warm up longer",
    "THROTTLED": "the device throttled: let it cool (longer cooldown in the device profile), rerun",
    "CLOCKS_UNLOCKED": (
        "CPU frequency scaling is on: set the governor to 'performance' (or fixed performance "
        "mode in the device profile)"
    ),
    "PROCESS_VARIANCE": (
        "runner processes disagree (memory layout, core placement): use more processes, pin "
        "cores with --affinity"
    ),
    "MULTIMODAL": (
        "runner processes fall into modes (see modes), not one level: pin cores with --affinity, "
        "try --threads 1, add processes with --max-processes so each mode's share shows"
    ),
    "GRAPH_FOLDED": (
        "the exported graph runs fewer MACs than the model: a converter folded constant branches "
        "(untrained zero-init weights?); rerun without --keep-weights or check the checkpoint"
    ),
    "EMULATED": (
        "measured under CPU translation (qemu-user, Rosetta): timings are not the device's; "
        "never compare with native rows"
    ),
    "OPS_SUM_OFF": (
        "the operator times do not add up to the end-to-end median (ops_sum_ratio): read them as "
        "shares, not milliseconds; `bench results` says why (another mode, or between operators)"
    ),
}


@dataclass(kw_only=True)
class BaseSummary:
    """What both summaries say beside their statistics: over how many processes (and their
    medians, and the modes these fall into), the flags, the warm-up and cold inference, and the
    95 % interval of the median."""

    processes: int
    process_medians: list[float] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    warmup_n: int | None = None
    cold_ms: float | None = None
    ci95_low: float | None = None
    ci95_high: float | None = None
    #: what the intervals are (``stats/intervals``): across processes, or one process's samples
    ci_method: str = ""
    #: the levels the process medians fall into (``stats/modes``); empty for one level
    modes: tuple[Mode, ...] = ()

    def as_row(self) -> dict[str, Any]:
        """The ``runs.csv`` columns this summary fills; a statistic it lacks (``None``, or one
        this kind of summary has not) becomes an empty cell."""
        row: dict[str, Any] = {
            column: getattr(self, attr, None)
            for column, attr in (
                ("median_ms", "median"), ("mean_ms", "mean"), ("std_ms", "std"), ("min_ms", "min"),
                ("max_ms", "max"), ("p10_ms", "p10"), ("p90_ms", "p90"), ("p99_ms", "p99"),
                ("iqr_ms", "iqr"), ("mad_ms", "mad"), ("cv", "cv"), ("ci99_low_ms", "ci99_low"),
                ("ci99_high_ms", "ci99_high"), ("n", "n"), ("processes", "processes"),
                ("ci95_low_ms", "ci95_low"), ("ci95_high_ms", "ci95_high"),
            )
        }  # fmt: skip
        row["ci_method"] = self.ci_method
        row["process_medians_ms"] = ";".join(f"{m:.6g}" for m in self.process_medians)
        row["flags"] = ";".join(self.flags)
        row["modes"] = format_modes(self.modes)
        # only when known, so a caller's own value is not overwritten with an empty cell
        if self.warmup_n is not None:
            row["warmup_n"] = self.warmup_n
        if self.cold_ms is not None:
            row["cold_ms"] = self.cold_ms
        return row


@dataclass
class Summary(BaseSummary):
    """The statistics of one measurement (docs/method.md "What a result row reports"), in ms."""

    n: int
    median: float
    mean: float
    std: float | None
    min: float
    max: float
    p10: float
    p90: float | None
    p99: float | None
    iqr: float
    mad: float
    cv: float | None
    ci99_low: float | None
    ci99_high: float | None


def _as_array(samples_ms: Samples) -> np.ndarray:
    arr = np.asarray(samples_ms, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise UsageError("no samples to summarize: the runner returned no timed inferences")
    if not np.all(np.isfinite(arr)):
        raise UsageError("samples contain NaN or infinite latencies: the timer or runner is broken")
    return arr


def median_ci(samples: Samples, confidence: float = CI_CONFIDENCE) -> tuple[float, float]:
    """Order-statistic CI of the median (exact binomial; ``(min, max)`` for too few samples)."""
    arr = np.sort(_as_array(samples))
    return median_ci_stdlib(arr, confidence)  # type: ignore[arg-type]


def process_variance_p(samples_ms: Samples, process_medians_ms: Samples) -> float | None:
    """p-value of "the process medians differ only by sampling noise"; None below 2 processes.

    Under that hypothesis every process draws from the same distribution F, whose estimate is
    the pooled sample. The median of ``n_p = n / R`` draws then has standard error
    ``se ~ (Q(1/2 + z/(2 sqrt n_p)) - Q(1/2 - z/(2 sqrt n_p))) / (2 z)`` (the rank of a median is
    ~ N(n_p/2, n_p/4); ``Q`` is the pooled quantile function), and
    ``sum((M_i - mean M)^2) / se^2`` is ~ chi-square with R - 1 degrees of freedom. Samples within
    a process are autocorrelated, which makes ``se`` optimistic and the test eager; the flag
    therefore also needs a practical spread (``PROCESS_VARIANCE_MIN_SD``).
    """
    medians = np.asarray(process_medians_ms, dtype=float)
    r = medians.size
    if r < 2:
        return None
    arr = np.sort(_as_array(samples_ms))
    n_p = max(1.0, arr.size / r)
    half = min(0.5, PROCESS_SE_Z / (2.0 * math.sqrt(n_p)))
    lo, hi = np.quantile(arr, [0.5 - half, 0.5 + half])
    se = (hi - lo) / (2.0 * PROCESS_SE_Z)
    ss = float(np.sum((medians - medians.mean()) ** 2))
    if se <= 0:
        # quantised timer, all samples equal: any disagreement cannot come from sampling noise
        return 0.0 if ss > 0 else 1.0
    return float(sps.chi2.sf(ss / se**2, r - 1))


def _governor_unlocked(governor: str | None) -> bool:
    if governor is None:
        return False
    names = [g.strip().lower() for g in governor.replace(",", ";").split(";") if g.strip()]
    return bool(names) and any(g != LOCKED_GOVERNOR for g in names)


def _drifted(parts: Sequence[np.ndarray]) -> bool:
    """The last quarters of the processes against their first quarters, pooled over processes:
    the medians moved by more than DRIFT_REL.

    Pooled, not any one process: a trend inside the processes (heat, a warm-up that had not
    settled) shows in most of them, while the quarter medians of a single short process (a
    dozen samples of fifty) move by a few per cent on noise alone, and with ten processes one of
    them would flag nearly every noisy row."""
    firsts, lasts = [], []
    for arr in parts:
        if arr.size < DRIFT_MIN_N:
            continue
        quarter = arr.size // 4
        firsts.append(arr[:quarter])
        lasts.append(arr[-quarter:])
    if not firsts:
        return False
    first = float(np.median(np.concatenate(firsts)))
    last = float(np.median(np.concatenate(lasts)))
    return first > 0 and abs(last - first) > DRIFT_REL * first


def flags_for(
    samples_ms: Samples,
    process_medians_ms: Samples = (),
    *,
    governor: str | None = None,
    throttle_ratio: float | None = None,
    thermal_rose: bool = False,
    process_sizes: Sequence[int] = (),
) -> list[str]:
    """Every condition of docs/method.md's flag list that holds, in ``FLAGS`` order.

    ``samples_ms`` must be in measurement order (process after process) for DRIFT to mean drift.
    ``process_sizes`` (samples per process, in that order) makes DRIFT a trend inside the
    processes (their quarters pooled, ``_drifted``): across processes the first and last
    quarters are different processes, whose difference is PROCESS_VARIANCE's business.
    ``governor`` is the cpufreq governor (several cores may be joined by ``;``); None or "" when
    it cannot be read, which raises no flag.
    """
    arr = _as_array(samples_ms)
    n = arr.size
    med = float(np.median(arr))
    mean = float(arr.mean())
    q25, q75 = np.quantile(arr, [0.25, 0.75])
    flags: set[str] = set()
    if med > 0:
        rel_iqr = float(q75 - q25) / med
        if rel_iqr >= HIGH_IQR_REL:
            flags.add("HIGH_IQR")
        if rel_iqr >= VERY_HIGH_IQR_REL:
            flags.add("VERY_HIGH_IQR")
    if n >= 2 and mean > 0 and float(arr.std(ddof=1)) / mean >= HIGH_CV:
        flags.add("HIGH_CV")
    if mean > 0:
        extreme = int(np.count_nonzero(np.abs(arr - mean) > EXTREME_REL * mean))
        if extreme > 0 and extreme > EXTREME_SHARE * n:
            flags.add("EXTREME")
    if n < FEW_SAMPLES_N:
        flags.add("FEW_SAMPLES")
    if len(process_sizes) >= 2 and sum(process_sizes) == n:
        parts = np.split(arr, np.cumsum(process_sizes)[:-1])
    else:
        parts = [arr]
    if _drifted(parts):
        flags.add("DRIFT")
    if thermal_rose or (throttle_ratio is not None and throttle_ratio > THROTTLE_RATIO):
        flags.add("THROTTLED")
    if _governor_unlocked(governor):
        flags.add("CLOCKS_UNLOCKED")
    if len(process_medians_ms) >= 2 and med > 0:
        pm = np.asarray(process_medians_ms, dtype=float)
        spread = float(np.log(pm).std(ddof=1)) if np.all(pm > 0) else 0.0
        p = process_variance_p(arr, pm)
        if p is not None and p < PROCESS_VARIANCE_ALPHA and spread >= PROCESS_VARIANCE_MIN_SD:
            flags.add("PROCESS_VARIANCE")
    if find_modes([float(m) for m in process_medians_ms]):
        flags.add("MULTIMODAL")
    return [f for f in FLAGS if f in flags]


def _interval(
    sorted_arr: np.ndarray, process_medians: Sequence[float], median: float, confidence: float
) -> Interval | None:
    """The row's interval of its median (``stats/intervals``): across processes when there
    are several, else the order statistics of the samples; None when they are too few."""
    return median_interval(sorted_arr, process_medians, median, confidence)  # type: ignore[arg-type]


def _ci_method(
    n: int, ci99: Interval | None, ci95: Interval | None, modes: Sequence[Mode] = ()
) -> str:
    """What the intervals are, which level is missing for want of samples, and the mixture
    of modes they span."""
    missing = [
        METHOD_TOO_FEW.format(level=label, n=n)
        for label, found in (("99 %", ci99), ("95 %", ci95))
        if found is None
    ]
    present = ci99 or ci95
    return "; ".join(([present.method] if present else []) + missing) + _mixture(modes)


def _mixture(modes: Sequence[Mode]) -> str:
    """The ``ci_method`` suffix of an interval across modes; "" for one level."""
    return METHOD_MIXTURE.format(n=len(modes)) if modes else ""


def summarize(
    samples_ms: Samples,
    *,
    process_medians_ms: Samples = (),
    warmup_n: int | None = None,
    cold_ms: float | None = None,
    governor: str | None = None,
    throttle_ratio: float | None = None,
    thermal_rose: bool = False,
    process_sizes: Sequence[int] = (),
) -> Summary:
    """Summarise the samples of one measurement (all processes pooled, in measurement order).

    The intervals of the median (``ci99_*``, ``ci95_*``) are across ``process_medians_ms`` when
    there are two or more (``stats/intervals``), else the order statistics of the samples; where
    the process medians fall into modes (``stats/modes``) the summary carries them, raises
    MULTIMODAL, and ``ci_method`` says the interval spans their mixture.
    Percentiles interpolate linearly between order statistics (numpy's default, the same rule as
    ``method.quantile`` on devices). p90/p99 stay None below the MLPerf minimum sample counts.
    MAD is the raw median absolute deviation (not scaled by 1.4826).
    """
    arr = _as_array(samples_ms)
    n = int(arr.size)
    sorted_arr = np.sort(arr)
    med = float(np.median(sorted_arr))
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n >= 2 else None
    p10, q25, q75, p90, p99 = (
        float(v) for v in np.quantile(sorted_arr, [0.10, 0.25, 0.75, 0.90, 0.99])
    )
    process_medians = [float(m) for m in process_medians_ms]
    ci99 = _interval(sorted_arr, process_medians, med, CI_CONFIDENCE)
    ci95 = _interval(sorted_arr, process_medians, med, CI95_CONFIDENCE)
    modes = find_modes(process_medians)
    return Summary(
        n=n,
        median=med,
        mean=mean,
        std=std,
        min=float(sorted_arr[0]),
        max=float(sorted_arr[-1]),
        p10=p10,
        p90=p90 if n >= P90_MIN_N else None,
        p99=p99 if n >= P99_MIN_N else None,
        iqr=q75 - q25,
        mad=float(np.median(np.abs(arr - med))),
        cv=std / mean if std is not None and mean > 0 else None,
        ci99_low=ci99.low if ci99 else None,
        ci99_high=ci99.high if ci99 else None,
        ci95_low=ci95.low if ci95 else None,
        ci95_high=ci95.high if ci95 else None,
        ci_method=_ci_method(n, ci99, ci95, modes),
        processes=max(1, len(process_medians)),
        process_medians=process_medians,
        modes=modes,
        flags=flags_for(
            arr,
            process_medians,
            governor=governor,
            throttle_ratio=throttle_ratio,
            thermal_rose=thermal_rose,
            process_sizes=process_sizes,
        ),
        warmup_n=warmup_n,
        cold_ms=cold_ms,
    )


# --- statistics a native tool printed (no per-inference samples) ----------------------------------


@dataclass
class ToolSummary(BaseSummary):
    """The ``runs.csv`` statistics that a tool's printed aggregates determine, and no more.

    Columns that need the samples themselves (p10, IQR, MAD) stay empty, and so do the flags
    that need them (HIGH_IQR, VERY_HIGH_IQR, DRIFT, PROCESS_VARIANCE); MULTIMODAL needs only
    the invocations' figures (``stats/modes``). With several invocations the intervals of the
    median are across them (the t-interval of ``stats/intervals`` on each invocation's median, or
    its mean where the tool prints no median), and ``ci_method`` says which; one invocation has
    none.
    """

    n: int
    median: float | None
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    p90: float | None
    p99: float | None
    cv: float | None
    ci99_low: float | None = None
    ci99_high: float | None = None


def _pooled_std(parts: Sequence[ToolStats], mean: float, n: int) -> float | None:
    """Sample std of all runs pooled, exactly, from each part's count, mean and sample std."""
    if n < 2:
        return None
    ss = 0.0
    for p in parts:
        if p.mean is None or (p.std is None and p.n > 1):
            return None
        within = (p.n - 1) * p.std**2 if p.std is not None and p.n > 1 else 0.0
        ss += within + p.n * (p.mean - mean) ** 2
    return math.sqrt(ss / (n - 1))


def summarize_tool_stats(
    parts: Sequence[ToolStats],
    *,
    warmup_n: int | None = None,
    cold_ms: float | None = None,
    governor: str | None = None,
    thermal_rose: bool = False,
) -> ToolSummary:
    """Combine the aggregates of one or more tool invocations without inventing samples.

    Count, mean, sample std, min and max pool exactly. The median and the percentiles do not: with
    one process they are the tool's own; with several, ``median`` is the median of the process
    medians (listed in ``process_medians``) and p90/p99 stay empty. p90/p99 also stay empty below
    the MLPerf minimum counts, however the tool computed them.
    """
    if not parts:
        raise UsageError("no tool statistics to summarize: no process finished")
    if any(p.n < 1 for p in parts):
        raise UsageError("a tool reported no timed inferences (count=0)")
    n = sum(p.n for p in parts)
    means = [p.mean for p in parts if p.mean is not None]
    mean = (
        sum(p.n * m for p, m in zip(parts, means, strict=True)) / n
        if len(means) == len(parts)
        else None
    )
    std = _pooled_std(parts, mean, n) if mean is not None else None
    mins = [p.min for p in parts if p.min is not None]
    maxs = [p.max for p in parts if p.max is not None]
    lo = min(mins) if len(mins) == len(parts) else None
    hi = max(maxs) if len(maxs) == len(parts) else None
    medians = [p.median for p in parts if p.median is not None]
    all_medians = len(medians) == len(parts)
    if len(parts) == 1:
        median = parts[0].median
        p90 = parts[0].p90 if n >= P90_MIN_N else None
        p99 = parts[0].p99 if n >= P99_MIN_N else None
    else:
        median = float(np.median(medians)) if all_medians else None
        p90 = p99 = None  # percentiles of separate runs cannot be pooled
    cv = std / mean if std is not None and mean else None
    values, what = _tool_values(parts)
    modes = find_modes(values)
    ci = _tool_intervals(values, what, median if median is not None else mean, modes)
    flags: set[str] = {"MULTIMODAL"} if modes else set()
    if cv is not None and cv >= HIGH_CV:
        flags.add("HIGH_CV")
    if mean and (
        (hi is not None and hi - mean > EXTREME_REL * mean)
        or (lo is not None and mean - lo > EXTREME_REL * mean)
    ):
        flags.add("EXTREME")
    if n < FEW_SAMPLES_N:
        flags.add("FEW_SAMPLES")
    if thermal_rose:
        flags.add("THROTTLED")
    if _governor_unlocked(governor):
        flags.add("CLOCKS_UNLOCKED")
    return ToolSummary(
        n=n,
        median=median,
        mean=mean,
        std=std,
        min=lo,
        max=hi,
        p90=p90,
        p99=p99,
        cv=cv,
        processes=len(parts),
        process_medians=[float(m) for m in medians] if all_medians and len(parts) > 1 else [],
        flags=[f for f in FLAGS if f in flags],
        warmup_n=warmup_n,
        cold_ms=cold_ms,
        modes=modes,
        **ci,
    )


def _tool_values(parts: Sequence[ToolStats]) -> tuple[list[float], str]:
    """One figure per invocation and what it is: its median when every invocation printed
    one, else its mean; ``([], "")`` when neither is known for all."""
    medians = [p.median for p in parts]
    means = [p.mean for p in parts]
    if all(m is not None for m in medians):
        return [float(m) for m in medians if m is not None], "tool medians"
    if all(m is not None for m in means):
        return [float(m) for m in means if m is not None], "tool means"
    return [], ""


def _tool_intervals(
    values: Sequence[float], what: str, centre: float | None, modes: Sequence[Mode]
) -> dict[str, Any]:
    """``ci99_*``, ``ci95_*`` and ``ci_method`` of a tool's invocations: across their
    ``values`` (``_tool_values``), with the mixture of ``modes`` they span; nothing for one."""
    found: dict[str, Any] = {}
    for level, key in ((CI_CONFIDENCE, "ci99"), (CI95_CONFIDENCE, "ci95")):
        interval = median_interval([], values, centre, level, what=what)
        if interval is not None:
            found.update({f"{key}_low": interval.low, f"{key}_high": interval.high,
                          "ci_method": interval.method + _mixture(modes)})  # fmt: skip
    return found
