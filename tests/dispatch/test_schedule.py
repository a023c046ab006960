"""Row building of the dispatcher, on fabricated runner results (no runtime involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.device.protocol import RunnerResult
from benchharness.devices.profile import DeviceProfile
from benchharness.dispatch.state import JobState
from benchharness.dispatch.state import job_row as build_row
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import RunOptions


def _state(process_levels: list[float], op_us: list[float]) -> JobState:
    artifact = Artifact(
        model="m", source="zoo", input_shape="1x3x32x32", format="onnx", precision="fp32",
        path=Path("m.onnx"), sha256="0" * 64, cost={"macs": 1_000_000},
    )  # fmt: skip
    state = JobState(artifact=artifact, job_id="j")
    for level in process_levels:
        state.results.append(RunnerResult(samples_ms=[level] * 100, warmup_n=10))
    state.ops_rows = [{"median_us": us} for us in op_us]
    state.ops_sum_ratio = 2.0  # what the hook saw against the first process alone
    return state


def test_ops_sum_ratio_is_against_the_rows_median_not_the_first_process() -> None:
    profile = DeviceProfile(name="local", transport="local")
    # the first process was disturbed (2x slower); the other two agree on 1.0 ms
    row = build_row(profile, _state([2.0, 1.0, 1.0], [600.0, 400.0]), RunOptions(), "r", 3)
    assert row["status"] == "ok"
    assert row["median_ms"] == pytest.approx(1.0)
    assert row["ops_sum_ratio"] == pytest.approx(1.0)


def test_drift_is_read_inside_each_process() -> None:
    profile = DeviceProfile(name="local", transport="local")
    row = build_row(profile, _state([1.0, 1.06, 1.12], [1000.0]), RunOptions(), "r", 3)
    assert "DRIFT" not in row["flags"]  # three steady processes at different levels
