"""Evaluation: metrics on known numbers, leave-one-family-out on a fake device's zoo."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from benchharness.predict import evaluate as E
from benchharness.predict.metrics import LinearFit, scores
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


def test_a_line_through_points_is_found() -> None:
    x = np.array([[1.0], [2.0], [4.0]])
    fit = LinearFit.fit(("macs",), x, 3 * x[:, 0] + 1)
    assert fit.coef[0] == pytest.approx(3) and fit.intercept == pytest.approx(1)


def test_leave_one_family_out_on_a_fake_zoo() -> None:
    rng = random.Random(11)
    m = Measured()
    families = ["resnet", "mobilenet", "random"]
    for i in range(45):
        g = S.random_model(rng)
        m.add(measure_artifact(g, S.fake_rows(g), families[i % 3], f"k{i}", S.fake_e2e_us(g)))
    predictor = Predictor.fit(m, {"device": "fake"}, seed=0)
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
    data = ev.to_json()
    assert len(data["models"]) == 6 and len(data["scores"]) == len(shown)
