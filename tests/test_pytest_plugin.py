"""``pytest --benchmark``, driven through pytester on a tiny model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchharness.pytest_plugin import SKIP_REASON, ReplayClock

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(11)

pytest_plugins = ["pytester"]

TINY_MODEL = """
from torch import nn


def tiny(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, num_classes),
    )
"""
#: Hand-counted MACs of ``tiny`` at the default 1x3x224x224: 3x3 conv 3->4 (222x222 out) + fc.
TINY_MACS = 222 * 222 * 4 * 3 * 3 * 3 + 4 * 10

USER_TEST = """
def test_mine(bench_measurement):
    assert bench_measurement.ok
    assert bench_measurement.median_ms > 0


def test_plain():
    pass
"""


@pytest.fixture(autouse=True)
def _a_plain_inner_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest is a user's own run: under ``pytest -n``, the worker's variables would
    reach it, and pytest-benchmark switches itself off where it sees one."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


#: Measuring options that keep one case to a few seconds (docs/method.md defaults take far longer).
FAST = ["--bench-quick", "--bench-min-time", "0.2", "--bench-warmup-time", "0.1"]


def test_replay_clock_gives_each_round_one_sample() -> None:
    clock = ReplayClock()
    clock.load([0.5, 0.25])
    durations = []
    for _ in range(2):
        clock.rewind()
        start = clock()
        clock.tick()
        durations.append(clock() - start)
    assert durations == [0.5, 0.25]


def test_plain_pytest_is_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"*{SKIP_REASON}*"])
    result.stdout.no_fnmatch_line("*test_model_latency*")
    result.stdout.no_fnmatch_line("*benchharness ---*")


def test_bad_format_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("--benchmark", "--bench-formats", "onnx,pdf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--bench-formats*"])


def test_benchmark_tiny_model(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(tinymodel=TINY_MODEL, test_user=USER_TEST)
    results = tmp_path / "results"
    report_json = tmp_path / "bench.json"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-v",
        "--benchmark",
        "--bench-models",
        "tinymodel:tiny",
        "--bench-formats",
        "onnx",
        *FAST,
        "--bench-results-dir",
        str(results),
        "--benchmark-json",
        str(report_json),
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_model_latency?tiny-onnx? PASSED*", "*bench report *"])

    (run_dir,) = results.iterdir()
    runs = list(csv.DictReader((run_dir / "runs.csv").open()))
    assert [(r["model"], r["format"], r["status"]) for r in runs] == [("tiny", "onnx", "ok")]
    samples = [float(s["latency_ms"]) for s in csv.DictReader((run_dir / "samples.csv").open())]
    assert json.loads((run_dir / "run.json").read_text())["via"] == "pytest --benchmark"

    data = json.loads(report_json.read_text())
    benches = {b["name"]: b for b in data["benchmarks"]}
    bench = benches["test_model_latency[tiny-onnx]"]
    assert bench["group"] == "local onnx"
    assert bench["options"]["timer"] == "replayed_device_samples"
    # pytest-benchmark's statistics are computed from the device samples, one round each
    assert bench["stats"]["rounds"] == len(samples) == int(runs[0]["n"])
    assert bench["stats"]["median"] * 1e3 == pytest.approx(float(runs[0]["median_ms"]), rel=1e-12)
    assert bench["stats"]["min"] * 1e3 == pytest.approx(min(samples), rel=1e-12)
    info = bench["extra_info"]
    assert info["macs"] == TINY_MACS
    assert info["gmacs_per_s"] == pytest.approx(
        TINY_MACS / (float(runs[0]["median_ms"]) / 1e3) / 1e9, rel=1e-3
    )
    assert info["run_id"] == run_dir.name and info["runtime"] == "onnxruntime"

    # the run folder is an ordinary one: bench report works on it
    from benchharness.report import write_report

    out = write_report([run_dir.name], results, tmp_path / "report.md").path
    assert "tiny" in out.read_text(encoding="utf-8")
