"""``bench predict`` beyond one prediction: a resolution sweep, and --measure-above running the
models whose interval is too wide through ``bench run`` (a real run of the tiny CNN on this
host), measured beside predicted."""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchharness.predict.apply import ModelPrediction, PredictRequest, _selection_of, wider_than
from benchharness.predict.predictor import Predictor
from benchharness.predict.samples import Measured, measure_artifact
from benchharness.results.store import RunStore
from tests.predict import synthetic as S
from tests.predict.test_predictor import FP

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(30)

TINY = "tests.support.tiny:tiny_cnn"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def predictor_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A predictor of the synthetic device with a band (enough kernel models for five folds)."""
    rng = random.Random(2)
    m = Measured()
    for i in range(12):
        g = S.random_model(rng)
        m.add(measure_artifact(g, S.fake_rows(g), "random", f"m{i}", S.fake_e2e_us(g)))
    path = tmp_path_factory.mktemp("predictor") / "p.json.gz"
    Predictor.fit(m, FP, seed=0).save(path)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``bench ARGS`` as a user runs it: a process of its own (its console, its exit status)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "benchharness.cli", *args], capture_output=True,
                          text=True, timeout=600, env=env, cwd=ROOT)  # fmt: skip


def _bench(*args: str) -> dict[str, Any]:
    done = _cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout[done.stdout.index("{") :])
    return data


def _prediction(pct: float | None, error: str | None = None) -> ModelPrediction:
    low, high = (None, None) if pct is None else (1.0, 1.0 + pct / 100.0)
    return ModelPrediction(f"m{pct}", "onnx", 1.0, low_ms=low, high_ms=high, error=error)


def test_the_models_chosen_are_those_whose_interval_is_too_wide_or_missing() -> None:
    preds = [_prediction(5.0), _prediction(30.0), _prediction(None), _prediction(math.inf),
             _prediction(50.0, error="no artifact")]  # fmt: skip
    chosen = wider_than(preds, 20.0)
    assert [m.model for m in chosen] == ["m30.0", "mNone", "minf"]
    assert wider_than(preds, 100.0) == [preds[2], preds[3]]  # unbounded: always checked


def test_a_chosen_model_is_measured_by_its_own_selection_item() -> None:
    req = PredictRequest(models=f"all,{TINY}", resolutions=(32, 48))
    assert _selection_of(req, {"mobilenet_v2@48"}) == ["mobilenet_v2"]
    assert _selection_of(req, {"tiny_cnn@32", "resnet18@32"}) == ["resnet18", TINY]
    assert _selection_of(req, {"not-predicted"}) == []


def test_a_resolution_sweep_is_predicted_model_by_model(predictor_file: Path, tmp_path: Path) -> None:
    data = _bench("predict", "--models", TINY, "--resolution", "32,48", "--formats", "onnx",
                  "--predictor", str(predictor_file), "--force", "--results-dir", str(tmp_path))  # fmt: skip
    preds = {p["model"]: p for p in data["predictions"]}
    assert set(preds) == {"tiny_cnn@32", "tiny_cnn@48"}
    assert all(p["error"] is None for p in preds.values())
    # the same network on 2.25x the pixels: more work, a longer prediction
    assert preds["tiny_cnn@48"]["predicted_ms"] > preds["tiny_cnn@32"]["predicted_ms"]
    assert data["measured_run"] is None and preds["tiny_cnn@32"]["measured_ms"] is None


def test_measure_above_runs_the_uncertain_models_and_shows_measured_beside_predicted(
    predictor_file: Path, tmp_path: Path
) -> None:
    args = ["predict", "--models", TINY, "--input-shape", "1x3x32x32", "--formats", "onnx",
            "--predictor", str(predictor_file), "--force", "--results-dir", str(tmp_path)]  # fmt: skip
    none = _bench(*args, "--measure-above", "1e9", "--quick")
    assert none["measured_run"] is None  # every interval is narrower than that: nothing ran
    assert none["predictions"][0]["measured_ms"] is None
    shown = _cli(*args, "--measure-above", "0", "--quick")
    assert shown.returncode == 0, shown.stderr
    said = re.search(r"measured in run (\S+)", shown.stdout)
    assert said is not None, shown.stdout
    store = RunStore.open(tmp_path, said.group(1))  # a normal run folder, as bench run writes it
    (row,) = store.runs
    assert row.ok and row.model == "tiny_cnn" and row.format == "onnx" and row.median_ms
    assert "ratio" in shown.stdout  # measured / predicted, beside the prediction


def test_quick_without_measure_above_is_a_usage_error(predictor_file: Path) -> None:
    done = _cli("predict", "--models", TINY, "--quick", "--predictor", str(predictor_file))
    assert done.returncode != 0
    assert "UsageError: --quick only says how --measure-above measures" in done.stderr
    assert "Traceback" not in done.stderr
