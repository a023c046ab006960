"""The command line as a user runs it: a subprocess, its exit status, its stdout and stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchharness.results.store import RunStore

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(73)

TINY = "tests.support.tiny:tiny_cnn"
#: Small measuring settings: the CLI path is under test here, not the method.
FAST = ["--quick", "--min-time", "0.2", "--min-runs", "20", "--warmup-time", "0.1"]
ROOT = Path(__file__).resolve().parents[2]


def bench(
    *args: str, env_extra: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "benchharness.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
    )  # fmt: skip


def assert_clean_failure(proc: subprocess.CompletedProcess[str], error_type: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip().splitlines()[-1].startswith(f"{error_type}: ")


def test_unknown_model_is_a_one_line_error(results_dir: Path) -> None:
    proc = bench("run", "--models", "resnet1800", "--results-dir", str(results_dir))
    assert_clean_failure(proc, "UnknownModelError")
    assert "bench models" in proc.stderr


def test_missing_device_profile_is_a_one_line_error(results_dir: Path) -> None:
    proc = bench(
        "run", "--device", "nosuchphone", "--models", TINY, "--results-dir", str(results_dir)
    )
    assert_clean_failure(proc, "DeviceProfileError")
    assert "local" in proc.stderr  # lists the known profiles


def test_unreadable_model_file_is_a_one_line_error(results_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x00not an onnx model at all")
    proc = bench("run", "--models", str(bad), "--results-dir", str(results_dir))
    assert_clean_failure(proc, "ModelFileError")
    bad_tfl = tmp_path / "corrupt.tflite"
    bad_tfl.write_bytes(b"garbage!garbage!")
    proc = bench("run", "--models", str(bad_tfl), "--results-dir", str(results_dir))
    assert_clean_failure(proc, "ModelFileError")


def test_bad_option_value_is_usage(results_dir: Path) -> None:
    proc = bench("run", "--models", TINY, "--formats", "pt", "--results-dir", str(results_dir))
    assert_clean_failure(proc, "UsageError")
    proc = bench("run", "--models", TINY, "--threads", "0")
    assert proc.returncode == 2


def test_results_of_unknown_run(results_dir: Path) -> None:
    assert_clean_failure(
        bench("results", "nope", "--results-dir", str(results_dir)), "ResultsError"
    )


def test_run_then_results_json_then_cached_rerun(results_dir: Path) -> None:
    shape = ["--input-shape", "1x3x32x32"]
    proc = bench(
        "run", "--models", TINY, *shape, *FAST, "--results-dir", str(results_dir), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout[proc.stdout.index("{") :])
    rows = data["rows"]
    assert {(r["model"], r["format"]) for r in rows} == {
        ("tiny_cnn", "onnx"),
        ("tiny_cnn", "tflite"),
    }
    assert all(r["status"] == "ok" and float(r["median_ms"]) > 0 for r in rows)
    run_id = data["run_id"]
    store = RunStore.open(results_dir, run_id)
    assert store.meta["request"]["models"] == TINY
    assert {r.runtime for r in store.runs} == {"onnxruntime", "litert"}
    assert all((r.n or 0) >= 20 for r in store.runs)
    samples = [s for s in store.samples if s.format == "onnx"]
    assert len(samples) == next(r.n for r in store.runs if r.format == "onnx")

    again = bench("results", run_id, "--results-dir", str(results_dir), "--json")
    assert json.loads(again.stdout)["rows"] == rows
    table = bench("results", run_id, "--results-dir", str(results_dir))
    assert "tiny_cnn" in table.stdout and "GMAC/s" in table.stdout

    cached = bench(
        "run", "--models", TINY, *shape, *FAST, "--results-dir", str(results_dir), "--json"
    )
    assert cached.returncode == 0
    rid2 = json.loads(cached.stdout[cached.stdout.index("{") :])["run_id"]
    artifacts = {r.artifact for r in RunStore.open(results_dir, rid2).runs}
    assert artifacts == {r.artifact for r in store.runs}


def test_a_failing_model_becomes_a_failed_row_and_the_run_goes_on(results_dir: Path) -> None:
    models = f"tests.support.tiny:broken_builder,{TINY}"
    proc = bench("run", "--models", models, "--input-shape", "1x3x32x32", *FAST, "--no-ops",
                 "--results-dir", str(results_dir), "--json")  # fmt: skip
    assert proc.returncode == 1  # something failed, and the user is told so
    rows = json.loads(proc.stdout[proc.stdout.index("{") :])["rows"]
    by = {(r["model"], r["format"]): r for r in rows}
    assert by[("broken_builder", "onnx")]["status"] == "failed"
    assert "always fails" in by[("broken_builder", "onnx")]["error"]
    assert by[("tiny_cnn", "onnx")]["status"] == "ok"
    assert by[("tiny_cnn", "tflite")]["status"] == "ok"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_finished_rows_and_resume_completes(results_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # 6 runner processes of >= 1 s each: the interrupt, sent after the first, cannot come late
    args = ["run", "--models", TINY, "--input-shape", "1x3x32x32", "--min-time", "1",
            "--min-runs", "20", "--warmup-time", "0.1", "--processes", "3", "--no-ops",
            "--results-dir", str(results_dir)]  # fmt: skip
    # a shell without job control starts background commands with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: give the child the default back, as a terminal would
    proc = subprocess.Popen([sys.executable, "-m", "benchharness.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)  # fmt: skip
    deadline = time.monotonic() + 240
    runs_csv = None
    while time.monotonic() < deadline:
        found = list(results_dir.glob("*/runs.csv"))
        if found and len(found[0].read_text().splitlines()) >= 2:
            runs_csv = found[0]
            break
        time.sleep(0.1)
    assert runs_csv is not None, "no row was written"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err and "Traceback" not in err
    run_id = runs_csv.parent.name
    kept = RunStore.open(results_dir, run_id).runs
    assert kept, "the finished process was lost"
    assert all(r.status in ("ok", "partial") for r in kept)

    resumed = bench("run", "--resume", run_id, "--results-dir", str(results_dir), "--json")
    assert resumed.returncode == 0, resumed.stderr
    final = RunStore.open(results_dir, run_id)
    assert sorted((r.format, r.status) for r in final.runs) == [
        ("onnx", "ok"),
        ("tflite", "ok"),
    ]
    assert all(r.processes == 3 for r in final.runs)
    assert len({r.job_id for r in final.runs}) == len(final.runs)


def test_models_lists_the_zoo_with_macs() -> None:
    proc = bench("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["model"]: r for r in json.loads(proc.stdout)}
    assert rows["resnet18"]["macs"] == pytest.approx(1.814e9, rel=0.01)
    assert rows["resnet18"]["params"] == 11689512
    assert rows["dw_resnet18"]["input_shape"] == "1x3x32x32"
    assert rows["ghostnet_100"]["source"] == "timm"


def test_process_rule_options_reach_the_run(results_dir: Path) -> None:
    proc = bench("run", "--models", TINY, "--input-shape", "1x3x32x32", "--formats", "onnx",
                 "--min-time", "0.1", "--min-runs", "20", "--warmup-time", "0.1", "--no-ops",
                 "--max-processes", "2", "--target-ci", "50%", "--results-dir",
                 str(results_dir), "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout[proc.stdout.index("{") :])["rows"]
    # the cap of two is below the minimum of five, so it is the minimum too
    assert row["processes"] == 2 and row["process_stop"] in ("ci", "max_processes")
    assert row["ci95_low_ms"] < row["median_ms"] < row["ci95_high_ms"]
    rule = RunStore.open(results_dir, json.loads(proc.stdout[proc.stdout.index("{") :])["run_id"])
    assert rule.meta["method"]["process_rule"] == {
        "min": 2, "max": 2, "ci_rel": 0.5, "confidence": 0.95, "adaptive": True,
    }  # fmt: skip
    bad = bench("run", "--models", TINY, "--target-ci", "0%", "--results-dir", str(results_dir))
    assert_clean_failure(bad, "UsageError")


def test_run_help_names_every_format() -> None:
    from benchharness.cli.common import formats_help
    from benchharness.export.pipeline import FORMATS

    proc = bench("run", "--help")
    assert proc.returncode == 0, proc.stderr
    # click wraps the help: compare with the whitespace collapsed
    assert " ".join(formats_help(FORMATS).split()) in " ".join(proc.stdout.split())
    assert all(f in formats_help(FORMATS) for f in ("onnx", "tflite", "torch", "pte"))
