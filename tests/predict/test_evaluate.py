"""Evaluation: metrics on known numbers, leave-one-family-out on a fake device's zoo."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from benchharness.predict import evaluate as E
from benchharness.predict.metrics import LinearFit, resolves, scores
from benchharness.predict.predictor import Predictor
from benchharness.predict.samples import Measured, measure_artifact
from benchharness.results.schema import RunRow
from tests.predict import synthetic as S


def test_scores_on_known_errors() -> None:
    measured = [10.0, 20.0, 30.0, 40.0]
    predicted = [10.4, 21.5, 36.0, 40.0]  # +4 %, +7.5 %, +20 %, 0 %
    sc = scores(predicted, measured)
    assert sc.n == 4 and sc.within_10 == 0.75 and sc.within_5 == 0.5
    assert sc.rmspe == pytest.approx(math.sqrt((0.04**2 + 0.075**2 + 0.2**2) / 4) * 100)
    assert sc.spearman == pytest.approx(1.0)
    assert scores([1.0, math.nan], [1.0, 2.0]).n == 1


def test_a_measurement_resolves_the_band_only_when_its_own_interval_lies_inside() -> None:
    assert resolves(10.0, 9.5, 10.8)
    assert resolves(10.0, 9.0, 11.0)  # the band's edges count as inside
    assert not resolves(10.0, 8.9, 10.5)  # below
    assert not resolves(10.0, 9.5, 11.2)  # above
    assert not resolves(10.0, None, 10.5) and not resolves(10.0, 9.5, math.inf)
    assert not resolves(0.0, 0.0, 0.0)
    assert resolves(10.0, 9.7, 10.3, band=0.05) and not resolves(10.0, 9.0, 10.3, band=0.05)


def test_scores_over_the_resolved_measurements() -> None:
    measured = [10.0, 20.0, 30.0, 40.0]
    predicted = [10.4, 21.5, 36.0, 46.0]  # +4 %, +7.5 %, +20 %, +15 %
    # the first two measured tightly; the third's median is uncertain by +-30 %; the fourth
    # has no interval (a run of one process)
    bounds = [(9.8, 10.2), (19.0, 21.0), (21.0, 39.0), (None, None)]
    sc = scores(predicted, measured, bounds)
    assert sc.within_10 == 0.5
    assert sc.resolved == 2 and sc.within_10_resolved == 1.0
    # a miss on a resolved measurement counts against the predictor
    sc = scores([10.4, 25.0, 36.0, 46.0], measured, bounds)
    assert sc.resolved == 2 and sc.within_10_resolved == 0.5
    # none resolved: no share, rather than a made-up one
    sc = scores(predicted, measured, [(None, None)] * 4)
    assert sc.resolved == 0 and math.isnan(sc.within_10_resolved)
    assert scores(predicted, measured).resolved == 0
    # a dropped (NaN) prediction drops its interval with it
    sc = scores([math.nan, 21.5, 36.0, 46.0], measured, bounds)
    assert sc.n == 3 and sc.resolved == 1


def test_a_line_through_points_is_found() -> None:
    x = np.array([[1.0], [2.0], [4.0]])
    fit = LinearFit.fit(("macs",), x, 3 * x[:, 0] + 1)
    assert fit.coef[0] == pytest.approx(3) and fit.intercept == pytest.approx(1)


def _fake_device_predictor(rng: random.Random) -> Predictor:
    """A predictor of 45 kernel models of the fake device, drawn from two families and random."""
    m = Measured()
    families = ["resnet", "mobilenet", "random"]
    for i in range(45):
        g = S.random_model(rng)
        m.add(measure_artifact(g, S.fake_rows(g), families[i % 3], f"k{i}", S.fake_e2e_us(g)))
    return Predictor.fit(m, {"device": "fake"}, seed=0)


def test_leave_one_family_out_on_a_fake_zoo() -> None:
    rng = random.Random(11)
    predictor = _fake_device_predictor(rng)
    zoo = {f"resnet{i}": S.random_model(rng, 8) for i in range(3)}
    zoo |= {f"mobilenet{i}": S.random_model(rng, 4) for i in range(3)}
    rows = [
        RunRow(
            model=name,
            format="onnx",
            status="ok",
            median_ms=S.fake_e2e_us(g) / 1e3,
            macs=g.cost.macs,
            source="torchvision",
            # the run's own 99 % interval: tight on the resnets, +-25 % on the mobilenets
            ci99_low_ms=S.fake_e2e_us(g) / 1e3 * (0.98 if name.startswith("res") else 0.75),
            ci99_high_ms=S.fake_e2e_us(g) / 1e3 * (1.02 if name.startswith("res") else 1.25),
        )
        for name, g in zoo.items()
    ]
    ev = E.evaluate(predictor, rows, zoo, graph_of=lambda r: zoo[r.model])
    assert {r.family for r in ev.models} == {"resnet", "mobilenet"}
    sc = ev.scores[(E.ZOO, "onnx", E.PREDICTOR)]
    assert sc.n == 6 and sc.within_10 == 1.0
    # synthetic graphs have no file for a runtime to read: no "kernels inferred" line beside;
    # a predictor without measured networks: no "no network stage" line either
    shown = [m for m in E.METHODS if m not in (E.PREDICTOR_INFERRED, E.PREDICTOR_KERNEL_SUM)]
    assert (E.ZOO, "onnx", E.PREDICTOR_INFERRED) not in ev.scores
    assert (E.ZOO, "onnx", E.PREDICTOR_KERNEL_SUM) not in ev.scores
    for method in shown:
        assert ev.scores[(E.ZOO, "onnx", method)].n == 6
    # the zoo lines are fitted on the other family only: three models each
    assert all(not math.isnan(r.predicted_ms[E.MACS_ZOO]) for r in ev.models)
    # each prediction carries its fold's interval; the predictor's coverage is the share inside
    assert all(r.low_ms is not None and r.high_ms is not None for r in ev.models)
    inside = [r.low_ms <= r.measured_ms <= r.high_ms for r in ev.models]  # type: ignore[operator]
    assert sc.coverage == pytest.approx(sum(inside) / 6)
    assert all(math.isnan(ev.scores[(E.ZOO, "onnx", m)].coverage) for m in shown[1:])
    # the rows' own intervals reach the scores: three of six measurements resolve +-10 %
    assert sc.resolved == 3 and sc.within_10_resolved == 1.0
    assert all(ev.scores[(E.ZOO, "onnx", m)].resolved == 3 for m in shown)
    data = ev.to_json()
    assert len(data["models"]) == 6 and len(data["scores"]) == len(shown)
    resnet = next(m for m in data["models"] if m["model"] == "resnet0")
    assert resnet["measured_low_ms"] < resnet["measured_ms"] < resnet["measured_high_ms"]
    assert {s["resolved"] for s in data["scores"]} == {3}


def test_the_most_precise_of_several_measurements_is_scored() -> None:
    rng = random.Random(5)
    predictor = _fake_device_predictor(rng)
    zoo = {"resnet0": S.random_model(rng, 6), "mobilenet0": S.random_model(rng, 4)}
    true = {name: S.fake_e2e_us(g) / 1e3 for name, g in zoo.items()}

    def row(name: str, factor: float, spread: float | None, status: str = "ok") -> RunRow:
        median = true[name] * factor
        low, high = (median * (1 - spread), median * (1 + spread)) if spread else (None, None)
        return RunRow(
            model=name, format="onnx", status=status, median_ms=median, macs=1,
            source="torchvision", ci99_low_ms=low, ci99_high_ms=high,
        )  # fmt: skip

    rows = [
        row("mobilenet0", 1.0, None),  # one run, no interval: still scored
        row("resnet0", 2.0, 0.6),  # a run whose processes fell into a slow mode
        row("resnet0", 1.0, 0.03),  # the same model measured tightly
        row("resnet0", 1.0, 0.0001, status="error"),  # a failed job is never the measurement
    ]
    ev = E.evaluate(predictor, rows, zoo, graph_of=lambda r: zoo[r.model])
    measured = {r.model: r.measured_ms for r in ev.models}
    assert measured == pytest.approx(true)
    # the models keep the order the runs list them in
    assert [r.model for r in ev.models] == ["mobilenet0", "resnet0"]
    sc = ev.scores[(E.ZOO, "onnx", E.PREDICTOR)]
    assert sc.n == 2 and sc.resolved == 1
    # with the loose run alone, resnet0's measurement resolves nothing and is 2x off
    ev = E.evaluate(predictor, rows[:2], zoo, graph_of=lambda r: zoo[r.model])
    assert {r.model: r.measured_ms for r in ev.models}["resnet0"] == pytest.approx(
        2 * true["resnet0"]
    )
    assert ev.scores[(E.ZOO, "onnx", E.PREDICTOR)].resolved == 0
