"""The stdlib-only method pieces: order statistics, the median CI, warm-up and stopping rules."""

from __future__ import annotations

import ast
import math
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from benchharness.ondevice import method
from benchharness.ondevice.method import (
    ADAPTIVE,
    DEFAULT,
    NORMAL_APPROX_MIN_N,
    QUICK,
    WARMUP_DEFAULT,
    WARMUP_DELEGATE,
    StoppingRule,
    WarmupRule,
    median,
    median_ci_indices,
    median_ci_stdlib,
    quantile,
    warmup_stable,
)

NS_PER_MS = 1_000_000


def brute_force_cutoff(n: int, confidence: float) -> int:
    """Largest c with P(Bin(n, 1/2) <= c) <= (1 - confidence)/2, in exact rationals (-1: none)."""
    tail = (1 - Fraction(confidence)) / 2
    total = Fraction(0)
    best = -1
    for c in range(n + 1):
        total += Fraction(math.comb(n, c), 2**n)
        if total <= tail:
            best = c
        else:
            break
    return best


def test_method_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(method.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports would tie method.py to the package"
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_median_and_quantile_match_numpy() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 10, 101):
        xs = rng.lognormal(0.0, 0.5, n).tolist()
        assert median(xs) == pytest.approx(float(np.median(xs)))
        s = sorted(xs)
        for q in (0.0, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0):
            assert quantile(s, q) == pytest.approx(float(np.quantile(xs, q)))
    with pytest.raises(ValueError):
        median([])


@pytest.mark.parametrize("confidence", [0.99, 0.95])
def test_median_ci_indices_match_brute_force_binomial(confidence: float) -> None:
    for n in range(1, 301):
        expected = brute_force_cutoff(n, confidence)
        got = median_ci_indices(n, confidence)
        if expected < 0:
            assert got is None, n
        else:
            assert got == (expected, n - 1 - expected), n


def test_median_ci_coverage_is_at_least_the_confidence() -> None:
    for n in (8, 9, 50, 100, 333):
        idx = median_ci_indices(n, 0.99)
        assert idx is not None
        lo, hi = idx
        coverage = sum(Fraction(math.comb(n, k), 2**n) for k in range(lo + 1, hi + 1))
        assert coverage >= Fraction(99, 100)
        # one rank narrower would fall below the confidence: the interval is the tightest
        narrower = sum(Fraction(math.comb(n, k), 2**n) for k in range(lo + 2, hi))
        assert narrower < Fraction(99, 100)


def test_too_few_samples_give_the_widest_interval() -> None:
    assert median_ci_indices(7, 0.99) is None  # 2 * 2**-7 > 1 %
    assert median_ci_indices(8, 0.99) == (0, 7)
    assert median_ci_stdlib([5.0], 0.99) == (5.0, 5.0)
    assert median_ci_stdlib([1.0, 2.0, 3.0], 0.99) == (1.0, 3.0)


@pytest.mark.parametrize("n", [NORMAL_APPROX_MIN_N, 123_457, 1_000_000])
def test_normal_approximation_is_within_one_rank_of_exact(n: int) -> None:
    approx = median_ci_indices(n, 0.99)
    assert approx is not None
    exact = method._exact_cutoff(n, 0.005)
    assert abs(approx[0] - exact) <= 1


def test_median_ci_of_a_million_samples() -> None:
    # its cost is O(sqrt n) by construction (EXACT_WINDOW_SD); a time bound would test the machine
    for n in (NORMAL_APPROX_MIN_N - 1, 1_000_000):
        found = median_ci_indices(n, 0.99)
        assert found is not None and found[0] < n // 2 < found[1]


def test_warmup_stable() -> None:
    assert not warmup_stable([])
    assert not warmup_stable([10.0])
    assert warmup_stable([10.0, 10.4])
    assert warmup_stable([10.4, 10.0])
    assert not warmup_stable([10.0, 10.6])
    assert not warmup_stable([12.0, 10.0, 10.6], tol=0.05)
    assert warmup_stable([10.0, 10.9], tol=0.10)


