"""The predictor file: round trips, refusals, fingerprints, refits without a family."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from benchharness.errors import PredictorError
from benchharness.predict.predictor import Calibration, Predictor, fingerprint_of_rows
from benchharness.predict.samples import Measured, Point, measure_artifact
from benchharness.predict.selection import ORIGIN_PAIR
from benchharness.results.schema import RunRow
from tests.predict import synthetic as S

FP = {
    "device": "local",
    "cpu_model": "Xeon",
    "threads": 2,
    "runner": "python",
    "statistic": "median",
    "harness_version": "0.1.0",
    "runtimes": {"onnx": {"runtime": "onnxruntime", "version": "1.32.0"}},
}


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    rng = random.Random(5)
    m = Measured()
    for i in range(30):
        g = S.random_model(rng)
        m.add(
            measure_artifact(
                g, S.fake_rows(g), "resnet" if i % 3 == 0 else "random", f"m{i}", S.fake_e2e_us(g)
            )
        )
    return Predictor.fit(m, FP, seed=0)


@pytest.mark.parametrize("name", ["p.json", "p.json.gz"])
def test_round_trip_predicts_the_same(predictor: Predictor, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    predictor.save(path)
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    loaded = Predictor.load(path)
    g = S.random_model(random.Random(7))
    assert loaded.predict_graph(g).ms == predictor.predict_graph(g).ms
    assert loaded.fingerprint == FP and len(loaded.samples) == len(predictor.samples)


def test_files_that_are_not_predictors_are_refused(tmp_path: Path, predictor: Predictor) -> None:
    with pytest.raises(PredictorError, match="no predictor file"):
        Predictor.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text('{"kind": "something else"}')
    with pytest.raises(PredictorError, match="not a benchharness latency predictor"):
        Predictor.load(tmp_path / "x.json")
    data = predictor.to_json()
    data["version"] = 99
    (tmp_path / "new.json.gz").write_bytes(gzip.compress(json.dumps(data).encode()))
    with pytest.raises(PredictorError, match="version 99"):
        Predictor.load(tmp_path / "new.json.gz")


def test_fingerprint_differences_are_strict_or_warnings(predictor: Predictor) -> None:
    same = json.loads(json.dumps(FP))
    assert predictor.differences(same, "onnx") == []
    other = json.loads(json.dumps(FP))
    other["runtimes"]["onnx"]["version"] = "1.99.0"
    other["harness_version"] = "0.2.0"
    assert predictor.strict_differences(other, "onnx") == [
        "runtime_version: predictor onnxruntime 1.32.0, now onnxruntime 1.99.0"
    ]
    assert "harness_version: predictor 0.1.0, now 0.2.0" in predictor.differences(other, "onnx")
    # what is not known is not a difference
    assert predictor.differences({"device": "local"}, "onnx") == []


def test_fingerprint_of_rows() -> None:
    rows = [
        RunRow(status="failed", device="x"),
        RunRow(
            status="ok",
            device="local",
            format="onnx",
            cpu_model="Xeon",
            threads=2,
            runtime="onnxruntime",
            runtime_version="1.32.0",
            harness_version="0.1.0",
            stats_source="samples",
        ),
    ]
    assert fingerprint_of_rows(rows) == FP


def test_without_a_family_drops_its_kernels(predictor: Predictor) -> None:
    fold = predictor.without(["resnet"])
    assert fold.samples and all(s.origin != "resnet" for s in fold.samples)
    assert len(fold.samples) < len(predictor.samples)
    assert all(p.origin != "resnet" for p in fold.points)
    g = S.random_model(random.Random(8))
    assert fold.predict_graph(g).ms == pytest.approx(S.fake_e2e_us(g) / 1e3, rel=0.1)


def test_a_format_it_was_not_built_for_is_refused(predictor: Predictor) -> None:
    g = S.random_model(random.Random(9))
    g.format = "tflite"
    with pytest.raises(PredictorError, match="built for the formats onnx"):
        predictor.predict_graph(g)


def test_fusion_pair_models_do_not_calibrate_the_kernel_models() -> None:
    # A pair model is one or two operators in a ~5 us run: its profiled time is mostly the
    # profiler's own cost per operator (5-8x its end-to-end time on LiteRT here). Weighted by
    # relative error, twelve of them pulled a whole build's LiteRT scale to 0.37, and every
    # prediction with it (0.32-0.43x the measured zoo).
    kernels = [
        Point("tflite", f"k{i}", "resnet", sum_us=e2e, rows=40, e2e_us=e2e, macs=1, bytes=1)
        for i, e2e in enumerate(range(500, 5000, 300))
    ]
    pairs = [
        Point(
            "tflite",
            f"pair-{i}",
            ORIGIN_PAIR,
            sum_us=6.0 * e2e,
            rows=2,
            e2e_us=e2e,
            macs=1,
            bytes=1,
        )
        for i, e2e in enumerate((4.0, 5.0, 6.0, 8.0, 10.0, 12.0) * 2)
    ]
    cal = Calibration.fit(kernels + pairs)
    assert cal.n == len(kernels)
    assert cal.scale == pytest.approx(1.0, abs=0.02)
    assert cal.label(1000.0, 40) == pytest.approx(1000.0, rel=0.05)
