"""``OPS_SUM_OFF``: a row whose operator times do not add up to its end-to-end median says so,
with the profiled pass's own speed beside it, and the diagnosis tells the two causes apart
(synthetic rows: the bound is a rule, not a timing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.analysis.diagnosis import OPS_OFF, diagnose
from benchharness.ondevice.protocol import LITERT_PROFILE, Profile, RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.results.rows import OPS_SUM_BOUNDS, build_row
from benchharness.results.schema import OpRow, RunRow
from benchharness.results.store import RunStore

ARTIFACT = Artifact(model="shufflenet_v2_x0_5", source="zoo", input_shape="1x3x224x224",
                    format="tflite", precision="fp32", path=None, sha256="x")  # fmt: skip


def _row(ops_total_us: float, pass_ms: float, attempts: int = 1) -> RunRow:
    """A one-process row timed at 1.2 ms whose profiled pass ran at ``pass_ms`` per run and
    whose two operators add up to ``ops_total_us``."""
    result = RunnerResult(
        runtime="litert", samples_ms=[1.19, 1.2, 1.21] * 30,
        profile=Profile(source=LITERT_PROFILE, run_ms=[pass_ms] * 20, attempts=attempts),
    )  # fmt: skip
    ops = [OpRow(op_name=f"op{i}", median_us=ops_total_us / 2) for i in range(2)]
    return build_row(run_id="r", job_id="j", device="local", transport="local", affinity="",
                     artifact=ARTIFACT, results=[result], processes_wanted=1,
                     ops_rows=ops)  # fmt: skip


@pytest.mark.parametrize(("ops_us", "flagged"), [(1100.0, False), (1000.0, True), (480.0, True),
                                                  (1400.0, True), (1370.0, False)])  # fmt: skip
def test_the_flag_follows_the_bound(ops_us: float, flagged: bool) -> None:
    row = _row(ops_us, 1.2)
    assert row.ops_sum_ratio == pytest.approx(ops_us / 1200.0)
    inside = OPS_SUM_BOUNDS[0] <= ops_us / 1200.0 <= OPS_SUM_BOUNDS[1]
    assert ("OPS_SUM_OFF" in row.flag_list) is flagged is not inside


def test_the_pass_speed_and_attempts_are_kept_and_round_trip(tmp_path: Path) -> None:
    row = _row(480.0, 0.55, attempts=3)
    assert row.ops_run_ms == pytest.approx(0.55) and row.ops_attempts == 3
    store = RunStore.create(tmp_path, "r1")
    store.add_job(row)
    (back,) = RunStore.open(tmp_path, "r1").runs
    assert back.ops_run_ms == pytest.approx(0.55) and back.ops_attempts == 3
    assert "OPS_SUM_OFF" in back.flag_list


def test_the_diagnosis_tells_a_pass_in_another_mode_from_time_between_operators() -> None:
    moved = _row(480.0, 0.55, attempts=3)  # the pass ran at twice the speed of the timed loop
    gaps = _row(850.0, 1.2)  # same speed, the operators hold 0.71 of it
    fine = _row(1150.0, 1.2)
    (only,) = [d for d in diagnose([moved, gaps, fine]) if d.cause == OPS_OFF]
    assert only.rows == 2 and only.of == 3 and only.flags == ("OPS_SUM_OFF",)
    assert "0.40-0.71 of the end-to-end median" in only.evidence
    assert "in 1 the profiled pass itself ran at 0.46x the timed median after 3 passes" in (
        only.evidence
    )
    assert "in 1 the operators hold 0.71 of the profiled runs' own time" in only.evidence
    assert "shares" in only.advice


def test_a_slower_pass_whose_operators_add_up_to_less_is_time_between_operators() -> None:
    # shufflenet_v2_x0_5 on LiteRT: the profiled runs 1.25x the timed median (the profiler's
    # events), the operators 0.82 of it: the speed does not explain a sum that is short
    row = _row(984.0, 1.5)
    (only,) = [d for d in diagnose([row]) if d.cause == OPS_OFF]
    assert "profiled pass itself" not in only.evidence
    assert "the operators hold 0.66 of the profiled runs' own time" in only.evidence


def test_a_profiled_process_in_another_mode_is_told_from_a_pass_that_moved() -> None:
    # the fresh clone's main job: 9 rows at 1.22-2.22, each pass agreeing with its own process
    # (the first, which runs it) while that process sat in the slow mode of the row's ten
    slow_first = RunRow.from_values({
        "device": "local", "model": "mobilenet_v2", "format": "onnx", "status": "ok",
        "flags": "MULTIMODAL;OPS_SUM_OFF", "median_ms": 1.78, "ops_sum_ratio": 1.52,
        "ops_run_ms": 2.70, "ops_attempts": 1,
        "process_medians_ms": [2.74, 1.77, 1.78, 1.79, 1.76, 2.73, 1.78, 1.77, 1.80, 1.78],
    })  # fmt: skip
    (only,) = [d for d in diagnose([slow_first]) if d.cause == OPS_OFF]
    assert "the profiled process itself ran at 1.54x the row's median" in only.evidence
    assert "machine changed" not in only.evidence