def simulate(rule: WarmupRule | StoppingRule, latencies_ns: Sequence[int]) -> tuple[int, float]:
    """Feed samples one by one; the fake clock advances by each sample's own latency."""
    samples: list[int] = []
    clock_ns = 0  # integer nanoseconds, so 400 x 5 ms is exactly 2 s
    for value in latencies_ns:
        samples.append(value)
        clock_ns += value
        elapsed = clock_ns / 1e9
        if rule.done(samples, elapsed):
            return len(samples), elapsed
    raise AssertionError("the rule never stopped")


def test_warmup_waits_for_minimums_then_for_settled_windows() -> None:
    rng = np.random.default_rng(2)
    # 10 ms inferences that start 3x slower and decay: not settled before ~100 inferences
    decay = 1.0 + 2.0 * np.exp(-np.arange(2000) / 25.0)
    lat = (10 * NS_PER_MS * decay * rng.normal(1.0, 0.005, 2000)).astype(int).tolist()
    n, elapsed = simulate(WARMUP_DEFAULT, lat)
    assert n % 20 == 0 and n >= 100
    assert elapsed < WARMUP_DEFAULT.cap_s
    window_medians = [median(lat[n - 40 : n - 20]), median(lat[n - 20 : n])]
    assert warmup_stable(window_medians, 0.05)


def test_warmup_needs_min_time_even_when_stable() -> None:
    steady = [5 * NS_PER_MS] * 5000
    n, elapsed = simulate(WARMUP_DEFAULT, steady)
    assert elapsed >= 1.0 and n == 200  # 1 s of 5 ms inferences, on a window boundary
    n, elapsed = simulate(WARMUP_DELEGATE, steady)
    assert elapsed >= 2.0 and n == 400


