"""``bench import``: captured native-tool logs become rows of a new results folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchharness.errors import ParseError, UsageError
from benchharness.results.importer import import_log
from benchharness.results.store import RunStore
from tests.runners.fixtures import FIXTURES

BM = FIXTURES / "benchmark_model"
PT = FIXTURES / "onnxruntime_perf_test"
PROFILES = FIXTURES / "ort_profile"


def reopen(store: RunStore) -> RunStore:
    """The folder as a later ``bench results`` reads it back from disk."""
    return RunStore.open(store.path.parent, store.run_id)


def test_benchmark_model_newest_format(tmp_path: Path) -> None:
    log = BM / "tflite_benchmark_model_8.txt"
    store = reopen(
        import_log("benchmark-model", log, device="am62x", model="ssd", results_dir=tmp_path,
                   run_id="imp-8")
    )  # fmt: skip
    assert store.path == tmp_path / "imp-8"
    (row,) = store.runs
    assert row.job_id == "am62x|ssd|tflite|fp32|import|0"
    assert (row.device, row.model, row.format, row.transport) == (
        "am62x", "ssd", "tflite", "import",
    )  # fmt: skip
    assert row.runtime == "tflite-benchmark_model" and row.status == "ok"
    # rows come back typed: numbers as numbers, empty cells as None
    assert (row.n, row.warmup_n, row.threads) == (50, 1, 4)
    assert row.median_ms == 1239.807
    assert row.mean_ms == 1240.27
    # the tool's population std (2565 us) as the sample std every row carries, as dispatch does
    assert row.std_ms == pytest.approx(2.565 * math.sqrt(50 / 49))
    assert (row.min_ms, row.max_ms) == (1238.588, 1252.566)
    assert row.cold_ms == 1357.602 and row.load_ms == 5.579
    # the tool prints p5/p95, not p90; nothing is made up
    assert row.p90_ms is None and row.p99_ms is None and row.error == ""
    assert row.flags == "FEW_SAMPLES"
    assert store.ops == []
    assert store.meta["kind"] == "import" and store.meta["tool"] == "tflite-benchmark_model"
    assert store.meta["log"] == str(log) and store.meta["device"] == "am62x"
    assert store.meta["model"] == "ssd" and store.meta["created"]


def test_benchmark_model_ops_and_delegates(tmp_path: Path) -> None:
    store = reopen(
        import_log("benchmark-model", BM / "tflite_benchmark_model_6.txt", device="phone",
                   model="r34", results_dir=tmp_path)
    )  # fmt: skip
    (row,) = store.runs
    assert row.median_ms is None  # this build prints no median
    assert row.mean_ms == 22.509 and row.n == 2
    assert row.load_ms == 1475.81 and row.cold_ms == 29.456
    assert row.provider == "TfLiteHexagonDelegate+TfLiteGpuDelegateV2"
    assert row.input_shape == "1x224x224x3"
    assert row.artifact == "/data/local/tmp/R-34-DG.tflite"
    assert len(store.ops) == 18
    first = store.ops[0]
    assert (first.op_index, first.op_name, first.op_type) == (
        0, "[tfl.quantize]:0", "QUANTIZE",
    )  # fmt: skip
    assert first.median_us == 93.0 and first.calls == 1
    assert first.job_id == row.job_id and first.runtime == "tflite-benchmark_model"
    assert sum(o.share for o in store.ops) == pytest.approx(1.0)
    op_sum_ms = sum(o.median_us for o in store.ops) / 1000
    assert row.ops_sum_ratio == pytest.approx(op_sum_ms / 22.509)


def test_profile_only_capture_gives_ops_but_no_invented_latency(tmp_path: Path) -> None:
    store = reopen(
        import_log("benchmark-model", BM / "tflite_benchmark_model_1.txt", device="mi11",
                   model="yolov5s", results_dir=tmp_path)
    )  # fmt: skip
    (row,) = store.runs
    assert row.status == "ok"
    assert (row.n, row.median_ms, row.mean_ms, row.min_ms, row.cold_ms) == (None,) * 5
    assert len(store.ops) == 11 and store.ops[6].op_type == "TfLiteNnapiDelegate"
    assert store.ops[6].median_us == 79010.0


def test_several_runs_in_one_log_become_several_rows(tmp_path: Path) -> None:
    log = tmp_path / "two.log"
    text = (BM / "tflite_benchmark_model_8.txt").read_text()
    failed = "STARTING!\nGraph: [bad.tflite]\nERROR: Registration failed.\nBenchmarking failed.\n"
    log.write_text(text + failed)
    store = reopen(
        import_log("benchmark-model", log, device="d", model="m", results_dir=tmp_path / "r")
    )
    assert [r.job_id for r in store.runs] == [
        "d|m|tflite|fp32|import|0",
        "d|m|tflite|fp32|import|1",
    ]
    assert [r.status for r in store.runs] == ["ok", "failed"]
    assert store.runs[1].error == "Registration failed.; Benchmarking failed."
    assert store.runs[1].median_ms is None


def test_ort_perf_test_with_profile(tmp_path: Path) -> None:
    store = reopen(
        import_log("ort-perf-test", PT / "onnxruntime_perf_test_1.txt", device="pixel6",
                   model="resnet18", results_dir=tmp_path,
                   profile_json=PROFILES / "ort_profile_1.json")
    )  # fmt: skip
    (row,) = store.runs
    assert row.job_id == "pixel6|resnet18|onnx|fp32|import|0"
    assert row.runtime == "onnxruntime_perf_test" and row.format == "onnx"
    assert (row.n, row.threads, row.status) == (100, 1, "ok")
    assert row.median_ms == 19.9047 and row.mean_ms == 19.918
    assert (row.min_ms, row.max_ms) == (19.7812, 20.2704)
    assert row.p90_ms == 20.0251  # n = 100 >= 64
    assert row.p99_ms is None  # n = 100 < 662
    assert row.std_ms is None and row.cold_ms is None  # not printed by this build
    assert row.load_ms == 50.8382
    assert [o.op_name for o in store.ops][:2] == ["DmlFusedNode_0_41", "DmlFusedNode_4_63"]
    assert store.ops[6].median_us == 8298.0
    assert row.ops_sum_ratio == pytest.approx(10329 / 31038)
    assert store.meta["profile_json"] == str(PROFILES / "ort_profile_1.json")


def test_ort_vendor_log_few_samples(tmp_path: Path) -> None:
    store = reopen(
        import_log("ort-perf-test", PT / "onnxruntime_perf_test_3.txt", device="k1",
                   model="m", results_dir=tmp_path)
    )  # fmt: skip
    (row,) = store.runs
    assert row.provider == "SpaceMITExecutionProvider"
    assert row.cold_ms == 109 and row.load_ms == 169.475
    assert row.mean_ms == 7.270205 and row.median_ms == 7.27787
    assert row.p90_ms is None and "FEW_SAMPLES" in row.flag_list
    assert store.ops == []


def test_bad_log_raises_and_leaves_no_folder(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("hello\n")
    with pytest.raises(ParseError, match=r"x\.log: line 1"):
        import_log("benchmark-model", log, device="d", model="m", results_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_profile_json_only_with_onnxruntime(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="profile"):
        import_log(
            "benchmark-model", BM / "tflite_benchmark_model_8.txt", device="d", model="m",
            results_dir=tmp_path, profile_json=PROFILES / "ort_profile_1.json",
        )  # fmt: skip


def test_missing_log_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the log"):
        import_log("ort-perf-test", tmp_path / "nope.log", device="d", model="m",
                   results_dir=tmp_path)  # fmt: skip


def test_cli_import_prints_run_id_and_summary(tmp_path: Path) -> None:
    from benchharness.cli import cli

    result = CliRunner().invoke(
        cli,
        ["import", "benchmark-model", str(BM / "tflite_benchmark_model_8.txt"), "--device", "am62x",
         "--model", "ssd", "--results-dir", str(tmp_path), "--run-id", "cli-8"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "cli-8"
    assert "median 1239.807 ms (n=50)" in lines[1]
    meta = json.loads((tmp_path / "cli-8" / "run.json").read_text())
    assert meta["kind"] == "import" and meta["model"] == "ssd"
