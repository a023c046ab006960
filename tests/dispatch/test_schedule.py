"""Row building of the dispatcher, on fabricated runner results (no runtime involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.dispatch.state import JobState
from benchharness.dispatch.state import job_row as build_row
from benchharness.ondevice.protocol import RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import RunOptions
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.schema import OpRow


def _state(process_levels: list[float], op_us: list[float]) -> JobState:
    artifact = Artifact(
        model="m", source="zoo", input_shape="1x3x32x32", format="onnx", precision="fp32",
        path=Path("m.onnx"), sha256="0" * 64, cost={"macs": 1_000_000},
    )  # fmt: skip
    state = JobState(artifact=artifact, job_id="j")
    for level in process_levels:
        state.results.append(RunnerResult(samples_ms=[level] * 100, warmup_n=10))
    state.ops_rows = [OpRow(median_us=us) for us in op_us]
    state.ops_sum_ratio = 2.0  # what the hook saw against the first process alone
    return state


def test_ops_sum_ratio_is_against_the_rows_median_not_the_first_process() -> None:
    profile = DeviceProfile(name="local", transport="local")
    # the first process was disturbed (2x slower); the other two agree on 1.0 ms
    row = build_row(profile, _state([2.0, 1.0, 1.0], [600.0, 400.0]), RunOptions(), "r", 3)
    assert row.status == "ok"
    assert row.median_ms == pytest.approx(1.0)
    assert row.ops_sum_ratio == pytest.approx(1.0)


def test_drift_is_read_inside_each_process() -> None:
    profile = DeviceProfile(name="local", transport="local")
    row = build_row(profile, _state([1.0, 1.06, 1.12], [1000.0]), RunOptions(), "r", 3)
    assert "DRIFT" not in row.flag_list  # three steady processes at different levels


def _probed(ratios: list[float]) -> JobState:
    state = _state([1.0] * len(ratios), [1000.0])
    for result, ratio in zip(state.results, ratios, strict=True):
        result.probe_before_ms, result.probe_after_ms = 0.25, 0.25 * ratio
    return state


def test_throttled_needs_most_processes_slowed_not_one() -> None:
    profile = DeviceProfile(name="local", transport="local")
    # one disturbed probe among five processes is a neighbour, not a throttled clock
    row = build_row(profile, _probed([1.0, 1.02, 1.3, 0.99, 1.01]), RunOptions(), "r", 5)
    assert "THROTTLED" not in row.flag_list and row.throttle_ratio == pytest.approx(1.01)
    row = build_row(profile, _probed([1.15, 1.2, 1.3, 0.99, 1.12]), RunOptions(), "r", 5)
    assert "THROTTLED" in row.flag_list and row.throttle_ratio == pytest.approx(1.15)


def test_rows_carry_the_interval_across_processes() -> None:
    profile = DeviceProfile(name="local", transport="local")
    row = build_row(profile, _state([1.0, 1.04, 0.97, 1.02, 0.99], [1000.0]), RunOptions(), "r", 5)
    assert row.ci95_low_ms < row.median_ms < row.ci95_high_ms
    assert row.ci99_low_ms < row.ci95_low_ms
    assert row.ci_method.startswith("t over 5 process medians")
    # 100 identical samples a process: the pooled order statistics alone would be a point
    assert row.ci95_high_ms - row.ci95_low_ms > 0.02
