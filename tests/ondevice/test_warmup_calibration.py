"""Warm-up calibrated once per job (issue 29): the first process finds where its latency settled,
later processes warm up for that count times a margin, check they settled, and fall back to the
full rule when they did not. Synthetic latencies and a fake clock: nothing depends on this
machine's speed."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np
import pytest

from benchharness.ondevice import method, protocol
from benchharness.ondevice.method import (
    WARMUP_DEFAULT,
    WARMUP_DELEGATE,
    CalibratedWarmup,
    WarmupRule,
)
from tests.ondevice.shipped import load_runner

NS_PER_MS = 1_000_000
#: The steady latency of the synthetic models.
STEADY_NS = 5 * NS_PER_MS


def settling(settle_at: int, n: int = 400, slow: float = 3.0) -> list[int]:
    """``slow`` x the steady latency for the first ``settle_at`` inferences, steady after."""
    return [int(STEADY_NS * (slow if i < settle_at else 1.0)) for i in range(n)]


def ramp(settle_at: int, n: int = 2000, slow: float = 3.0) -> list[int]:
    """From ``slow`` x the steady latency down to it in a straight line over ``settle_at``
    inferences, steady after: consecutive windows differ until the end of the ramp."""
    return [
        int(STEADY_NS * (1.0 + (slow - 1.0) * max(0, settle_at - i) / settle_at)) for i in range(n)
    ]


def never_settling(n: int = 8000) -> list[int]:
    """Blocks of 20 alternating 10 ms / 20 ms: consecutive windows always differ by 2x."""
    return [(10 if (i // 20) % 2 else 20) * NS_PER_MS for i in range(n)]


def noisy_flat(n: int = 400, seed: int = 7) -> list[int]:
    """A level that never moves, with 2 % noise on every inference."""
    rng = np.random.default_rng(seed)
    return (STEADY_NS * rng.normal(1.0, 0.02, n)).astype(int).tolist()


# ------------------------------------------------------------------ where the latency settled


def test_a_model_that_settles_after_30_inferences_settles_at_the_next_window() -> None:
    # window [20, 40) still holds ten slow inferences: its median is off the final level
    assert WARMUP_DEFAULT.settle_point(settling(30)) == 40
    assert WARMUP_DEFAULT.settle_point(settling(40)) == 40
    # a window median is robust: nine slow inferences of twenty leave it on the final level,
    # eleven do not
    assert WARMUP_DEFAULT.settle_point(settling(49)) == 40
    assert WARMUP_DEFAULT.settle_point(settling(51)) == 60


def test_a_model_that_never_settles_has_no_settle_point() -> None:
    assert WARMUP_DEFAULT.settle_point(never_settling(400)) is None


def test_a_noisy_but_flat_model_settles_at_the_start() -> None:
    assert WARMUP_DEFAULT.settle_point(noisy_flat()) == 0


def test_a_late_excursion_moves_the_settle_point_past_it() -> None:
    # steady, then one slow window at 100..120, steady again: every later window must agree too
    lat = settling(0)
    lat[100:120] = [2 * STEADY_NS] * 20
    assert WARMUP_DEFAULT.settle_point(lat) == 120


def test_fewer_than_two_windows_have_no_settle_point() -> None:
    assert WARMUP_DEFAULT.settle_point([STEADY_NS] * 39) is None
    assert WARMUP_DEFAULT.settle_point([STEADY_NS] * 40) == 0
    # an unfinished last window is not compared
    assert WARMUP_DEFAULT.settle_point([STEADY_NS] * 40 + [9 * STEADY_NS] * 19) == 0


def test_the_settle_point_uses_the_rules_tolerance() -> None:
    lat = [int(STEADY_NS * 1.08)] * 40 + [STEADY_NS] * 60  # 8 % above the final level
    assert WARMUP_DEFAULT.settle_point(lat) == 40
    assert WarmupRule(tol=0.10).settle_point(lat) == 0


# ------------------------------------------------------------------ the calibrated count


@pytest.mark.parametrize(
    ("settle_n", "count"),
    [
        (0, 40),  # the floor: two windows, what the check compares
        (20, 60),  # two windows past the settle point beat 1.5 x 20
        (40, 80),
        (100, 160),  # 1.5 x 100 = 150, up to the next window
        (200, 300),
        (1000, 1500),
    ],
)
def test_the_calibrated_count_is_the_settle_point_with_its_margin(
    settle_n: int, count: int
) -> None:
    assert WARMUP_DEFAULT.calibrated_count(settle_n) == count
    assert count % WARMUP_DEFAULT.window == 0
    assert count >= settle_n * method.CALIBRATION_MARGIN
    assert count >= settle_n + method.CALIBRATION_CHECK_WINDOWS * WARMUP_DEFAULT.window


# ------------------------------------------------------------------ the rules, inference by inference


def simulate(rule: WarmupRule | CalibratedWarmup, latencies_ns: Sequence[int]) -> tuple[int, str]:
    """Feed samples one by one, the fake clock moved on by each; the count and why it ended."""
    samples: list[int] = []
    clock_ns = 0
    for value in latencies_ns:
        samples.append(value)
        clock_ns += value
        why = rule.reason(samples, clock_ns / 1e9)
        if why is not None:
            return len(samples), why
    raise AssertionError("the rule never stopped")


def test_the_full_rule_says_why_it_ended() -> None:
    n, why = simulate(WARMUP_DEFAULT, settling(30, n=1000))
    # 1 s: 30 slow inferences (0.45 s) and 110 steady ones (0.55 s)
    assert (n, why) == (140, method.WARMUP_STABLE)
    _, why = simulate(WARMUP_DEFAULT, never_settling())
    assert why == method.WARMUP_CAP


def test_a_calibrated_warmup_runs_its_count_without_the_time_minimum() -> None:
    rule = CalibratedWarmup(target_n=60)
    n, why = simulate(rule, settling(10, n=1000))
    assert (n, why) == (60, method.WARMUP_CHECKED)
    assert n * STEADY_NS / 1e9 < WARMUP_DEFAULT.min_s  # well under the full rule's 1 s


def test_a_calibrated_count_below_two_windows_is_raised_to_two() -> None:
    n, why = simulate(CalibratedWarmup(target_n=5), settling(0, n=1000))
    assert (n, why) == (40, method.WARMUP_CHECKED)


def test_a_process_that_has_not_settled_at_its_count_falls_back_to_the_full_rule() -> None:
    # calibrated for 60, but this process is still getting faster until inference 150
    lat = ramp(150)
    n, why = simulate(CalibratedWarmup(target_n=60), lat)
    assert why == method.WARMUP_STABLE
    # the full rule from the start of warm-up: its 1 s minimum and aligned windows, until two
    # windows agree past the ramp
    assert n % 20 == 0 and sum(lat[:n]) / 1e9 >= WARMUP_DEFAULT.min_s
    assert n == 180


def test_the_fallback_keeps_the_full_rules_cap() -> None:
    n, why = simulate(CalibratedWarmup(target_n=60), never_settling())
    assert why == method.WARMUP_CAP
    assert sum(never_settling()[:n]) / 1e9 == pytest.approx(WARMUP_DEFAULT.cap_s, abs=0.03)


def test_the_cap_ends_a_calibrated_count_a_slow_device_cannot_reach() -> None:
    n, why = simulate(CalibratedWarmup(target_n=100), [2_000_000_000] * 100)
    assert why == method.WARMUP_CAP and n == 15


# ------------------------------------------------------------------ the runner


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    return load_runner("bh_warmup_runner")


class FakeDevice:
    """A runner whose inferences take the given latencies in turn (then the last one), each
    moving the fake clock on by its latency."""

    def __init__(self, latencies_ns: Sequence[int]) -> None:
        self.latencies = list(latencies_ns)
        self.calls = 0
        self.now = 0

    def clock(self) -> int:
        return self.now

    def run(self) -> None:
        self.now += self.latencies[min(self.calls, len(self.latencies) - 1)]
        self.calls += 1


def _measure(runner: ModuleType, lat: Sequence[int], *argv: str) -> dict:
    args = runner.parse_args(["--model", "m", "--format", "onnx", *argv])
    stop, warm = runner.rules(args)
    device = FakeDevice([STEADY_NS, *lat])  # the cold inference first
    out: dict = runner.measure(device, stop, warm, clock=device.clock)
    return out


def test_the_first_process_reports_where_it_settled(runner: ModuleType) -> None:
    out = _measure(runner, settling(30, n=1000))
    assert out["warmup_mode"] == protocol.WARMUP_FULL
    assert out["warmup_n"] == 140  # the whole full rule, its 1 s minimum included
    assert out["warmup_settle_n"] == 40
    assert out["warmup_settle_s"] == pytest.approx((30 * 3 + 10) * STEADY_NS / 1e9)


def test_a_first_process_that_never_settled_reports_no_settle_point(runner: ModuleType) -> None:
    out = _measure(runner, never_settling())
    assert out["warmup_mode"] == protocol.WARMUP_FULL
    assert out["warmup_settle_n"] is None and out["warmup_settle_s"] is None


def test_a_calibrated_process_runs_its_count(runner: ModuleType) -> None:
    out = _measure(runner, settling(10, n=1000), "--warmup-target-n", "60")
    assert out["warmup_mode"] == protocol.WARMUP_CALIBRATED
    assert out["warmup_n"] == 60 and out["warmup_s"] < WARMUP_DEFAULT.min_s
    assert out["warmup_settle_n"] is None  # it checked, it did not calibrate
    assert len(out["samples_ms"]) >= method.DEFAULT.min_n


def test_a_calibrated_process_that_had_not_settled_says_it_fell_back(runner: ModuleType) -> None:
    out = _measure(runner, ramp(150), "--warmup-target-n", "60")
    assert out["warmup_mode"] == protocol.WARMUP_FALLBACK
    assert out["warmup_n"] == 180 and out["warmup_s"] >= WARMUP_DEFAULT.min_s
    assert out["warmup_settle_n"] == 140  # window [140, 160) is within 5 % of the final level


def test_the_runner_builds_the_calibrated_rule_on_the_full_one(runner: ModuleType) -> None:
    args = runner.parse_args(["--model", "m", "--format", "onnx", "--warmup-target-n", "80"])
    # the runner's method module is the shipped sibling, not this package's: compared by value
    _, warm = runner.rules(args)
    assert type(warm).__name__ == "CalibratedWarmup" and warm.target_n == 80
    assert vars(warm.full) == vars(WARMUP_DEFAULT)
    _, warm = runner.rules(args, accelerated=True)
    assert vars(warm.full) == vars(WARMUP_DELEGATE)
    _, warm = runner.rules(runner.parse_args(["--model", "m", "--format", "onnx"]))
    assert type(warm).__name__ == "WarmupRule" and vars(warm) == vars(WARMUP_DEFAULT)


def test_the_result_states_the_calibrated_count(runner: ModuleType) -> None:
    args = runner.parse_args(["--model", "m", "--format", "onnx", "--warmup-target-n", "80"])
    stop, warm = runner.rules(args)
    assert runner.rule_of(stop, warm).warmup_target_n == 80
    _, full = runner.rules(runner.parse_args(["--model", "m", "--format", "onnx"]))
    assert runner.rule_of(stop, full).warmup_target_n is None
