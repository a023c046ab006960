"""Host statistics: the summary row, percentiles' minimum counts, the flags and their advice."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from benchharness.errors import UsageError
from benchharness.ondevice.protocol import ToolStats
from benchharness.stats import summary as stats
from benchharness.stats.modes import find_modes
from benchharness.stats.summary import (
    FLAG_ADVICE,
    FLAGS,
    flags_for,
    median_ci,
    process_variance_p,
    summarize,
    summarize_tool_stats,
)

ROW_KEYS = {
    "median_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "p10_ms", "p90_ms", "p99_ms",
    "iqr_ms", "mad_ms", "cv", "ci99_low_ms", "ci99_high_ms", "n", "processes",
    "process_medians_ms", "flags", "ci95_low_ms", "ci95_high_ms", "ci_method", "modes",
}  # fmt: skip


def stable(n: int, seed: int = 0, center: float = 10.0, sigma: float = 0.01) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(math.log(center), sigma, n)


def test_summary_values_match_numpy() -> None:
    x = stable(1000, sigma=0.03)
    s = summarize(x.tolist(), warmup_n=40, cold_ms=55.0)
    assert s.n == 1000
    assert s.median == pytest.approx(np.median(x))
    assert s.mean == pytest.approx(x.mean())
    assert s.std == pytest.approx(x.std(ddof=1))
    assert (s.min, s.max) == (x.min(), x.max())
    assert s.p10 == pytest.approx(np.quantile(x, 0.1))
    assert s.p90 == pytest.approx(np.quantile(x, 0.9))
    assert s.p99 == pytest.approx(np.quantile(x, 0.99))
    assert s.iqr == pytest.approx(np.quantile(x, 0.75) - np.quantile(x, 0.25))
    assert s.mad == pytest.approx(np.median(np.abs(x - np.median(x))))
    assert s.cv == pytest.approx(x.std(ddof=1) / x.mean())
    assert s.ci99_low <= s.median <= s.ci99_high
    assert (s.ci99_low, s.ci99_high) == median_ci(x.tolist())
    assert s.processes == 1 and s.flags == []
    row = s.as_row()
    assert set(row) >= ROW_KEYS
    assert row["warmup_n"] == 40 and row["cold_ms"] == 55.0
    assert row["flags"] == "" and row["process_medians_ms"] == ""
    assert row["modes"] == "" and s.modes == ()


def test_as_row_joins_lists_and_leaves_unknowns_out() -> None:
    s = summarize(stable(30).tolist(), process_medians_ms=[10.0, 10.01, 9.99])
    row = s.as_row()
    assert set(row) == ROW_KEYS  # no warmup_n/cold_ms given: not overwritten with blanks
    assert row["process_medians_ms"] == "10;10.01;9.99"
    assert row["flags"] == "FEW_SAMPLES"
    assert row["processes"] == 3
    assert row["p90_ms"] is None and row["p99_ms"] is None


@pytest.mark.parametrize(
    ("n", "has_p90", "has_p99"),
    [(63, False, False), (64, True, False), (661, True, False), (662, True, True)],
)
def test_percentiles_need_the_mlperf_minimum_counts(n: int, has_p90: bool, has_p99: bool) -> None:
    s = summarize(stable(n).tolist())
    assert (s.p90 is not None) == has_p90
    assert (s.p99 is not None) == has_p99
    assert ("FEW_SAMPLES" in s.flags) == (n < 64)


def test_single_sample() -> None:
    s = summarize([3.0])
    assert s.std is None and s.cv is None
    assert (s.ci99_low, s.ci99_high) == (None, None)  # one sample covers nothing at 99 %
    assert s.flags == ["FEW_SAMPLES"]


@pytest.mark.parametrize("n", range(1, 12))
def test_an_interval_is_given_only_at_a_level_it_reaches(n: int) -> None:
    """[min, max] of n samples covers the median with probability 1 - 2^(1-n): below 99 % for
    n < 8 and below 95 % for n < 6. A slow device's five-sample row then has no interval, and
    its ``ci_method`` says why, rather than a [min, max] labelled 99 %."""
    s = summarize(stable(n).tolist())
    coverage = 1 - 2.0 ** (1 - n)
    assert (s.ci99_low is not None) == (coverage >= 0.99) == (n >= 8)
    assert (s.ci95_low is not None) == (coverage >= 0.95) == (n >= 6)
    assert (s.ci99_high is None) == (s.ci99_low is None)
    if n < 8:
        assert "no 99 % interval" in s.ci_method and f"{n} samples" in s.ci_method
    if n < 6:
        assert "no 95 % interval" in s.ci_method
    else:
        assert s.ci_method.startswith("order statistics of one process")
    row = s.as_row()
    assert (row["ci99_low_ms"] is None) == (n < 8)


def test_bad_samples_are_refused() -> None:
    with pytest.raises(UsageError):
        summarize([])
    with pytest.raises(UsageError):
        summarize([1.0, float("nan")])


def test_median_ci_matches_brute_force_binomial() -> None:
    rng = np.random.default_rng(7)
    for n in (8, 20, 64, 150):
        x = rng.exponential(1.0, n)
        s = np.sort(x)
        # brute force: the tightest symmetric order-statistic interval with coverage >= 99 %
        best = None
        for r in range(1, n // 2 + 1):
            tail = sum(Fraction(math.comb(n, k), 2**n) for k in range(r))
            if 1 - 2 * tail >= Fraction(99, 100):
                best = r
        assert best is not None
        assert median_ci(x.tolist()) == (s[best - 1], s[n - best])
    assert median_ci([2.0, 1.0, 3.0]) == (1.0, 3.0)  # too few: the widest available


def test_spread_flags() -> None:
    assert flags_for(stable(500, sigma=0.01)) == []
    # lognormal sigma s: IQR/median = 2 sinh(0.674 s); 0.2 -> ~0.27, 0.1 -> ~0.135
    assert {"HIGH_IQR", "VERY_HIGH_IQR", "HIGH_CV"} <= set(flags_for(stable(2000, sigma=0.2)))
    mid = flags_for(stable(2000, sigma=0.1))
    assert "HIGH_IQR" in mid and "VERY_HIGH_IQR" not in mid


def test_outliers_raise_extreme() -> None:
    x = stable(64).tolist()
    assert "EXTREME" not in flags_for(x)
    x[10] = 25.0  # one sample 2.5x the mean: one in 64 is over 1 %
    flags = flags_for(x)
    assert "EXTREME" in flags
    assert "HIGH_IQR" not in flags  # one outlier does not move the quartiles
    low = stable(64).tolist()
    low[3] = 4.0
    assert "EXTREME" in flags_for(low)
    # among thousands, one interrupt is no finding; over 1 % of them reach p99 and are
    many = stable(5000).tolist()
    many[100] = 25.0
    assert "EXTREME" not in flags_for(many)
    for i in range(0, 5000, 90):
        many[i] = 25.0
    assert "EXTREME" in flags_for(many)


def test_drift() -> None:
    rng = np.random.default_rng(8)
    ramp = np.linspace(10.0, 11.0, 800) * rng.lognormal(0.0, 0.005, 800)  # +10 % over the run
    assert "DRIFT" in flags_for(ramp)
    assert "DRIFT" not in flags_for(stable(800))
    # three steady processes at different levels: no process drifts, so no DRIFT
    levels = np.concatenate([stable(400) * k for k in (1.0, 1.04, 1.08)])
    assert "DRIFT" in flags_for(levels)  # pooled, the first and last quarters differ by 8 %
    assert "DRIFT" not in flags_for(levels, process_sizes=[400, 400, 400])
    assert "DRIFT" in flags_for(np.concatenate([stable(400), ramp]), process_sizes=[400, ramp.size])
    small = np.linspace(10.0, 10.3, 800)  # +3 %: below the 5 % threshold
    assert "DRIFT" not in flags_for(small)


def test_throttle_and_clock_flags() -> None:
    x = stable(200)
    assert "THROTTLED" in flags_for(x, throttle_ratio=1.2)
    assert "THROTTLED" not in flags_for(x, throttle_ratio=1.05)
    assert "THROTTLED" in flags_for(x, thermal_rose=True)
    assert "CLOCKS_UNLOCKED" in flags_for(x, governor="schedutil")
    assert "CLOCKS_UNLOCKED" in flags_for(x, governor="performance;powersave")
    assert "CLOCKS_UNLOCKED" not in flags_for(x, governor="performance")
    assert "CLOCKS_UNLOCKED" not in flags_for(x, governor=None)
    assert "CLOCKS_UNLOCKED" not in flags_for(x, governor="")
    s = summarize(x.tolist(), governor="ondemand", throttle_ratio=1.5)
    assert s.flags == ["THROTTLED", "CLOCKS_UNLOCKED"]  # always in FLAGS order


def _processes(shifts: list[float], n: int, seed: int, sigma: float = 0.05) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    parts = [rng.lognormal(math.log(10.0 * (1 + s)), sigma, n) for s in shifts]
    return np.concatenate(parts).tolist(), [float(np.median(p)) for p in parts]


def test_process_variance_not_raised_when_processes_agree() -> None:
    raised = 0
    for seed in range(40):
        pooled, medians = _processes([0.0, 0.0, 0.0], 300, seed)
        raised += "PROCESS_VARIANCE" in flags_for(pooled, medians)
    assert raised == 0


def test_process_variance_raised_when_processes_disagree() -> None:
    pooled, medians = _processes([0.0, 0.05, 0.10], 300, 1)
    assert "PROCESS_VARIANCE" in flags_for(pooled, medians)
    p = process_variance_p(pooled, medians)
    assert p is not None and p < 1e-6


def test_process_variance_ignores_tiny_but_significant_differences() -> None:
    pooled, medians = _processes([0.0, 0.01], 20000, 2, sigma=0.01)
    p = process_variance_p(pooled, medians)
    assert p is not None and p < stats.PROCESS_VARIANCE_ALPHA  # real, 1 % apart
    assert "PROCESS_VARIANCE" not in flags_for(pooled, medians)  # but below the 3 % floor


def test_process_variance_reads_the_spread_not_the_range_of_many_processes() -> None:
    # ten processes 2 % apart (sd): their range reaches 6 %, yet they are this VM's normal
    rng = np.random.default_rng(4)
    shifts = [float(v) for v in rng.normal(0.0, 0.02, 10)]
    pooled, medians = _processes(shifts, 300, 3, sigma=0.02)
    assert max(medians) / min(medians) - 1 > 0.05
    assert "PROCESS_VARIANCE" not in flags_for(pooled, medians)


def test_process_variance_needs_two_processes() -> None:
    assert process_variance_p([1.0, 2.0], [1.5]) is None
    assert process_variance_p([5.0] * 10, [5.0, 5.0]) == 1.0  # quantised, identical
    assert process_variance_p([5.0] * 10, [5.0, 6.0]) == 0.0


def test_every_flag_has_advice() -> None:
    assert set(FLAG_ADVICE) == set(FLAGS)
    assert all(advice and "\n" not in advice for advice in FLAG_ADVICE.values())


def test_host_reuses_the_device_method() -> None:
    from benchharness.ondevice import method

    assert stats.median_ci_stdlib is method.median_ci_stdlib
    assert stats.DEFAULT is method.DEFAULT and stats.QUICK is method.QUICK


def test_drift_is_a_trend_of_the_processes_not_one_noisy_quarter() -> None:
    # ten short noisy processes (60 samples, 8 % spread): single quarters move by a few per
    # cent on noise alone; their pooled quarters do not
    rng = np.random.default_rng(12)
    parts = [rng.lognormal(math.log(5.0), 0.08, 60) for _ in range(10)]
    assert "DRIFT" not in flags_for(np.concatenate(parts), process_sizes=[60] * 10)
    # every process ramping by 10 %: a trend, whatever the noise
    ramps = [p * np.linspace(1.0, 1.1, 60) for p in parts]
    assert "DRIFT" in flags_for(np.concatenate(ramps), process_sizes=[60] * 10)


#: Process medians of issue 29's first real run (mobilenet_v2, ONNX Runtime, 2 threads, 2-core
#: VM): three near 4.0 ms, seven near 6.7 ms.
BIMODAL = [6.81, 6.69, 3.84, 6.40, 6.49, 6.73, 6.71, 6.75, 4.04, 4.03]


def _around(medians: list[float], n: int = 200, seed: int = 5) -> tuple[list[float], list[float]]:
    """Samples of processes at the given levels (1 % spread inside each), and their medians."""
    rng = np.random.default_rng(seed)
    parts = [rng.lognormal(math.log(m), 0.01, n) for m in medians]
    return np.concatenate(parts).tolist(), [float(np.median(p)) for p in parts]


def test_processes_in_modes_raise_multimodal_and_the_row_carries_them() -> None:
    pooled, medians = _around(BIMODAL)
    s = summarize(pooled, process_medians_ms=medians, process_sizes=[200] * 10)
    assert "MULTIMODAL" in s.flags
    assert s.modes == find_modes(medians)
    assert [m.count for m in s.modes] == [3, 7]
    assert s.ci_method.startswith("t over 10 process medians (log)")
    assert "mixture of 2 modes" in s.ci_method
    row = s.as_row()
    low, high = s.modes
    assert row["modes"] == f"{low.median_ms:.6g}:0.3;{high.median_ms:.6g}:0.7"
    # the interval across the modes stays (wide: +-18 % here), and says what it spans
    assert s.ci95_low is not None and s.ci95_high is not None
    assert (s.ci95_high - s.ci95_low) / 2 / s.median > 0.15


def test_one_level_with_a_spread_is_not_multimodal() -> None:
    rng = np.random.default_rng(6)
    pooled, medians = _around([float(v) for v in rng.lognormal(math.log(5.0), 0.05, 10)])
    s = summarize(pooled, process_medians_ms=medians, process_sizes=[200] * 10)
    assert "MULTIMODAL" not in s.flags and s.modes == ()
    assert "mixture" not in s.ci_method and s.as_row()["modes"] == ""
    assert "MULTIMODAL" not in flags_for(pooled, medians)


def test_multimodal_comes_after_process_variance_and_has_its_advice() -> None:
    assert FLAGS.index("MULTIMODAL") == FLAGS.index("PROCESS_VARIANCE") + 1
    advice = FLAG_ADVICE["MULTIMODAL"]
    assert all(option in advice for option in ("--affinity", "--threads 1", "--max-processes"))
    pooled, medians = _around(BIMODAL)
    flags = flags_for(pooled, medians)
    assert flags.index("PROCESS_VARIANCE") < flags.index("MULTIMODAL")


def test_a_native_tool_s_invocations_can_fall_into_modes() -> None:
    parts = [ToolStats(n=50, mean=m, median=m, min=m * 0.9, max=m * 1.1) for m in BIMODAL]
    s = summarize_tool_stats(parts)
    assert "MULTIMODAL" in s.flags and [m.count for m in s.modes] == [3, 7]
    assert s.ci_method.startswith("t over 10 tool medians (log)")
    assert "mixture of 2 modes" in s.ci_method
    one_level = summarize_tool_stats([ToolStats(n=50, mean=5.0, median=5.0)] * 10)
    assert "MULTIMODAL" not in one_level.flags and one_level.modes == ()
