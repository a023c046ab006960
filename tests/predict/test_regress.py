"""Per-kernel regressors: the stored trees predict as scikit-learn does, round trips, fallbacks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor

from benchharness.predict import regress as R


def test_stored_trees_predict_exactly_what_sklearn_predicts() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((200, 5))
    y = 3 * x[:, 0] + np.sin(5 * x[:, 1])
    trees = R.Trees.fit(x, y, seed=0)
    ref = GradientBoostingRegressor(
        loss=R.LOSS,
        n_estimators=R.N_TREES,
        max_depth=R.TREE_DEPTH,
        learning_rate=R.LEARNING_RATE,
        subsample=R.SUBSAMPLE,
        random_state=0,
    ).fit(x, y)
    probe = rng.random((40, 5))
    assert np.allclose(trees.predict(probe), ref.predict(probe))
    again = R.Trees.from_json(json.loads(json.dumps(trees.to_json())))
    assert np.array_equal(again.predict(probe), trees.predict(probe))


def _rows(n: int, rng: np.random.Generator) -> tuple[list[dict[str, float]], list[float]]:
    rows = [
        {"macs": float(m), "in_bytes": float(b), "k": float(k)}
        for m, b, k in zip(
            rng.integers(1e5, 1e7, n), rng.integers(1e4, 1e6, n), rng.choice([1, 3], n), strict=True
        )
    ]
    times = [5 + r["macs"] / 1000 + r["in_bytes"] / 500 for r in rows]
    return rows, times


def test_a_linear_kernel_is_fitted_exactly_by_the_base() -> None:
    rows, times = _rows(6, np.random.default_rng(1))  # too few for trees
    reg = R.fit_regressor("Conv", rows, times)
    assert reg.trees is None
    assert np.allclose(reg.predict(rows), times, rtol=1e-6)
    # and it scales past what it saw
    big = {"macs": 1e9, "in_bytes": 1e8, "k": 3.0}
    assert reg.predict([big])[0] == pytest.approx(5 + 1e6 + 2e5, rel=1e-6)


def test_round_trip_and_fallback_for_an_unknown_key() -> None:
    rng = np.random.default_rng(2)
    rows, times = _rows(40, rng)
    samples = [
        R.Sample("onnx", "Conv", r, t, "random", f"m{i}")
        for i, (r, t) in enumerate(zip(rows, times, strict=True))
    ]
    regs = R.fit_format(samples)
    assert set(regs) == {"Conv", R.FALLBACK_KEY}
    loaded = {
        k: R.Regressor.from_json(json.loads(json.dumps(r.to_json()))) for k, r in regs.items()
    }
    keys = ["Conv", "NeverSeen"]
    assert np.array_equal(
        R.predict_kernels(regs, keys, rows[:2]), R.predict_kernels(loaded, keys, rows[:2])
    )
    assert R.predict_kernels(regs, ["NeverSeen"], rows[:1])[0] > 0  # the fallback answers


def _thin_rows(n: int, rng: np.random.Generator) -> tuple[list[dict[str, float]], list[float]]:
    """Depthwise kernels on a SIMD device: a fixed cost per output pixel plus MACs padded to
    tiles of 16 channels, the formula a 4-channel GhostNet layer follows."""
    rows = []
    for c, side in zip(
        rng.choice([4, 8, 16, 24, 32, 64], n), rng.choice([14, 28, 56, 112], n), strict=True
    ):
        macs = float(side * side * c * 9)
        rows.append(
            {
                "macs": macs,
                "macs_tiled": macs * math.ceil(c / 16) * 16 / c,
                "pixels": float(side * side),
                "in_bytes": float(side * side * c * 4),
            }
        )
    times = [2.0 + r["pixels"] / 50 + r["macs_tiled"] / 4000 for r in rows]
    return rows, times


def test_a_cost_per_pixel_and_per_tile_is_fitted_by_the_base() -> None:
    rows, times = _thin_rows(8, np.random.default_rng(3))  # too few for trees: the base alone
    reg = R.fit_regressor("DEPTHWISE_CONV_2D", rows, times)
    assert reg.trees is None and reg.terms == R.LINEAR_TERMS
    assert np.allclose(reg.predict(rows), times, rtol=1e-4)
    # a 4-channel layer at full resolution, thinner than most of what was fitted
    thin = {"macs": 112 * 112 * 4 * 9.0, "macs_tiled": 112 * 112 * 16 * 9.0, "pixels": 112 * 112.0}
    assert reg.predict([thin])[0] == pytest.approx(
        2 + 112 * 112 / 50 + 112 * 112 * 16 * 9 / 4000, rel=1e-3
    )


def test_a_regressor_saved_before_its_terms_were_named_uses_the_old_five() -> None:
    rows, times = _rows(6, np.random.default_rng(4))
    data = json.loads(json.dumps(R.fit_regressor("Conv", rows, times).to_json()))
    assert data["terms"] == list(R.LINEAR_TERMS)
    data.pop("terms")
    data["linear"] = [5.0, 1e-3, 0.0, 2e-3, 0.0, 0.0]  # constant, macs, flops, in, out, weights
    old = R.Regressor.from_json(data)
    assert old.terms == R.LEGACY_TERMS
    expected = [5 + r["macs"] / 1000 + r["in_bytes"] / 500 for r in rows]
    assert np.allclose(old.predict(rows), expected)
