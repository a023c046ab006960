"""Prediction intervals (predict/conformal.py): the conformal quantile, the band of a format and
its widths, the intervals a predictor gives, and what its file may hold. Synthetic data with a
known noise: nothing here times anything."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from benchharness.errors import PredictorError
from benchharness.predict.conformal import COVERAGE, MIN_KEY_SCORES, Band, conformal_quantile
from benchharness.predict.predictor import Predictor, out_of_fold_band
from benchharness.predict.samples import Measured, measure_artifact
from benchharness.predict.wiring import Graph
from benchharness.results.schema import OpRow
from tests.predict import synthetic as S
from tests.predict.test_predictor import FP

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(20)

#: The synthetic device's noise: each operator and each end-to-end time off by a lognormal factor
#: of this sd (about 5 %), as a real profile's medians scatter around the kernel's true time.
NOISE_SD = 0.05


def test_the_quantile_is_the_ceil_n_plus_one_th_smallest() -> None:
    nine = [float(i) for i in range(9, 0, -1)]
    assert conformal_quantile(nine, 0.9) == 9.0  # ceil(10 * 0.9) = 9th of 9
    assert conformal_quantile(nine[:8], 0.9) == math.inf  # ceil(9 * 0.9) = 9th of 8: none
    assert conformal_quantile([float(i) for i in range(1, 20)], 0.9) == 18.0  # ceil(18.0)
    assert conformal_quantile([1.0, math.inf, math.nan, 2.0], 0.5) == 2.0  # ceil(1.5) of 2 finite


def test_the_quantile_covers_new_exchangeable_scores_at_its_level() -> None:
    """2,000 draws of 50 calibration scores and one new score from the same distribution: the
    new one is within the quantile about ceil(51 * 0.9) / 51 = 90.2 % of the time (not 88 %, as
    taking the 0.9 * n-th would give, and not far above: the interval is not needlessly wide)."""
    rng = np.random.default_rng(3)
    covered = 0
    trials = 2000
    for _ in range(trials):
        scores = np.abs(rng.standard_normal(51))
        covered += scores[50] <= conformal_quantile(scores[:50].tolist(), 0.9)
    assert 0.885 <= covered / trials <= 0.93


def test_a_key_with_few_scores_borrows_the_pooled_width() -> None:
    errors = {"Conv": [0.01 * i for i in range(1, 21)], "Rare": [5.0] * (MIN_KEY_SCORES - 1)}
    band = Band.fit(errors, [(0.1, ["Conv"], [100.0])])
    assert band.kernel_q["Conv"] == pytest.approx(0.19)  # ceil(21 * 0.9) = 19th of 20
    assert "Rare" not in band.kernel_q
    pooled = conformal_quantile([e for v in errors.values() for e in v])
    assert band.kernel_width("Rare") == band.kernel_width("NeverSeen") == pooled
    assert pooled > band.kernel_q["Conv"]  # the rare key's large errors widen the pooled one


def test_a_model_whose_time_sits_in_a_poorly_predicted_kernel_gets_a_wider_interval() -> None:
    errors = {"Good": [0.02] * 20, "Bad": [0.4] * 20}
    models = [(0.05, ["Good", "Bad"], [90.0, 10.0]) for _ in range(9)]
    band = Band.fit(errors, models)
    lo_good, hi_good = band.model_interval(1.0, ["Good", "Bad"], [90.0, 10.0])
    lo_bad, hi_bad = band.model_interval(1.0, ["Good", "Bad"], [10.0, 90.0])
    assert lo_bad < lo_good < 1.0 < hi_good < hi_bad
    # the multiplier is what the kernel models needed: each one's error is just inside
    assert band.model_q * band.width(["Good", "Bad"], [90.0, 10.0]) == pytest.approx(0.05)


def test_a_band_round_trips_through_json_with_unbounded_widths() -> None:
    band = Band.fit({"Conv": [0.1] * 3}, [])  # too few of everything: every width unbounded
    assert band.pooled_q == band.model_q == math.inf
    text = json.dumps(band.to_json(), allow_nan=False)  # JSON has no infinity: null
    assert Band.from_json(json.loads(text)) == band
    assert band.model_interval(2.0, ["Conv"], [1.0]) == (0.0, math.inf)


def test_an_interval_too_wide_for_a_float_is_unbounded_not_an_overflow() -> None:
    band = Band(COVERAGE, {"Conv": 600.0}, 600.0, 1e6)
    assert band.model_interval(1.0, ["Conv"], [1.0]) == (0.0, math.inf)


# --- the band a predictor fits --------------------------------------------------------------


def _noisy(graph: Graph, rng: random.Random) -> tuple[list[OpRow], float]:
    rows = [
        dataclasses.replace(r, median_us=(r.median_us or 0.0) * rng.lognormvariate(0, NOISE_SD))
        for r in S.fake_rows(graph)
    ]
    return rows, S.fake_e2e_us(graph) * rng.lognormvariate(0, NOISE_SD)


def _measured(n: int, seed: int) -> Measured:
    rng = random.Random(seed)
    m = Measured()
    for i in range(n):
        g = S.random_model(rng)
        rows, e2e = _noisy(g, rng)
        m.add(measure_artifact(g, rows, "random", f"m{i}", e2e))
    return m


@pytest.fixture(scope="module")
def noisy_predictor() -> Predictor:
    return Predictor.fit(_measured(40, seed=11), FP, seed=0)


def test_new_models_of_the_same_device_fall_inside_their_intervals(
    noisy_predictor: Predictor,
) -> None:
    """Sixty models the predictor never saw, measured with the same noise: about 90 % inside
    (at least 80 % of sixty), with intervals no wider than the noise needs."""
    rng = random.Random(99)
    inside = 0
    ratios = []
    for _ in range(60):
        g = S.random_model(rng)
        _, measured_us = _noisy(g, rng)
        pred = noisy_predictor.predict_graph(g)
        assert pred.low_ms is not None and pred.high_ms is not None
        assert pred.low_ms < pred.ms < pred.high_ms
        inside += pred.low_ms <= measured_us / 1e3 <= pred.high_ms
        ratios.append(pred.high_ms / pred.low_ms)
        for k in pred.kernels:
            assert k.low_us is not None and k.high_us is not None
            assert k.low_us <= k.us <= k.high_us
    assert inside >= 48
    assert float(np.median(ratios)) < 1.6  # a 5 % noise needs nothing like a 2x interval


def test_every_kernel_model_is_scored_by_a_fit_that_never_saw_it() -> None:
    m = _measured(12, seed=4)
    band = out_of_fold_band(m.samples, m.points, seed=0)
    assert band is not None
    assert band.model_scores == 12
    assert band.kernel_scores == len(m.samples)
    assert out_of_fold_band(m.samples[:3], m.points[:3]) is None  # fewer models than folds


def test_a_predictor_file_keeps_its_band(noisy_predictor: Predictor, tmp_path: Path) -> None:
    path = tmp_path / "p.json.gz"
    noisy_predictor.save(path)
    loaded = Predictor.load(path)
    assert loaded.formats["onnx"].band == noisy_predictor.formats["onnx"].band
    g = S.random_model(random.Random(8))
    a, b = loaded.predict_graph(g), noisy_predictor.predict_graph(g)
    assert (a.low_ms, a.high_ms) == (b.low_ms, b.high_ms)


def test_a_file_written_before_intervals_predicts_without_them(
    noisy_predictor: Predictor, tmp_path: Path
) -> None:
    data = noisy_predictor.to_json()
    for fmt in data["formats"].values():
        del fmt["band"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    pred = Predictor.load(path).predict_graph(S.random_model(random.Random(8)))
    assert pred.ms > 0 and pred.low_ms is None and pred.high_ms is None


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("coverage", 1.5, "a share between 0 and 1"),
        ("pooled_q", -0.1, "a finite number >= 0"),
        ("model_q", "wide", "a number"),
        ("kernel_q", {"Conv": 1e9}, "a log-scale width of at most 700"),
        ("model_scores", -1, "an integer from 0"),
    ],
)
def test_a_damaged_band_is_refused_naming_its_field(
    noisy_predictor: Predictor, tmp_path: Path, field: str, value: object, expected: str
) -> None:
    data = noisy_predictor.to_json()
    data["formats"]["onnx"]["band"][field] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PredictorError, match=rf"formats\.onnx\.band\.{field}.*{expected}"):
        Predictor.load(path)


def test_bench_predict_shows_each_models_interval(
    noisy_predictor: Predictor, tmp_path: Path
) -> None:
    """The tiny CNN exported for real and predicted by the synthetic device's predictor (its
    kernels fall back where their keys were never measured): the table and the JSON carry the
    interval around the prediction."""
    from tests.predict.test_apply import _bench, _cli

    path = tmp_path / "p.json.gz"
    noisy_predictor.save(path)
    args = ["predict", "--models", "tests.support.tiny:tiny_cnn", "--input-shape", "1x3x32x32",
            "--formats", "onnx", "--predictor", str(path), "--force",
            "--results-dir", str(tmp_path)]  # fmt: skip
    shown = _cli(*args)
    assert shown.returncode == 0, shown.stderr
    assert "90 % interval" in shown.stdout
    (pred,) = _bench(*args, "--ops")["predictions"]
    assert pred["error"] is None
    assert 0 < pred["low_ms"] < pred["predicted_ms"] < pred["high_ms"]
    assert all(k["low_us"] <= k["us"] <= k["high_us"] for k in pred["kernels"])
