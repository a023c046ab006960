"""The interval of a row's median across processes, and the stopping rule on it.

Coverage is checked on synthetic runs whose between-process variance is known: each process gets
its own level (log-normal, sd ``tau``, as memory layout and core placement give one), its samples
scatter around that level, and the true median of the whole population is 1.0. Seeds are fixed,
and every tolerance is at least five binomial standard deviations of the simulated share, so no
stream of random numbers a numpy release could bring makes them flake.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchharness.ondevice.method import median_ci_stdlib
from benchharness.stats import intervals
from benchharness.stats.intervals import (
    METHOD_ONE_PROCESS,
    STOP_CAP,
    STOP_CI,
    STOP_FIXED,
    ProcessRule,
    log_halfwidth,
    median_interval,
)
from benchharness.stats.summary import summarize

#: Within-process spread of the synthetic samples (log sd): a typical CPU inference.
SIGMA = 0.03
#: Samples per synthetic process: enough for a median, small enough for thousands of runs.
N_SAMPLES = 41


def synthetic_processes(rng: np.random.Generator, processes: int, tau: float) -> np.ndarray:
    """One run's samples, a row per process (true median of the population 1.0)."""
    levels = rng.normal(0.0, tau, processes)
    return np.exp(levels[:, None] + rng.normal(0.0, SIGMA, (processes, N_SAMPLES)))


def row_interval(parts: np.ndarray, level: float) -> intervals.Interval:
    """The interval a row of these processes reports, as ``summarize`` computes it."""
    pooled = np.sort(parts.ravel())
    medians = [float(np.median(p)) for p in parts]
    found = median_interval(pooled, medians, float(np.median(pooled)), level)
    assert found is not None
    return found


def coverage(
    rng: np.random.Generator, runs: int, processes: int, tau: float, level: float
) -> float:
    hits = 0
    for _ in range(runs):
        found = row_interval(synthetic_processes(rng, processes, tau), level)
        hits += found.low <= 1.0 <= found.high
    return hits / runs


def tolerance(level: float, runs: int) -> float:
    """Five binomial standard deviations of a simulated coverage share."""
    return 5.0 * math.sqrt(level * (1.0 - level) / runs)


@pytest.mark.parametrize(("processes", "tau"), [(3, 0.02), (5, 0.01), (5, 0.04), (10, 0.02)])
def test_interval_covers_the_true_median_at_its_level(processes: int, tau: float) -> None:
    runs = 1500
    got = coverage(np.random.default_rng(1000 + processes), runs, processes, tau, 0.95)
    assert abs(got - 0.95) <= tolerance(0.95, runs)


def test_99_percent_interval_covers_at_99_percent() -> None:
    runs = 1500
    got = coverage(np.random.default_rng(7), runs, 5, 0.02, 0.99)
    assert abs(got - 0.99) <= tolerance(0.99, runs)


def test_pooled_samples_alone_would_not_cover() -> None:
    # the old interval, order statistics of the pooled samples: tight as the sample noise,
    # blind to the processes' own levels
    rng = np.random.default_rng(11)
    runs = 600
    hits = 0
    for _ in range(runs):
        pooled = np.sort(synthetic_processes(rng, 5, 0.03).ravel())
        lo, hi = median_ci_stdlib(pooled, 0.95)  # type: ignore[arg-type]
        hits += lo <= 1.0 <= hi
    assert hits / runs < 0.5


def test_without_between_process_variance_the_floor_keeps_it_honest() -> None:
    # processes that agree (tau 0): the t-interval alone still covers, the floor only widens
    got = coverage(np.random.default_rng(13), 1000, 5, 0.0, 0.95)
    assert got >= 0.95 - tolerance(0.95, 1000)


@pytest.mark.parametrize("tau", [0.01, 0.02, 0.03])
def test_stopping_rule_keeps_coverage_above_ninety_percent(tau: float) -> None:
    # optional stopping: a model stops when its interval happens to look narrow, which costs a
    # few points of coverage where the spread sits just above the target; the README states it
    rng = np.random.default_rng(int(tau * 1000))
    rule = ProcessRule()
    runs = 2000
    hits = 0
    used = []
    for _ in range(runs):
        parts = synthetic_processes(rng, rule.max_processes, tau)
        medians = [float(np.median(p)) for p in parts]
        r = next(k for k in range(1, rule.max_processes + 1) if rule.reason(medians[:k]))
        used.append(r)
        found = row_interval(parts[:r], rule.confidence)
        hits += found.low <= 1.0 <= found.high
    assert hits / runs >= 0.90
    assert min(used) >= rule.min_processes and max(used) <= rule.max_processes


