"""Per-kernel regressors: scikit-learn gradient boosting, kept as plain arrays in the predictor.

One regressor per kernel key and format: a non-negative linear base (a fixed cost plus time per
MAC, per MAC padded to whole SIMD tiles, per output pixel, per element-wise FLOP and per byte
moved, fitted for relative error), times gradient-boosted trees on the kernel's features
(``predict/features.py``) that learn ``log(time + 1 us)`` minus the base's log. The log makes a
10 % error cost the same on a 5 us ReLU and a 5 ms convolution, the 1 us offset keeps LiteRT's
whole-microsecond zeros finite, and the base makes the model scale sensibly past the largest
configuration measured. A key with too few samples keeps the base alone, and a kernel of a key
never measured falls back to the format's regressor over all samples.

scikit-learn fits the trees; their arrays (feature, threshold, children, leaf values) are stored
and evaluated here with numpy, so a predictor file is JSON, loads in milliseconds with any
scikit-learn version or none, and never unpickles code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchharness.predict.features import columns_of, vector

#: Offset inside the log target (us): LiteRT reports whole microseconds, often 0 for tiny ops.
TARGET_OFFSET_US = 1.0
#: Fewer samples than this and a key keeps its linear base alone, without trees.
MIN_TREE_SAMPLES = 12
#: Gradient boosting settings: shallow trees (interactions of a few features), a modest rate.
N_TREES = 150
TREE_DEPTH = 3
LEARNING_RATE = 0.1
SUBSAMPLE = 0.8
#: Huber loss: a kernel measured while a neighbour loaded the machine is one wild sample among
#: its neighbours; squared error would bend the trees around it.
LOSS = "huber"
#: The key of the fallback regressor of a format.
FALLBACK_KEY = "*"


@dataclass
class Trees:
    """A fitted gradient-boosted ensemble as arrays: ``base + rate * sum(leaf values)``."""

    base: float
    rate: float
    trees: list[dict[str, list[float]]]

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, seed: int = 0) -> Trees:
        from sklearn.ensemble import GradientBoostingRegressor

        model = GradientBoostingRegressor(
            loss=LOSS,
            n_estimators=N_TREES,
            max_depth=TREE_DEPTH,
            learning_rate=LEARNING_RATE,
            subsample=SUBSAMPLE,
            random_state=seed,
        )
        model.fit(x, y)
        trees = []
        for est in model.estimators_[:, 0]:
            t = est.tree_
            trees.append(
                {
                    "feature": t.feature.tolist(),
                    "threshold": t.threshold.tolist(),
                    "left": t.children_left.tolist(),
                    "right": t.children_right.tolist(),
                    "value": t.value[:, 0, 0].tolist(),
                }
            )
        return cls(float(model.init_.constant_[0][0]), float(model.learning_rate), trees)

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = np.full(len(x), self.base)
        rows = np.arange(len(x))
        for t in self.trees:
            feature = np.asarray(t["feature"], dtype=np.int64)
            threshold = np.asarray(t["threshold"])
            left = np.asarray(t["left"], dtype=np.int64)
            right = np.asarray(t["right"], dtype=np.int64)
            node = np.zeros(len(x), dtype=np.int64)
            while True:
                inner = left[node] >= 0
                if not inner.any():
                    break
                f = feature[node]
                go_left = x[rows, np.where(inner, f, 0)] <= threshold[node]
                node = np.where(inner, np.where(go_left, left[node], right[node]), node)
            out += self.rate * np.asarray(t["value"])[node]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "rate": self.rate, "trees": self.trees}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Trees:
        return cls(float(data["base"]), float(data["rate"]), list(data["trees"]))


#: Terms of the linear base of every regressor: a kernel's time is, to first order, a fixed cost
#: plus its compute (as MACs, and as the whole SIMD tiles and pixels it loops over) plus its
#: memory traffic, each at the device's own rate.
LINEAR_TERMS = ("macs", "macs_tiled", "pixels", "flops", "in_bytes", "out_bytes", "weight_bytes")
#: The terms of regressors saved before ``macs_tiled`` and ``pixels``, which stored no names.
LEGACY_TERMS = ("macs", "flops", "in_bytes", "out_bytes", "weight_bytes")


def _terms(rows: Sequence[Mapping[str, float]], terms: Sequence[str] = LINEAR_TERMS) -> np.ndarray:
    return np.array([[1.0, *(float(r.get(t, 0.0)) for t in terms)] for r in rows])


def fit_linear(rows: Sequence[Mapping[str, float]], times_us: np.ndarray) -> list[float]:
    """Non-negative least squares of time on a constant and ``LINEAR_TERMS``, relative errors.

    The base extrapolates the way kernels scale (twice the MACs, about twice the time) where
    trees alone would stay flat beyond the largest configuration they saw.
    """
    from scipy.optimize import nnls

    a = _terms(rows)
    w = 1.0 / np.maximum(times_us, TARGET_OFFSET_US)
    scale = np.maximum(np.abs(a).max(axis=0), 1e-12)  # columns of similar size for the solver
    coef, _ = nnls(a * w[:, None] / scale, times_us * w)
    return [float(c) for c in coef / scale]


@dataclass
class Regressor:
    """One kernel key's model: a linear base, times trees on the log of what the base misses."""

    key: str
    columns: list[str]
    n: int
    linear: list[float] = field(default_factory=list)
    trees: Trees | None = None
    stats: dict[str, float] = field(default_factory=dict)
    terms: tuple[str, ...] = LINEAR_TERMS

    def base(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        if not self.linear:
            return np.zeros(len(rows))
        base: np.ndarray = np.maximum(_terms(rows, self.terms) @ np.asarray(self.linear), 0.0)
        return base

    def predict(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        if not rows:
            return np.zeros(0)
        base = self.base(rows)
        if self.trees is None:
            return base
        x = np.array([vector(r, self.columns) for r in rows], dtype=np.float64)
        ratio = np.exp(self.trees.predict(x))
        out: np.ndarray = np.maximum((base + TARGET_OFFSET_US) * ratio - TARGET_OFFSET_US, 0.0)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "columns": self.columns,
            "n": self.n,
            "linear": self.linear,
            "terms": list(self.terms),
            "trees": self.trees.to_json() if self.trees else None,
            "stats": self.stats,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Regressor:
        trees = data.get("trees")
        terms = tuple(str(t) for t in data.get("terms", LEGACY_TERMS))
        linear = [float(c) for c in data.get("linear", [])]
        return cls(
            key=str(data["key"]),
            columns=list(data["columns"]),
            n=int(data["n"]),
            linear=linear,
            trees=Trees.from_json(trees) if trees else None,
            stats=dict(data.get("stats", {})),
            terms=terms,
        )


def fit_regressor(
    key: str, rows: Sequence[Mapping[str, float]], times_us: Sequence[float], seed: int = 0
) -> Regressor:
    """Fit one key's regressor on its samples (feature rows and times in us)."""
    columns = columns_of(rows)
    t = np.asarray(times_us, dtype=np.float64)
    reg = Regressor(key=key, columns=columns, n=len(rows))
    if len(rows):
        reg.linear = fit_linear(rows, t)
    if len(rows) >= MIN_TREE_SAMPLES:
        x = np.array([vector(r, columns) for r in rows], dtype=np.float64)
        target = np.log(t + TARGET_OFFSET_US) - np.log(reg.base(rows) + TARGET_OFFSET_US)
        reg.trees = Trees.fit(x, target, seed=seed)
    reg.stats = {"median_us": float(np.median(t)) if len(t) else 0.0, "total_us": float(t.sum())}
    return reg


@dataclass
class Sample:
    """One measured kernel: format, key, features, profiled time (us), profile rows, origin."""

    format: str
    key: str
    features: dict[str, float]
    time_us: float
    origin: str
    model: str
    rows: int = 1

    def to_json(self) -> list[Any]:
        return [
            self.format,
            self.key,
            self.features,
            self.time_us,
            self.origin,
            self.model,
            self.rows,
        ]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> Sample:
        fmt, key, features, time_us, origin, model, rows = data
        return cls(
            str(fmt),
            str(key),
            {str(k): float(v) for k, v in features.items()},
            float(time_us),
            str(origin),
            str(model),
            int(rows),
        )


def fit_format(samples: Sequence[Sample], seed: int = 0) -> dict[str, Regressor]:
    """Every key's regressor of one format, plus the fallback over all its samples."""
    by_key: dict[str, list[Sample]] = {}
    for s in samples:
        by_key.setdefault(s.key, []).append(s)
    out = {
        key: fit_regressor(key, [s.features for s in group], [s.time_us for s in group], seed)
        for key, group in sorted(by_key.items())
    }
    if samples:
        generic = [{k: v for k, v in s.features.items() if not k.startswith("m:")} for s in samples]
        out[FALLBACK_KEY] = fit_regressor(FALLBACK_KEY, generic, [s.time_us for s in samples], seed)
    return out


def predict_kernels(
    regressors: Mapping[str, Regressor], keys: Sequence[str], rows: Sequence[Mapping[str, float]]
) -> np.ndarray:
    """Predicted times (us) of kernels, each by its key's regressor (or the fallback)."""
    out = np.zeros(len(keys))
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key if key in regressors else FALLBACK_KEY, []).append(i)
    for key, idx in groups.items():
        reg = regressors.get(key)
        if reg is None:
            continue
        out[idx] = reg.predict([rows[i] for i in idx])
    return out


def relative_errors(predicted: Sequence[float], measured: Sequence[float]) -> np.ndarray:
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    return np.where(m > 0, p / np.where(m > 0, m, 1.0) - 1.0, math.nan)
