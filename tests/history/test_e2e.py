"""``bench history`` and ``bench gate`` on real runs: a dozen ``bench run --device local``
runs (through the CLI, in this process) of one tiny model, one of them in the middle with a model that does 8x the work under the
same name (a change that made the model slower, and was then reverted).

Measurements on a shared machine are noisy, so what is asserted holds on any machine: the
designed slowdown (~5x measured here) is far beyond the noise, so the step into it and back
out of it are the only steps beyond 2x, found at exactly their runs and blamed on the artifact;
the gate run right after the slow run fails, and the gate after the last run passes at a
threshold (100 %) that no noise of light runs reaches.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore, list_runs
from tests.history.conftest import Bench

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(11)

#: The light model: two 16-channel 3x3 convolutions at 32x32 (2.8 MMACs) ...
BUILDER = """
from torch import nn

WIDTH = {width}


def histnet(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, WIDTH, 3, 1, 1), nn.ReLU(),
        nn.Conv2d(WIDTH, WIDTH, 3, 1, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH, num_classes),
    )
"""
#: ... and the slow one, 48 channels: 8x the MACs (22.6 MMACs), same name, same input.
LIGHT, HEAVY = 16, 48
RUNS = 12
#: The run (0-based) that measures the heavy model.
SLOW = 6
#: The designed step is ~5x; noise between light runs stays far below this, even on a loaded
#: machine, and so does the gate's threshold at the end.
BIG_STEP = 2.0
#: Inferences per run: more than --quick's 64 (a millisecond more), so that a burst of load on a
#: shared machine moves a light run's median less.
INFERENCES = 300


def bench_run(bench: Bench, module: str, results: Path) -> RunRow:
    """``bench run`` of one model (a short, predictable run: one process of INFERENCES
    inferences, one thread, no operator pass); its one row."""
    before = set(list_runs(results))
    out = bench(
        "run", "--device", "local", "--models", f"{module}:histnet", "--formats", "onnx",
        "--quick", "--input-shape", "1x3x32x32", "--min-time", "0",
        "--min-runs", str(INFERENCES), "--warmup-time", "0.1", "--no-ops", "--threads", "1",
        "--results-dir", str(results),
    )  # fmt: skip
    assert out.code == 0, out.stderr
    [run_id] = set(list_runs(results)) - before
    [row] = RunStore.open(results, run_id).runs
    return row


def next_second(started_at: str | None) -> None:
    """Wait until a second after ``started_at``: runs are dated to the second, and each run here
    should sort after the one before by its date alone."""
    if started_at:
        wait = datetime.fromisoformat(started_at).timestamp() + 1.0 - time.time()
        if wait > 0:
            time.sleep(wait)


@pytest.fixture()
def builders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "builders"
    folder.mkdir()
    for name, width in (("histnet_light", LIGHT), ("histnet_heavy", HEAVY)):
        (folder / f"{name}.py").write_text(BUILDER.format(width=width), encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))


@pytest.mark.usefixtures("builders")
def test_history_and_gate_find_a_slower_model(tmp_path: Path, bench: Bench) -> None:
    results = tmp_path / "results"
    ids: list[str] = []
    shas: list[str] = []
    started: str | None = None
    for i in range(RUNS):
        next_second(started)
        row = bench_run(bench, "histnet_heavy" if i == SLOW else "histnet_light", results)
        assert row.ok and row.model == "histnet", row.error
        assert row.artifact_sha256 is not None
        ids.append(row.run_id)
        shas.append(row.artifact_sha256)
        started = row.started_at
        if i == SLOW:
            gate_after_the_slow_run(results, bench, ids, shas)
    assert shas[SLOW] != shas[0] and len(set(shas)) == 2

    out = bench("history", "--results-dir", str(results), "--json")
    assert out.code == 0, out.stderr
    [series] = json.loads(out.stdout)["series"]
    assert [p["run_id"] for p in series["points"]] == ids
    medians = [round(p["median_ms"], 4) for p in series["points"]]
    big = [c for c in series["changes"] if not 1 / BIG_STEP < c["ratio"] < BIG_STEP]
    assert [(c["index"], c["run_id"]) for c in big] == [
        (SLOW, ids[SLOW]), (SLOW + 1, ids[SLOW + 1]),
    ], (medians, series["changes"])  # fmt: skip
    up, down = big
    assert up["ci_low"] > BIG_STEP and down["ci_high"] < 1 / BIG_STEP, (medians, big)
    assert up["causes"]["artifact_sha256"] == {"before": shas[0], "after": shas[SLOW]}
    assert down["causes"]["artifact_sha256"] == {"before": shas[SLOW], "after": shas[0]}

    table = bench("history", "--results-dir", str(results))
    assert f"change at run {ids[SLOW]}" in table.stdout
    assert f"likely cause: artifact_sha256 {shas[0][:12]} -> {shas[SLOW][:12]}" in table.stdout

    # the newest run is light again: nothing regressed at a threshold beyond the noise
    final = bench("gate", "--results-dir", str(results), "--threshold", f"{BIG_STEP - 1:.0%}")
    assert final.code == 0, (medians, final.stderr)


def gate_after_the_slow_run(results: Path, bench: Bench, ids: list[str], shas: list[str]) -> None:
    """The CI gate as it runs right after the slow run: it fails and says why."""
    failed = bench("gate", "--results-dir", str(results))
    assert failed.code == 1
    message = failed.stderr.strip().splitlines()[-1]
    assert message.startswith("GateFailed: histnet onnx/fp32 onnxruntime t1 on local regressed")
    assert f"since run {ids[SLOW]}" in message and "artifact_sha256" in message
    data = json.loads(bench("gate", "--results-dir", str(results), "--json").stdout)
    [verdict] = data["series"]
    assert verdict["regressed"] and verdict["newest_run_id"] == ids[SLOW]
    assert verdict["ratio"] > BIG_STEP, verdict
    # the stable segment before it: the light runs (all of them, unless load moved the first)
    baseline = verdict["baseline_run_ids"]
    assert baseline and baseline == ids[SLOW - len(baseline) : SLOW], verdict
    assert verdict["causes"]["artifact_sha256"] == {"before": shas[0], "after": shas[SLOW]}