def test_quiet_models_stop_at_the_minimum_and_noisy_ones_at_the_cap() -> None:
    rng = np.random.default_rng(21)
    rule = ProcessRule()
    quiet = [float(v) for v in np.exp(rng.normal(0.0, 0.002, 10))]
    noisy = [float(v) for v in np.exp(rng.normal(0.0, 0.08, 10))]
    assert [rule.reason(quiet[:k]) for k in range(1, 6)] == [None] * 4 + [STOP_CI]
    assert [rule.reason(noisy[:k]) for k in range(1, 10)] == [None] * 9
    assert rule.reason(noisy) == STOP_CAP


def test_stop_reason_follows_the_half_width() -> None:
    rule = ProcessRule(min_processes=2, max_processes=50, ci_rel=0.02)
    values = [1.0, 1.03, 0.99, 1.01, 0.98, 1.02, 1.0, 1.01]
    for k in range(2, len(values) + 1):
        half = log_halfwidth(values[:k], rule.confidence)
        assert half is not None
        assert (rule.reason(values[:k]) == STOP_CI) == (math.expm1(half) <= 0.02)


def test_fixed_rule_runs_exactly_its_count() -> None:
    rule = ProcessRule.fixed(3)
    assert [rule.reason([1.0] * k) for k in range(1, 4)] == [None, None, STOP_FIXED]
    assert rule.describe() == "3" and ProcessRule().describe() == "5-10"
    assert rule.wanted(1, False) == 3 and rule.wanted(3, True) == 3
    assert ProcessRule().wanted(7, False) == 8 and ProcessRule().wanted(2, False) == 5


def test_rule_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="min"):
        ProcessRule(min_processes=6, max_processes=5)
    with pytest.raises(ValueError, match="positive"):
        ProcessRule(ci_rel=0.0)


def test_interval_matches_students_t_by_hand() -> None:
    medians = [10.0, 10.4, 9.7, 10.2, 9.9]
    logs = np.log(medians)
    half = 2.7764451051977987 * logs.std(ddof=1) / math.sqrt(5)  # t(0.975, 4)
    found = median_interval([], medians, 10.0, 0.95)
    assert found is not None
    assert found.low == pytest.approx(10.0 * math.exp(-half))
    assert found.high == pytest.approx(10.0 * math.exp(half))
    assert found.method == "t over 5 process medians (log)"
    assert intervals.t_quantile(0.95, 4) == pytest.approx(2.7764451051977987)


def test_one_process_says_it_does_not_cover_processes() -> None:
    x = np.sort(np.random.default_rng(3).lognormal(0.0, 0.03, 500))
    found = median_interval(x, [], float(np.median(x)), 0.95)
    assert found is not None and found.method == METHOD_ONE_PROCESS
    assert (found.low, found.high) == median_ci_stdlib(x, 0.95)  # type: ignore[arg-type]
    assert median_interval([], [], None, 0.95) is None
    assert median_interval([], [5.0], 5.0, 0.95) is None  # one tool invocation: nothing to say


def test_summary_rows_carry_the_process_interval() -> None:
    parts = synthetic_processes(np.random.default_rng(5), 6, 0.03)
    pooled = np.sort(parts.ravel())
    medians = [float(np.median(p)) for p in parts]
    s = summarize(pooled.tolist(), process_medians_ms=medians)
    within = median_ci_stdlib(pooled, 0.99)  # type: ignore[arg-type]
    assert s.ci99_low < within[0] and s.ci99_high > within[1]  # wider than the samples alone
    assert s.ci95_low is not None and s.ci95_high is not None
    assert s.ci99_low < s.ci95_low < s.median < s.ci95_high < s.ci99_high
    assert s.ci_method.startswith("t over 6 process medians")
    row = s.as_row()
    assert row["ci95_low_ms"] == s.ci95_low and row["ci_method"] == s.ci_method
