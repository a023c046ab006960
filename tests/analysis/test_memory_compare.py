"""``bench compare`` on peak memory: ratio, verdicts and ``--fail-on peak_mem:PCT``, on synthetic
rows (the latency of both runs is the same draw, so only memory moves)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchharness.analysis.compare_stored import compare_and_gate
from benchharness.analysis.gates import parse_fail_on_specs
from benchharness.analysis.memory_compare import (
    MIN_CHANGE_BYTES,
    compare_memory,
    memory_gate,
    memory_gate_threshold,
)
from benchharness.cli import main  # at import: the CLI's console must not bind to capsys
from benchharness.errors import UsageError
from benchharness.results.schema import RunRow, SampleRow
from benchharness.results.store import RunStore

MIB = 1 << 20
ROW = {"status": "ok", "device": "local", "runtime": "onnxruntime", "runtime_version": "1.32",
       "format": "onnx", "precision": "fp32", "input_shape": "1x3x32x32", "threads": 1,
       "cpu_model": "Test CPU"}  # fmt: skip


def row(model: str, peak: int | None, source: str | None = "vmhwm") -> RunRow:
    return RunRow.from_values({**ROW, "model": model, "job_id": model, "median_ms": 10.0,
                               "mem_peak_bytes": peak, "mem_source": source})  # fmt: skip


def test_ratio_and_verdicts() -> None:
    a = [row("up", 100 * MIB), row("down", 100 * MIB), row("flat", 100 * MIB),
         row("tiny", MIB), row("other", 50 * MIB), row("none", None)]  # fmt: skip
    b = [row("up", 112 * MIB), row("down", 80 * MIB), row("flat", 102 * MIB),
         row("tiny", MIB + MIN_CHANGE_BYTES // 2), row("other", 50 * MIB, "rss-delta"),
         row("none", 10 * MIB)]  # fmt: skip
    by = {m.model: m for m in compare_memory(a, b, threshold=0.05)}
    assert by["up"].ratio == pytest.approx(1.12) and by["up"].verdict == "grew"
    assert by["down"].verdict == "shrank" and by["flat"].verdict == "same"
    # +12.5 % of 1 MiB is 128 KiB: under the page noise of a fresh process, not a change
    assert by["tiny"].ratio == pytest.approx(1.125) and by["tiny"].verdict == "same"
    assert by["other"].verdict == "not comparable" and "rss-delta" in by["other"].note
    assert by["none"].verdict == "not comparable" and by["none"].ratio is None
    failing = memory_gate(list(by.values()), 0.10)
    assert [m.model for m in failing] == ["up"]  # 12 % > 10 %; the tiny one moved 128 KiB only
    assert memory_gate(list(by.values()), 0.15) == []


def test_gate_spec() -> None:
    assert memory_gate_threshold("peak_mem:10%") == pytest.approx(0.10)
    assert memory_gate_threshold("peak_mem:0.1") == pytest.approx(0.10)
    assert memory_gate_threshold("median:5%") is None
    with pytest.raises(UsageError, match="ambiguous"):
        memory_gate_threshold("peak_mem:10")


def _store(root: Path, run_id: str, peaks: dict[str, int]) -> None:
    store = RunStore.create(root, run_id)
    rng = np.random.default_rng(0)  # the same latency draw in every run
    for model, peak in peaks.items():
        values = rng.lognormal(np.log(10.0), 0.02, 200)
        samples = [SampleRow(process=0, index=i, latency_ms=float(v)) for i, v in enumerate(values)]
        store.add_job(row(model, peak).replace(median_ms=float(np.median(values)), n=200,
                                               processes=1), sample_rows=samples)  # fmt: skip


def test_cli_gate_exit_status_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _store(tmp_path, "run-a", {"m": 100 * MIB, "n": 40 * MIB})
    _store(tmp_path, "run-b", {"m": 115 * MIB, "n": 40 * MIB})

    def status(*args: str) -> int:
        try:
            main(["compare", "--results-dir", str(tmp_path), "run-a", "run-b", *args])
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    assert status("--fail-on", "peak_mem:10%") == 1
    assert "GateFailed: peak memory grew beyond 10%" in capsys.readouterr().err
    assert status("--fail-on", "peak_mem:20%") == 0
    assert status("--fail-on", "median:5%") == 0  # latency did not move
    assert status("--fail-on", "median:5%", "--fail-on", "peak_mem:10%") == 1
    assert status("--fail-on", "peak_mem:10%", "--json") == 1
    # what --json adds to the latency comparison
    gated = compare_and_gate(
        tmp_path, "run-a", "run-b", threshold=0.05, fail_on=parse_fail_on_specs(["peak_mem:10%"])
    )
    data = json.loads(json.dumps(gated.to_dict()))
    assert data["memory_gate_failed"] is True and data["memory_gate_threshold"] == 0.1
    assert {m["model"]: m["verdict"] for m in data["memory"]} == {"m": "grew", "n": "same"}
    assert status("--fail-on", "peak_mem:10%", "--fail-on", "peak_mem:5%") == 1  # UsageError
