"""The change-point detector on synthetic series with known steps (fixed seeds, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest

from benchharness.history.changepoint import (
    Observation,
    Step,
    detect,
    newest_step,
    optimal_cuts,
    penalty,
)

#: Process noise of the synthetic runs (log sd), as issue 28's benchmark uses.
NOISE = 0.02


def series(
    n: int,
    steps: Mapping[int, float],
    seed: int,
    *,
    processes: int = 5,
    run_noise: float = 0.0,
) -> list[Observation]:
    """``n`` runs at 10 ms, the level multiplied by ``steps[k]`` from run ``k`` on."""
    rng = np.random.default_rng(seed)
    level, out = math.log(10.0), []
    for k in range(n):
        level += math.log(steps.get(k, 1.0))
        shift = rng.normal(0.0, run_noise) if run_noise else 0.0
        values = np.exp(level + shift + rng.normal(0.0, NOISE, processes))
        if processes == 1:
            # one process: an interval that covers its own samples only (narrow)
            median = float(values[0])
            out.append(
                Observation.from_values(
                    [median], ci_low_ms=median * 0.998, ci_high_ms=median * 1.002
                )
            )
        else:
            out.append(Observation.from_values(list(values)))
    return out


def near(step: Step, truth: float) -> bool:
    """The true ratio lies within 1.5 half-widths of the 95 % interval (a 3-sigma check that a
    fixed seed passes or fails for good, not 1 time in 20)."""
    centre = math.log(step.ratio)
    half = (math.log(step.high) - math.log(step.low)) / 2
    return step.low < step.ratio < step.high and abs(math.log(truth) - centre) < 1.5 * half


@pytest.mark.parametrize("seed", range(8))
def test_finds_known_steps_at_their_index(seed: int) -> None:
    points = series(60, {20: 1.08, 40: 0.94}, seed)
    fit = detect(points)
    assert fit.indices == [20, 40]
    up, down = fit.changes
    assert near(up, 1.08) and near(down, 0.94)
    assert up.p_value < 1e-6 and down.p_value < 1e-6
    assert [(s.start, s.stop) for s in fit.segments] == [(0, 20), (20, 40), (40, 60)]


@pytest.mark.parametrize("seed", range(20))
def test_noise_only_has_no_change_point(seed: int) -> None:
    assert detect(series(50, {}, seed)).changes == ()


#: Seeds of the tests that count over many series: false changes are rare, not impossible
#: (issue 28's goal is at most 1 per 100 points), so they are counted, not forbidden, there.
MANY = range(10)


def false_changes(found: list[int], truth: list[int]) -> int:
    return len([i for i in found if all(abs(i - t) > 1 for t in truth)])


def test_noise_between_runs_is_learnt_from_the_series() -> None:
    """Runs that scatter more than their processes say (another day, another load): the extra
    spread is estimated from the series, not mistaken for steps."""
    false = 0
    for seed in MANY:
        false += len(detect(series(50, {}, seed, run_noise=0.02)).changes)
        fit = detect(series(50, {25: 1.25}, seed, run_noise=0.02))
        assert 25 in fit.indices, seed
        false += false_changes(fit.indices, [25])
        assert fit.run_sd == pytest.approx(0.02, rel=0.6)
    assert false <= 5  # of 1000 points: half the goal


def test_one_process_runs() -> None:
    """--quick runs: one process each, whose interval is far narrower than what repeats."""
    false = exact = 0
    for seed in MANY:
        false += len(detect(series(40, {}, seed, processes=1)).changes)
        found = detect(series(40, {20: 1.10}, seed, processes=1)).indices
        assert any(abs(i - 20) <= 1 for i in found), (seed, found)
        exact += 20 in found
        false += false_changes(found, [20])
    assert exact >= 8
    assert false <= 4  # of 800 points: half the goal


def test_a_single_slow_run_is_two_changes() -> None:
    points = series(12, {6: 5.0, 7: 0.2}, seed=3, processes=1)
    fit = detect(points)
    assert fit.indices == [6, 7]
    assert fit.changes[0].ratio == pytest.approx(5.0, rel=0.1)
    assert fit.changes[1].ratio == pytest.approx(0.2, rel=0.1)


def test_steps_below_the_minimum_are_merged() -> None:
    """A 0.5 % step measured very precisely is real but no news: it is merged away."""
    rng = np.random.default_rng(0)
    points = [
        Observation.from_values(list(10.0 * (1.005 if k >= 20 else 1.0) * np.exp(
            rng.normal(0.0, 0.0005, 10))))
        for k in range(40)
    ]  # fmt: skip
    assert detect(points).changes == ()


def test_short_and_empty_series() -> None:
    assert detect([]).changes == ()
    one = detect(series(1, {}, 0))
    assert one.changes == () and len(one.segments) == 1
    assert newest_step(series(1, {}, 0)) is None


def brute_force_cuts(x: np.ndarray, w: np.ndarray, beta: float) -> list[int]:
    """Optimal partitioning without pruning (Jackson et al.): the reference PELT must match."""
    n = len(x)
    best = [0.0] * (n + 1)
    best[0] = -beta
    last = [0] * (n + 1)
    for t in range(1, n + 1):
        options = []
        for s in range(t):
            seg_w, seg_x = w[s:t], x[s:t]
            mean = float(np.dot(seg_w, seg_x) / seg_w.sum())
            options.append((best[s] + float(np.dot(seg_w, (seg_x - mean) ** 2)) + beta, s))
        best[t], last[t] = min(options)
    cuts, t = [], n
    while t > 0:
        t = last[t]
        if t > 0:
            cuts.append(t)
    return sorted(cuts)


@pytest.mark.parametrize("seed", range(10))
def test_pruned_search_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 40
    x = np.repeat(rng.normal(0.0, 0.1, 4), n // 4) + rng.normal(0.0, 0.02, n)
    w = 1.0 / rng.uniform(0.0002, 0.001, n)
    beta = penalty(n)
    assert optimal_cuts(x, w, beta) == brute_force_cuts(x, w, beta)


@pytest.mark.parametrize("seed", range(5))
def test_newest_step_against_the_stable_segment(seed: int) -> None:
    points = series(30, {10: 1.2}, seed)
    quiet = newest_step(points)
    assert quiet is not None
    assert quiet.baseline.start == 10 and quiet.baseline.stop == 29
    assert quiet.p_slower > 0.001 and quiet.low < 1.0 < quiet.high
    slower = newest_step(series(30, {10: 1.2, 29: 1.10}, seed))
    assert slower is not None
    assert near(Step(29, slower.ratio, slower.low, slower.high, slower.p_slower), 1.10)
    assert slower.p_slower < 0.001 and slower.low > 1.03


def test_observation_from_an_interval() -> None:
    """One value: its variance comes from the interval (95 % unless said otherwise)."""
    point = Observation.from_values(
        [10.0], ci_low_ms=10.0 / math.exp(0.0196), ci_high_ms=10.0 * math.exp(0.0196)
    )
    assert point.processes == 1 and point.process_var is None
    assert point.interval_var == pytest.approx(0.01**2, rel=0.01)
    with pytest.raises(ValueError):
        Observation.from_values([0.0])
