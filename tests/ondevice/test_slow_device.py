"""A device where one inference takes seconds (a slow board, an emulated one): the runner's
warm-up, measuring and profiled passes end in bounded time, the row says how few samples it
got, and nothing stalls. A fake clock advances 2 s per inference."""

from __future__ import annotations

from types import ModuleType

import pytest

from benchharness.ondevice import method
from benchharness.stats.summary import summarize
from tests.ondevice.shipped import load_runner

#: One inference of the slow device.
INFERENCE_NS = 2_000_000_000
#: One inference longer than every cap.
MINUTE_NS = 60_000_000_000


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    """runner.py imported as the device imports it: its siblings flat on the path."""
    return load_runner("bh_slow_runner")


class SlowDevice:
    """A runner whose every inference moves the fake clock on by ``inference_ns``."""

    def __init__(self, inference_ns: int = INFERENCE_NS) -> None:
        self.inference_ns = inference_ns
        self.now = 0

    def clock(self) -> int:
        return self.now

    def run(self) -> None:
        self.now += self.inference_ns


def _rules(runner: ModuleType, *extra: str) -> tuple[method.StoppingRule, method.WarmupRule]:
    rules: tuple[method.StoppingRule, method.WarmupRule] = runner.rules(
        runner.parse_args(["--model", "m", "--format", "onnx", *extra])
    )
    return rules


@pytest.mark.parametrize("preset", ["default", "quick"])
def test_each_phase_ends_within_its_cap_plus_one_inference(runner: ModuleType, preset: str) -> None:
    device = SlowDevice()
    stop, warm = _rules(runner, "--preset", preset)
    out = runner.measure(device, stop, warm, clock=device.clock)
    one_s = INFERENCE_NS / 1e9
    assert out["warmup_s"] <= warm.cap_s + one_s
    assert out["measure_s"] <= stop.max_s + one_s
    assert out["stop_reason"] == "max_s", "the time cap, not the sample count, ended it"
    # cold + warm-up + measuring: the whole process is bounded by the caps it states
    assert device.now / 1e9 <= one_s + (warm.cap_s + one_s) + (stop.max_s + one_s)
    assert len(out["samples_ms"]) == round(stop.max_s / one_s)
    assert all(s == pytest.approx(2000.0) for s in out["samples_ms"])


def test_the_row_says_it_has_few_samples(runner: ModuleType) -> None:
    device = SlowDevice()
    stop, warm = _rules(runner)
    out = runner.measure(device, stop, warm, clock=device.clock)
    samples = out["samples_ms"]
    summary = summarize(samples, warmup_n=out["warmup_n"], cold_ms=out["cold_ms"])
    assert "FEW_SAMPLES" in summary.flags
    assert summary.p90 is None and summary.n == len(samples) == 5
    # five samples are too few for a 99 % (or 95 %) order-statistic interval: [min, max] would
    # cover the median 94 % of the time, so the row gives none and says why, never a cut one
    assert method.median_ci_indices(len(samples), 0.99) is None
    assert summary.ci99_low is None and summary.ci99_high is None
    assert summary.ci95_low is None and summary.ci95_high is None
    assert "no 99 % interval: 5 samples" in summary.ci_method


def test_the_profiled_pass_stops_at_its_cap(runner: ModuleType) -> None:
    device = SlowDevice()
    times = runner.bounded_runs(device.run, 50, runner.PROFILE_MAX_S, clock=device.clock)
    assert len(times) == round(runner.PROFILE_MAX_S / (INFERENCE_NS / 1e9))
    assert device.now / 1e9 <= runner.PROFILE_MAX_S + INFERENCE_NS / 1e9
    warm = runner.bounded_runs(device.run, runner.PROFILE_WARMUP_RUNS,
                               runner.PROFILE_WARMUP_MAX_S, clock=device.clock)  # fmt: skip
    assert len(warm) == 1, "at least one warm-up run, and no more once the cap passed"


def test_a_fast_device_runs_every_profiled_run(runner: ModuleType) -> None:
    calls = []
    times = runner.bounded_runs(lambda: calls.append(1), 50, runner.PROFILE_MAX_S)
    assert len(times) == len(calls) == 50


def test_an_inference_longer_than_every_cap_still_ends(runner: ModuleType) -> None:
    """One inference of a minute: one warm-up inference, one sample, one profiled run."""
    device = SlowDevice(MINUTE_NS)
    stop, warm = _rules(runner)
    out = runner.measure(device, stop, warm, clock=device.clock)
    assert out["warmup_n"] == 1 and len(out["samples_ms"]) == 1
    assert len(runner.bounded_runs(device.run, 50, 10.0, clock=device.clock)) == 1
