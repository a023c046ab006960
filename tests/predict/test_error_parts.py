"""Where a held-out prediction's error comes from: the parts sum to the model's error."""

from __future__ import annotations

import random

import pytest

from benchharness.predict import evaluate as E
from benchharness.predict.error_parts import GAP, model_parts, summarize
from benchharness.predict.features import kernel_key
from benchharness.predict.join import measured_kernels
from benchharness.predict.predictor import (
    Calibration,
    GraphPrediction,
    KernelPrediction,
    Predictor,
)
from benchharness.predict.samples import Measured, measure_artifact
from benchharness.results.schema import OpRow, RunRow
from tests.predict import synthetic as S


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    rng = random.Random(3)
    m = Measured()
    for i in range(24):
        g = S.random_model(rng)
        m.add(measure_artifact(g, S.fake_rows(g), "random", f"k{i}", S.fake_e2e_us(g)))
    return Predictor.fit(m, {"device": "fake"}, seed=0)


def _slow_convs(rows: list[OpRow], factor: float) -> list[OpRow]:
    """The fake device's profile with its convolutions ``factor`` times slower."""
    return [
        OpRow(op_name=r.op_name, op_type=r.op_type, graph_ops=r.graph_ops,
              median_us=(r.median_us or 0.0) * (factor if r.op_type == "Conv" else 1.0))
        for r in rows
    ]  # fmt: skip


def test_the_parts_sum_to_the_models_error_and_name_the_slow_kernel_type(
    predictor: Predictor,
) -> None:
    g = S.random_model(random.Random(99), 6)
    rows = _slow_convs(S.fake_rows(g), 1.5)  # a device whose convolutions the build never saw
    measured_us = sum(r.median_us or 0.0 for r in rows) + S.OFFSET_US + 40.0  # and a longer gap
    pred = predictor.predict_graph(g)
    cal = predictor.formats["onnx"].calibration
    parts = model_parts(g, rows, cal, pred, measured_us / 1e3)
    total_error = (measured_us / 1e3 - pred.ms) / (measured_us / 1e3)
    assert sum(err for _, err in parts.values()) == pytest.approx(total_error)
    # the labels and the gap make the whole measured latency
    assert sum(t for t, _ in parts.values()) == pytest.approx(1.0)
    kernel_parts = {k: v for k, v in parts.items() if k != GAP}
    worst = max(kernel_parts, key=lambda k: kernel_parts[k][1])
    assert worst.startswith("Conv") and kernel_parts[worst][1] > 0.05  # predicted short
    gap_time, gap_error = parts[GAP]
    expected_gap = measured_us - sum(
        cal.label(r.median_us or 0.0, 1) for r in rows
    )  # every fake row is its own kernel's one row
    assert gap_time == pytest.approx(expected_gap / measured_us, rel=1e-6)
    assert gap_error == pytest.approx((expected_gap - cal.offset_us) / measured_us, rel=1e-6)


def test_a_calibration_that_is_right_leaves_only_the_regressors_error() -> None:
    g = S.random_model(random.Random(5), 3)
    rows = S.fake_rows(g)
    measured_ms = (sum(r.median_us or 0.0 for r in rows) + 30.0) / 1e3
    cal = Calibration(1.0, 0.0, 30.0, 10)
    # a prediction that gives every kernel its measured time and the gap its offset
    kernels, _ = measured_kernels(g, rows)
    preds = [
        KernelPrediction(kernel_key(k, "onnx"), [n.name for n in k.nodes], k.time_us or 0.0)
        for k in kernels
    ]
    pred = GraphPrediction("onnx", (sum(p.us for p in preds) + 30.0) / 1e3, preds)
    parts = model_parts(g, rows, cal, pred, measured_ms)
    assert all(err == pytest.approx(0.0, abs=1e-12) for _, err in parts.values())


def test_summaries_rank_parts_by_their_mean_absolute_share() -> None:
    per_model = [
        {"Conv": (0.6, 0.10), GAP: (0.1, -0.02)},
        {"Conv": (0.5, -0.10), GAP: (0.2, 0.02), "Add": (0.1, 0.01)},
    ]
    conv, gap, add = summarize("zoo", "onnx", per_model)
    assert (conv.part, gap.part, add.part) == ("Conv", GAP, "Add")
    assert conv.error_pct == pytest.approx(0.0) and conv.abs_error_pct == pytest.approx(10.0)
    assert add.models == 1 and add.time_pct == pytest.approx(5.0)  # a model without it counts 0


def test_the_evaluation_splits_each_profiled_models_error(predictor: Predictor) -> None:
    rng = random.Random(21)
    zoo = {f"resnet{i}": S.random_model(rng, 5) for i in range(2)}
    zoo |= {f"mobilenet{i}": S.random_model(rng, 3) for i in range(2)}
    rows = [
        RunRow(model=name, format="onnx", status="ok", job_id=name,
               median_ms=S.fake_e2e_us(g) / 1e3, macs=g.cost.macs, source="torchvision")
        for name, g in zoo.items()
    ]  # fmt: skip
    profiled = {"resnet0", "mobilenet1"}  # the others have no operator profile
    rows.append(
        RunRow(model="mobilenet9", format="onnx", status="ok", job_id="m9", flags="OPS_SUM_OFF",
               median_ms=1.0, macs=1, source="torchvision")
    )  # fmt: skip
    zoo["mobilenet9"] = S.random_model(rng, 3)
    ev = E.evaluate(
        predictor, rows, zoo, graph_of=lambda r: zoo[r.model],
        ops_of=lambda r: S.fake_rows(zoo[r.model]) if r.model in profiled | {"mobilenet9"} else [],
    )  # fmt: skip
    # a profile whose operators ran at another speed than its median is not split, and said so
    assert {r.model for r in ev.models if r.parts} == profiled
    assert any(s.startswith("mobilenet9 onnx: flagged OPS_SUM_OFF") for s in ev.skipped)
    for r in ev.models:
        if r.parts:
            error = (r.measured_ms - r.predicted_ms[E.PREDICTOR]) / r.measured_ms
            assert sum(e for _, e in r.parts.values()) == pytest.approx(error)
    assert {p.set for p in ev.parts} == {E.ZOO} and any(p.part == GAP for p in ev.parts)
    assert ev.to_json()["parts"][0]["abs_error_pct"] >= ev.to_json()["parts"][-1]["abs_error_pct"]
