"""``bench history`` and ``bench gate`` on synthetic results folders: tables, JSON, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.history.conftest import Bench
from tests.history.synthetic import SHA_B, run_id, step_levels, write_series

#: Runs of the synthetic series: enough for a stable level before the newest run.
RUNS = 20


def test_history_table_shows_points_and_changes(tmp_path: Path, bench: Bench) -> None:
    results = tmp_path / "results"
    write_series(results, step_levels(RUNS, {12: 1.15}), seed=1,
                 changes={12: {"artifact_sha256": SHA_B}})  # fmt: skip
    out = bench("history", "--results-dir", str(results))
    assert out.code == 0, out.stderr
    assert "net onnx/fp32 onnxruntime t2 on devA: 20 runs, 1 change point" in out.stdout
    assert run_id(0) in out.stdout and run_id(RUNS - 1) in out.stdout
    assert "2026-01-05 09:00" in out.stdout  # the date of the first run
    assert "artifact_sha256" in out.stdout  # the changed column of run 12
    assert f"change at run {run_id(12)}" in out.stdout
    assert "likely cause: artifact_sha256 a1a1a1a1a1a1 -> b2b2b2b2b2b2" in out.stdout

    short = bench("history", "--results-dir", str(results), "--last", "3")
    assert run_id(0) not in short.stdout and run_id(RUNS - 1) in short.stdout
    assert "17 earlier runs not shown" in short.stdout
    assert f"change at run {run_id(12)}" in short.stdout  # changes are listed all the same


def test_history_json(tmp_path: Path, bench: Bench) -> None:
    results = tmp_path / "results"
    write_series(results, step_levels(RUNS, {10: 0.8}), seed=2,
                 changes={10: {"runtime_version": "1.21.0"}})  # fmt: skip
    write_series(results, [3.0] * 4, seed=3, start=RUNS, device="devB")
    out = bench("history", "--results-dir", str(results), "--device", "devA", "--json")
    assert out.code == 0, out.stderr
    data = json.loads(out.stdout)
    [series] = data["series"]
    assert series["label"] == "net onnx/fp32 onnxruntime t2 on devA"
    assert len(series["points"]) == RUNS
    point = series["points"][10]
    assert point["run_id"] == run_id(10) and point["processes"] == 5
    assert point["ci_low_ms"] < point["median_ms"] < point["ci_high_ms"]
    assert point["changed"] == {"runtime_version": {"before": "1.20.0", "after": "1.21.0"}}
    [change] = series["changes"]
    assert change["index"] == 10 and change["run_id"] == run_id(10)
    assert change["ci_low"] < 0.8 < change["ci_high"]
    assert change["causes"] == {"runtime_version": {"before": "1.20.0", "after": "1.21.0"}}
    assert data["index"]["read"] == RUNS + 4 and data["warnings"] == []


def test_gate_fails_when_the_newest_run_regresses(tmp_path: Path, bench: Bench) -> None:
    results = tmp_path / "results"
    write_series(results, step_levels(RUNS, {RUNS - 1: 1.12}), seed=4,
                 changes={RUNS - 1: {"artifact_sha256": SHA_B}})  # fmt: skip
    out = bench("gate", "--results-dir", str(results))
    assert out.code == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("GateFailed: net onnx/fp32 onnxruntime t2 on devA regressed by +1")
    assert f"since run {run_id(RUNS - 1)}" in last
    assert f"against {RUNS - 1} runs {run_id(0)}..{run_id(RUNS - 2)}" in last
    assert "likely cause: artifact_sha256 a1a1a1a1a1a1 -> b2b2b2b2b2b2" in last

    data = json.loads(bench("gate", "--results-dir", str(results), "--json").stdout)
    assert data["passed"] is False and data["threshold"] == 0.05
    [verdict] = data["series"]
    assert verdict["regressed"] and verdict["newest_run_id"] == run_id(RUNS - 1)
    assert verdict["ratio"] == pytest.approx(1.12, rel=0.03)
    assert verdict["ci_low"] > 1.05 and verdict["p_value"] < 0.01
    assert verdict["causes"]["artifact_sha256"]["after"] == SHA_B

    # the same step does not clear a 20 % threshold
    assert bench("gate", "--results-dir", str(results), "--threshold", "20%").code == 0


def test_gate_passes_on_noise_and_on_an_older_regression(tmp_path: Path, bench: Bench) -> None:
    noise = tmp_path / "noise"
    write_series(noise, [10.0] * RUNS, seed=5)
    out = bench("gate", "--results-dir", str(noise))
    assert out.code == 0, out.stderr
    assert "no newest run opens a regression of 5% or more in 1 series" in out.stdout
    assert json.loads(bench("gate", "--results-dir", str(noise), "--json").stdout)["passed"]

    older = tmp_path / "older"  # slower since run 10: that run's gate failed, not the newest's
    write_series(older, step_levels(RUNS, {10: 1.3}), seed=6)
    assert bench("gate", "--results-dir", str(older)).code == 0

    faster = tmp_path / "faster"
    write_series(faster, step_levels(RUNS, {RUNS - 1: 0.7}), seed=7)
    assert bench("gate", "--results-dir", str(faster)).code == 0


def test_gate_filters_and_single_runs(tmp_path: Path, bench: Bench) -> None:
    results = tmp_path / "results"
    write_series(results, step_levels(RUNS, {RUNS - 1: 1.5}), seed=8)
    write_series(results, [2.0], seed=9, start=RUNS, device="devB")
    assert bench("gate", "--results-dir", str(results), "--device", "devA").code == 1
    only_b = bench("gate", "--results-dir", str(results), "--device", "devB", "--json")
    assert only_b.code == 0
    [verdict] = json.loads(only_b.stdout)["series"]
    assert verdict["ratio"] is None and "nothing to compare" in verdict["message"]


def test_errors_and_bad_usage(tmp_path: Path, bench: Bench) -> None:
    missing = bench("gate", "--results-dir", str(tmp_path / "none"))
    assert missing.code == 1
    assert missing.stderr.strip().startswith("UsageError: no results folder")
    results = tmp_path / "results"
    write_series(results, [10.0] * 3, seed=10)
    unknown = bench("history", "--results-dir", str(results), "--model", "nope")
    assert unknown.code == 1 and "UsageError: no series matches --model nope" in unknown.stderr
    assert "models: net" in unknown.stderr
    assert bench("gate", "--results-dir", str(results), "--threshold", "lots").code == 2
    assert bench("history", "--results-dir", str(results), "--last", "-1").code == 2


def test_damaged_folder_warns_on_stderr(tmp_path: Path, bench: Bench) -> None:
    results = tmp_path / "results"
    ids = write_series(results, [10.0] * 4, seed=11)
    (results / ids[2] / "runs.csv").write_text("schema_version,median_ms\r\n2,fast\r\n")
    out = bench("history", "--results-dir", str(results), "--json")
    assert out.code == 0
    assert f"warning: skipped run {ids[2]}:" in out.stderr
    assert "expected a number" in out.stderr
    assert len(json.loads(out.stdout)["series"][0]["points"]) == 3
    assert bench("gate", "--results-dir", str(results)).code == 0


def test_history_writes_the_page(tmp_path: Path, bench: Bench) -> None:
    results = tmp_path / "results"
    write_series(results, step_levels(RUNS, {8: 1.2}), seed=12)
    page = tmp_path / "out" / "history.html"
    out = bench("history", "--results-dir", str(results), "--html", str(page), "--json")
    assert out.code == 0, out.stderr
    assert json.loads(out.stdout)["html"] == str(page)
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "net onnx/fp32 onnxruntime t2" in text