def test_warmup_that_never_settles_stops_at_the_cap() -> None:
    # alternating 10 ms / 20 ms blocks of 20: consecutive windows always differ by 2x
    lat = [(10 if (i // 20) % 2 else 20) * NS_PER_MS for i in range(5000)]
    _, elapsed = simulate(WarmupRule(), lat)
    assert elapsed == pytest.approx(30.0, abs=0.03)


def test_stable_distribution_stops_soon_after_the_minimums() -> None:
    rng = np.random.default_rng(3)
    lat = (rng.normal(50.0, 1.0, 5000) * NS_PER_MS).astype(int).tolist()
    samples: list[int] = []
    elapsed = 0.0
    reason = None
    for value in lat:
        samples.append(value)
        elapsed += value / 1e9
        reason = ADAPTIVE.reason(samples, elapsed)
        if reason:
            break
    # 10 s of 50 ms inferences is ~200; the next check happens within check_every samples
    assert reason in ("iqr", "ci")
    assert 200 - 10 <= len(samples) <= 200 + ADAPTIVE.check_every
    assert elapsed >= ADAPTIVE.min_s


def test_heavy_tailed_distribution_runs_to_the_cap() -> None:
    rng = np.random.default_rng(4)
    # lognormal sigma 1: IQR/median ~ 1.45, the median's CI still ~8 % wide after 120 s
    lat = (rng.lognormal(math.log(50.0), 1.0, 5000) * NS_PER_MS).astype(int).tolist()
    n, elapsed = simulate(ADAPTIVE, lat)
    assert elapsed >= ADAPTIVE.max_s
    assert elapsed - lat[n - 1] / 1e9 < ADAPTIVE.max_s  # stopped by the first sample past the cap


def test_moderate_spread_stops_on_the_confidence_interval() -> None:
    rng = np.random.default_rng(5)
    # lognormal sigma 0.1: IQR/median ~ 0.135 (no IQR stop), CI within 1 % after ~1000 samples
    lat = (rng.lognormal(math.log(10.0), 0.1, 20000) * NS_PER_MS).astype(int).tolist()
    samples: list[int] = []
    elapsed = 0.0
    reason = None
    for value in lat:
        samples.append(value)
        elapsed += value / 1e9
        reason = ADAPTIVE.reason(samples, elapsed)
        if reason:
            break
    assert reason == "ci"
    assert 1000 <= len(samples) <= 2500
    lo, hi = median_ci_stdlib(sorted(samples))
    m = median(samples)
    assert max(m - lo, hi - m) <= 0.01 * m


def test_default_stops_at_its_short_minimums_however_noisy() -> None:
    rng = np.random.default_rng(8)
    lat = (rng.lognormal(math.log(2.0), 1.0, 5000) * NS_PER_MS).astype(int).tolist()
    n, elapsed = simulate(DEFAULT, lat)
    assert DEFAULT.reason(lat[:n], elapsed) == "min"
    assert n >= DEFAULT.min_n and elapsed >= DEFAULT.min_s
    assert elapsed < DEFAULT.min_s + 1.0  # no extension: a noisy process buys no seconds
    # a slow model stops at the 10 s cap before 50 inferences
    n, elapsed = simulate(DEFAULT, [int(1.5e9)] * 50)
    assert n < DEFAULT.min_n and elapsed >= DEFAULT.max_s


def test_quick_stops_at_the_minimums_without_adaptive_extension() -> None:
    rng = np.random.default_rng(6)
    lat = (rng.lognormal(math.log(50.0), 1.0, 5000) * NS_PER_MS).astype(int).tolist()
    samples: list[int] = []
    elapsed = 0.0
    for value in lat:
        samples.append(value)
        elapsed += value / 1e9
        if QUICK.done(samples, elapsed):
            break
    assert QUICK.reason(samples, elapsed) == "min"
    assert len(samples) >= 64 and elapsed >= 5.0
    # one sample earlier, one of the minimums was not met yet
    assert not QUICK.done(samples[:-1], elapsed - samples[-1] / 1e9)


def test_hard_cap_applies_before_the_minimums() -> None:
    assert ADAPTIVE.reason([NS_PER_MS] * 5, 120.0) == "max_s"
    assert ADAPTIVE.done([], 121.0)
    assert not ADAPTIVE.done([NS_PER_MS] * 99, 50.0)
    assert not ADAPTIVE.done([NS_PER_MS] * 200, 9.9)


def test_statistics_are_evaluated_only_every_check_every_samples() -> None:
    rule = StoppingRule(min_n=100, min_s=0.0, check_every=10)
    steady = [NS_PER_MS] * 200
    assert not rule.done(steady[:105], 1.0)
    assert rule.reason(steady[:110], 1.0) == "ci"
    assert rule.check_interval(10) == 10
    assert rule.check_interval(320) == 10
    assert rule.check_interval(321) == 20
    big = rule.check_interval(1_000_000)
    assert big * method.CHECK_GROWTH_DIVISOR >= 1_000_000 and big % 10 == 0


def test_presets_follow_method_md() -> None:
    # many short processes: a fixed, short budget each (precision comes from the process rule)
    assert (DEFAULT.min_n, DEFAULT.min_s, DEFAULT.max_s, DEFAULT.adaptive) == (50, 0.5, 10.0, False)
    assert (ADAPTIVE.min_n, ADAPTIVE.min_s, ADAPTIVE.max_s) == (100, 10.0, 120.0)
    assert (ADAPTIVE.ci_rel, ADAPTIVE.iqr_rel, ADAPTIVE.confidence) == (0.01, 0.10, 0.99)
    assert (QUICK.min_n, QUICK.min_s, QUICK.adaptive) == (64, 5.0, False)
    assert (WARMUP_DEFAULT.min_n, WARMUP_DEFAULT.min_s, WARMUP_DEFAULT.window) == (10, 1.0, 20)
    assert (WARMUP_DEFAULT.tol, WARMUP_DEFAULT.cap_s, WARMUP_DELEGATE.min_s) == (0.05, 30.0, 2.0)
