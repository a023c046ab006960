"""Series keys and points, built from typed ``RunRow``s: what a point holds, what changed."""

from __future__ import annotations

import numpy as np
import pytest

from benchharness.history.series import (
    ENV_FIELDS,
    SeriesKey,
    env_changes,
    group_series,
    run_points,
)
from benchharness.results.schema import RunRow
from tests.history.synthetic import SHA_A, SHA_B, make_row

HOST = {"host": {"hostname": "lab-1", "platform": "Linux-6.1", "python": "3.11.7", "user": "ci"}}


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_a_row_is_a_point_of_its_series() -> None:
    row = make_row(0, 10.0, rng(), flags="HIGH_IQR;DRIFT")
    [(key, point)] = run_points("run-0", [row], {**HOST, "created": "2026-01-01T00:00:00+00:00"})
    assert key == SeriesKey("devA", "net", "onnx", "fp32", 2, "onnxruntime")
    assert key.label == "net onnx/fp32 onnxruntime t2 on devA"
    assert point.run_id == "run-0" and point.median_ms == row.median_ms
    assert (point.ci_low_ms, point.ci_high_ms, point.ci_level) == (
        row.ci95_low_ms, row.ci95_high_ms, 0.95,
    )  # fmt: skip
    assert point.processes == 5 and len(point.process_medians_ms) == 5
    assert point.flags == ("HIGH_IQR", "DRIFT")
    assert point.date == row.started_at
    env = point.env_map
    assert env["artifact_sha256"] == SHA_A and env["runtime_version"] == "1.20.0"
    assert env["host.hostname"] == "lab-1" and env["host.platform"] == "Linux-6.1"
    assert "host.user" not in env  # who ran it does not change latency
    assert set(env) <= set(ENV_FIELDS)


def test_every_key_column_splits_series() -> None:
    base = make_row(0, 10.0, rng())
    rows = [
        base,
        base.replace(job_id="2", device="devB"),
        base.replace(job_id="3", model="other"),
        base.replace(job_id="4", format="tflite"),
        base.replace(job_id="5", precision="int8-dynamic"),
        base.replace(job_id="6", threads=4),
        base.replace(job_id="7", runtime="litert"),
    ]
    assert len({key for key, _ in run_points("r", rows, {})}) == len(rows)


def test_interval_falls_back_to_99_and_failed_rows_are_left_out() -> None:
    row = make_row(0, 10.0, rng(), processes=1).replace(
        ci95_low_ms=None, ci95_high_ms=None, ci99_low_ms=9.0, ci99_high_ms=11.0
    )
    failed = RunRow.from_values({"job_id": "x", "device": "devA", "model": "bad",
                                 "format": "onnx", "status": "failed", "error": "boom"})  # fmt: skip
    points = run_points("r", [row, failed], {})
    assert len(points) == 1
    point = points[0][1]
    assert (point.ci_low_ms, point.ci_high_ms, point.ci_level) == (9.0, 11.0, 0.99)
    assert point.process_medians_ms == ()
    observed = point.observation()
    assert observed.processes == 1 and observed.interval_var is not None


def test_rows_of_one_run_pool_into_one_point() -> None:
    """An imported log with three tool runs: one point, each row's median a process."""
    r = rng()
    rows = [make_row(0, 10.0, r, processes=1, job_id=f"j{i}", transport="import",
                     started_at=None, finished_at=None) for i in range(3)]  # fmt: skip
    [(_, point)] = run_points("imported", rows, {"created": "2026-02-01T10:00:00+00:00"})
    assert point.rows == 3 and point.processes == 3
    assert sorted(point.process_medians_ms) == sorted(r.median_ms or 0 for r in rows)
    assert point.median_ms == sorted(r.median_ms or 0 for r in rows)[1]
    assert point.ci_low_ms is None  # pooled: the detector forms the spread itself
    assert point.date == "2026-02-01T10:00:00+00:00"  # dated by run.json when rows are not
    assert point.observation().processes == 3


def test_what_changed_between_two_points() -> None:
    r = rng()
    before = run_points("a", [make_row(0, 10.0, r)], HOST)[0][1]
    moved = {**HOST, "host": {**HOST["host"], "platform": "Linux-6.8"}}
    after = run_points(
        "b", [make_row(1, 10.0, r, artifact_sha256=SHA_B, runtime_version="1.21.0",
                       governor="performance")], moved,
    )[0][1]  # fmt: skip
    assert env_changes(before, after) == {
        "artifact_sha256": (SHA_A, SHA_B),
        "runtime_version": ("1.20.0", "1.21.0"),
        "governor": (None, "performance"),
        "host.platform": ("Linux-6.1", "Linux-6.8"),
    }
    assert env_changes(before, before) == {}


def test_series_are_ordered_by_date_then_run_id() -> None:
    r = rng()
    rows = {i: make_row(i, 10.0, r) for i in (2, 0, 1)}
    pairs = [pair for i, row in rows.items() for pair in run_points(f"run-{i}", [row], {})]
    [(_, points)] = group_series(pairs).items()
    assert [p.run_id for p in points] == ["run-0", "run-1", "run-2"]


@pytest.mark.parametrize("threads", [None, 1])
def test_labels_without_threads_or_runtime(threads: int | None) -> None:
    key = SeriesKey("d", "m", "onnx", "fp32", threads, "")
    assert key.label == ("m onnx/fp32 on d" if threads is None else "m onnx/fp32 t1 on d")
