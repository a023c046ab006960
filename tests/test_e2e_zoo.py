"""The one end-to-end test of the whole zoo: every model exported once, timed in both formats.

It runs `bench run --device local --models all --quick` as a user would (a subprocess) with a short
measuring window, and checks the run as the issue defines done: every model ok in both formats,
numerically verified exports, MACs on every row, per-operator rows whose MACs add up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchharness.results.store import RunStore
from benchharness.zoo.registry import load_zoo

ROOT = Path(__file__).resolve().parents[1]
#: A short window per artifact: this test proves the path works; precision is `bench run`'s job.
FAST = ["--quick", "--min-time", "0.5", "--warmup-time", "0.2"]
#: Per-operator MACs must add up to the model's (issue: within 1 %).
OPS_MACS_REL = 0.01


@pytest.mark.slow
def test_whole_zoo_runs_ok_in_both_formats(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchharness.cli", "run", "--device", "local", "--models", "all",
         *FAST, "--results-dir", str(results), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=3600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    run_id = json.loads(proc.stdout[proc.stdout.index("{") :])["run_id"]
    store = RunStore.open(results, run_id)
    zoo = load_zoo()
    got = {(r["model"], r["format"]): r for r in store.runs}
    assert set(got) == {(m, f) for m in zoo for f in ("onnx", "tflite")}
    for (model, fmt), row in got.items():
        assert row["status"] == "ok", (model, fmt, row["error"])
        assert float(row["median_ms"]) > 0
        assert float(row["max_abs_err"]) <= float(row["tolerance"])
        assert int(row["macs"]) > 0 and int(row["params"]) > 0
        assert row["runtime"] == ("onnxruntime" if fmt == "onnx" else "litert")
        # measured memory beside the estimate (issue 15): read in every process, peak over init
        assert row["mem_source"] in ("vmhwm", "rss-delta"), (model, fmt)
        assert row["mem_peak_bytes"] >= row["mem_init_bytes"] > 0, (model, fmt)
        assert row["mem_estimate_bytes"] == row["model_bytes"] + row["activation_bytes"]
        ops = [o for o in store.ops if o["job_id"] == row["job_id"]]
        assert ops, f"no operator rows for {model} {fmt}"
        op_macs = sum(float(o["macs"] or 0) for o in ops)
        assert op_macs == pytest.approx(float(row["macs"]), rel=OPS_MACS_REL), (model, fmt)
        assert float(row["ops_sum_ratio"]) > 0
