"""The row's warm-up columns (issue 29): what each process's warm-up was, where the job's latency
settled and the calibrated count its later processes ran."""

from __future__ import annotations

import pytest

from benchharness.ondevice.protocol import Rule, RunnerResult, ToolStats
from benchharness.plan.artifacts import Artifact
from benchharness.results.rows import build_row, mode_counts, warmup_columns, warmup_modes
from benchharness.results.schema import RUNS_COLUMNS

ARTIFACT = Artifact(model="m", source="zoo", input_shape="1x3x32x32", format="onnx",
                    precision="fp32", path=None, sha256="x")  # fmt: skip


def _process(
    mode: str | None, settle: int | None = None, target: int | None = None
) -> RunnerResult:
    return RunnerResult(
        runtime="onnxruntime",
        samples_ms=[1.0, 1.1, 1.05],
        warmup_mode=mode,
        warmup_settle_n=settle,
        warmup_settle_s=None if settle is None else settle / 100,
        rule=Rule(warmup_target_n=target),
    )


def test_the_row_counts_each_warmup_in_a_fixed_order() -> None:
    results = [
        _process("full", settle=40),
        _process("calibrated+full", settle=140, target=80),
        _process("calibrated", target=80),
        _process("calibrated", target=80),
    ]
    assert warmup_columns(results) == {
        "warmup_mode": "full:1;calibrated:2;calibrated+full:1",
        "warmup_settle_n": 40,
        "warmup_settle_s": 0.4,
        "warmup_target_n": 80,
    }
    row = build_row(run_id="r", job_id="j", device="local", transport="local", affinity="",
                    artifact=ARTIFACT, results=results, processes_wanted=4)  # fmt: skip
    assert row.warmup_mode == "full:1;calibrated:2;calibrated+full:1"
    assert (row.warmup_settle_n, row.warmup_settle_s, row.warmup_target_n) == (40, 0.4, 80)


def test_the_settle_point_is_the_first_full_process_that_settled() -> None:
    results = [_process("full"), _process("full", settle=60), _process("calibrated", target=100)]
    cols = warmup_columns(results)
    assert (cols["warmup_settle_n"], cols["warmup_target_n"]) == (60, 100)
    assert cols["warmup_mode"] == "full:2;calibrated:1"


def test_processes_that_do_not_say_leave_the_columns_empty() -> None:
    # a native tool, or a runner before issue 29: nothing is invented
    tool = RunnerResult(stats_source="benchmark_model", tool_stats=ToolStats(n=50, mean=1.0))
    assert warmup_columns([tool, tool]) == {
        "warmup_mode": None, "warmup_settle_n": None, "warmup_settle_s": None,
        "warmup_target_n": None,
    }  # fmt: skip
    row = build_row(run_id="r", job_id="j", device="local", transport="local", affinity="",
                    artifact=ARTIFACT, results=[], processes_wanted=1, error="boom")  # fmt: skip
    assert row.warmup_mode is None and row.warmup_target_n is None


def test_the_counts_read_back_as_one_mode_per_process() -> None:
    assert mode_counts(["full", "calibrated", "calibrated", None]) == "full:1;calibrated:2"
    assert warmup_modes("full:1;calibrated:2;calibrated+full:1") == [
        "full", "calibrated", "calibrated", "calibrated+full",
    ]  # fmt: skip
    assert warmup_modes(None) == [] and warmup_modes("") == []


@pytest.mark.parametrize("cell", ["full", "full:x", "fast:1", "full:-1"])
def test_a_damaged_count_reads_as_none(cell: str) -> None:
    assert warmup_modes(cell) == []


def test_the_warmup_columns_are_appended() -> None:
    # an older folder reads them empty (tests/results/test_schema.py); only the profiled
    # pass's two columns came after them
    assert RUNS_COLUMNS[-6:-2] == (
        "warmup_mode", "warmup_settle_n", "warmup_settle_s", "warmup_target_n",
    )  # fmt: skip
