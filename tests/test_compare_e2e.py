"""``bench compare`` end to end: real ``bench run --device local`` runs, compared through the CLI.

Measurements on a shared machine are noisy, so the assertions are the ones that hold on any
machine: the same config gives a ratio near 1 and a gate consistent with its verdict; a designed
slowdown of many times (``tests.support.tiny_heavy``, run under the same model name) is seen as
such, and ``--fail-on`` exits 1 whenever compare calls it slower.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from benchharness.analysis.compare_stored import compare_run_ids
from benchharness.analysis.comparison import VERDICTS, gate

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(17)

ROOT = Path(__file__).resolve().parents[1]
LIGHT = "tests.support.tiny:tiny_cnn"
#: Same model name, ~60x the MACs: what a change that made the model slower looks like.
HEAVY = "tests.support.tiny_heavy:tiny_cnn"
#: Short and predictable: 64 inferences each (no minimum time), one process, no operator pass,
#: one thread so the runner does not fight other work on the machine for two cores.
SETTINGS = ("--input-shape", "1x3x32x32", "--quick", "--min-time", "0", "--min-runs", "64",
            "--warmup-time", "0.1", "--no-ops", "--threads", "1")  # fmt: skip
#: A loaded machine can flag a run (HIGH_IQR, DRIFT), compare then calls the pair
#: unreliable and the gate ignores it by design; a few fresh pairs give it a clean one.
GATE_ATTEMPTS = 3
#: The heavy model is ~60x the work; even a noisy machine keeps its median far above this.
MIN_DESIGNED_RATIO = 2.0
EXPECTED_ROWS = {("tiny_cnn", "onnx"), ("tiny_cnn", "tflite")}


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "benchharness.cli", *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip


def run(results: Path, model: str) -> str:
    proc = bench("run", "--models", model, *SETTINGS, "--results-dir", str(results), "--json")
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout[proc.stdout.index("{") :])["run_id"])


def compare(results: Path, a: str, b: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return bench("compare", a, b, "--results-dir", str(results), *extra)


def matches(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    data = json.loads(proc.stdout)
    found: list[dict[str, Any]] = data["matches"]
    assert {(m["model"], m["format"]) for m in found} == EXPECTED_ROWS
    assert all(m["verdict"] in VERDICTS for m in found)
    assert data["gate_failed"] == (proc.returncode == 1)
    return found


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    results = tmp_path_factory.mktemp("compare-e2e") / "results"
    return results, run(results, LIGHT), run(results, LIGHT)


def test_same_config_compares_row_for_row(two_runs: tuple[Path, str, str]) -> None:
    results, a, a2 = two_runs
    proc = compare(results, a, a2, "--json", "--fail-on", "median:5%")
    found = matches(proc)
    for m in found:
        assert 0.5 < m["ratio"] < 2.0, m  # the same model: medians of one order
        assert m["ci_low"] <= m["ratio"] <= m["ci_high"]
        assert 0.0 <= m["p_value"] <= 1.0 and m["test"] == "samples"
        assert m["n_a"] >= 64 and m["n_b"] >= 64
    # the gate fails exactly when compare called a change slower; "same" everywhere passes
    called_slower = any(m["verdict"] == "slower" for m in found)
    assert proc.returncode == (1 if called_slower else 0), proc.stderr
    if all(m["verdict"] == "same" for m in found):
        assert proc.returncode == 0

    table = compare(results, a, a2)
    assert table.returncode == 0, table.stderr
    assert "tiny_cnn" in table.stdout and "B/A" in table.stdout
    assert "onnx/fp32" in table.stdout and "tflite/fp32" in table.stdout
    for m in found:
        assert m["verdict"] in table.stdout
    assert "geometric mean of ratios" in table.stdout


def test_fail_on_exits_nonzero_on_a_designed_slowdown(two_runs: tuple[Path, str, str]) -> None:
    results, a, _ = two_runs
    for attempt in range(GATE_ATTEMPTS):
        if attempt:  # a flag on A makes every pair with it unreliable: a fresh A as well
            a = run(results, LIGHT)
        b = run(results, HEAVY)
        proc = compare(results, a, b, "--json", "--fail-on", "median:5%")
        found = matches(proc)
        for m in found:
            assert m["ratio"] > MIN_DESIGNED_RATIO, m
            assert m["ci_low"] > MIN_DESIGNED_RATIO * 0.75, m
            assert m["p_value"] < 0.01, m
            # far beyond the threshold and significant: slower, unless a side is flagged
            assert m["verdict"] in ("slower", "unreliable"), m
        if any(m["verdict"] == "slower" for m in found):
            assert proc.returncode == 1
            assert "GateFailed" in proc.stderr and "tiny_cnn" in proc.stderr
            return
        # every pair flagged: the gate ignores unreliable pairs (exit 0) but sees the slowdown
        assert proc.returncode == 0, proc.stderr
        assert gate(compare_run_ids(results, a, b), 0.05, include_unreliable=True)
    warnings.warn(
        f"every one of {GATE_ATTEMPTS} slowed-down runs was flagged on this machine, so the "
        "gate's exit status 1 was not exercised (only its reliability policy)",
        stacklevel=1,
    )
