"""The network stage on synthetic networks: a known law recovered, bounded, and honest widths."""

from __future__ import annotations

import math
import random

import pytest

from benchharness.predict.network_cal import (
    MIN_FAMILIES,
    MIN_NETWORKS,
    NetworkPoint,
    NetworkStage,
)

#: The fake device: a network of kernel sum k ms runs 0.8 * k ** 1.1 ms end to end.
SLOPE, SCALE = 1.1, 0.8


def _points(n: int, families: int, noise: float = 0.0, seed: int = 0) -> list[NetworkPoint]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = math.exp(rng.uniform(math.log(0.3), math.log(20.0)))
        e2e = SCALE * k**SLOPE * math.exp(rng.gauss(0.0, noise))
        out.append(NetworkPoint("onnx", f"m{i}", f"f{i % families}", e2e, k, "run"))
    return out


def test_a_known_law_is_recovered() -> None:
    stage = NetworkStage.fit(_points(20, 5))
    assert stage is not None
    assert stage.slope == pytest.approx(SLOPE, abs=1e-9)
    assert math.exp(stage.intercept) == pytest.approx(SCALE, rel=1e-9)
    for k in (0.5, 2.0, 10.0):
        assert stage.apply(k) == pytest.approx(SCALE * k**SLOPE, rel=1e-9)
    # exact data: every family's networks are predicted without them exactly, but for those
    # past the others' range, which keep the factor at its end
    assert 0.0 < stage.q < 0.01


def test_outside_its_range_the_factor_at_the_nearest_end_is_kept() -> None:
    stage = NetworkStage.fit(_points(20, 5))
    assert stage is not None
    far = stage.high_ms * 50
    assert stage.factor(far) == pytest.approx(stage.factor(stage.high_ms))
    assert stage.apply(far) == pytest.approx(far * stage.factor(stage.high_ms))
    assert stage.factor(stage.low_ms / 10) == pytest.approx(stage.factor(stage.low_ms))


def test_too_few_networks_or_families_give_no_stage() -> None:
    assert NetworkStage.fit(_points(MIN_NETWORKS - 1, 5)) is None
    assert NetworkStage.fit(_points(30, MIN_FAMILIES - 1)) is None
    assert NetworkStage.fit(_points(MIN_NETWORKS, MIN_FAMILIES)) is not None


def test_a_slope_out_of_range_falls_back_to_one_factor() -> None:
    # networks whose time does not grow with their kernel sum: a symptom, not a device
    pts = [
        NetworkPoint("onnx", f"m{i}", f"f{i % 4}", 2.0 + 0.01 * i, 0.5 * (i + 1), "")
        for i in range(12)
    ]
    stage = NetworkStage.fit(pts)
    assert stage is not None and stage.slope == 1.0
    ratios = sorted(math.log(p.e2e_ms / p.kernel_ms) for p in pts)
    assert stage.intercept == pytest.approx((ratios[5] + ratios[6]) / 2)


def test_its_interval_covers_new_networks_of_the_same_device() -> None:
    # leave-family-out errors are exchangeable with a new network's: the conformal width covers
    # at least 90 % of fresh draws (fixed seeds: the check is deterministic)
    stage = NetworkStage.fit(_points(40, 10, noise=0.1, seed=1))
    assert stage is not None and math.isfinite(stage.q)
    fresh = _points(400, 10, noise=0.1, seed=2)
    inside = 0
    for p in fresh:
        bounds = stage.interval(stage.apply(p.kernel_ms))
        assert bounds is not None
        inside += bounds[0] <= p.e2e_ms <= bounds[1]
    assert inside / len(fresh) >= 0.9
    # and it is not vacuous: about the noise, not orders of magnitude
    assert 0.1 < stage.q < 0.5


def test_too_few_families_for_a_width_give_an_unbounded_one() -> None:
    # three families: a 90 % conformal quantile of the family errors needs at least nine scores
    stage = NetworkStage.fit(_points(MIN_NETWORKS, MIN_FAMILIES, noise=0.1))
    assert stage is not None
    assert stage.q == math.inf and stage.interval(1.0) is None


def test_json_round_trip() -> None:
    stage = NetworkStage.fit(_points(20, 5, noise=0.05))
    assert stage is not None
    again = NetworkStage.from_json(stage.to_json())
    assert again == stage
    p = _points(1, 1)[0]
    assert NetworkPoint.from_json(p.to_json()) == p
    assert "networks of 5 families" in stage.describe()
