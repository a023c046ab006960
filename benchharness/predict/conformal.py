"""Prediction intervals: split-conformal on kernel models the fit never saw.

A build's kernel models are split into ``FOLDS`` folds; each fold is predicted by a predictor
refitted without it (``predictor.out_of_fold_band``), so every kernel and every kernel model has an
error made the way a new model's is. From those errors, per format:

* **a kernel's interval**: ``time * exp(+-q_key)``, where ``q_key`` is the conformal quantile of
  the out-of-fold ``|log((predicted + 1 us) / (measured + 1 us))|`` of that kernel key (a key
  with fewer than ``MIN_KEY_SCORES`` scores, or one never measured, takes the pooled quantile of
  every kernel of the format);
* **a model's interval**: ``ms * exp(+-model_q * w)``, where ``w`` is the model's own width, its
  kernels' ``q`` weighted by their predicted time (a model whose time sits in kernel types the
  fit predicts badly, or never saw, gets a wider interval), and ``model_q`` the conformal
  quantile of the kernel models' out-of-fold ``|log(predicted / measured)| / w``
  (locally weighted split-conformal).

With ``n`` exchangeable scores the ``ceil((n + 1) * coverage)``-th smallest bounds a new score
with probability >= ``coverage``. The zoo and outside models are not exchangeable with random
kernel models, so the coverage that counts is the one ``bench predictor eval`` measures on them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The nominal coverage of every interval: the issue's 90 %.
COVERAGE = 0.90
#: Folds of kernel models: every score comes from a fit without its model, and five folds cost
#: five refits of a format at build time.
FOLDS = 5
#: A 90 % conformal quantile of fewer than nine scores is infinite: such a key borrows the pooled
#: width of its format.
MIN_KEY_SCORES = 9
#: Smallest log-scale width a model or kernel may have: a width of 0 would make a normalised
#: score infinite (a kernel measured identically in every fold).
MIN_WIDTH = 1e-3
#: Past this log-scale half-width an interval is (0, inf): ``exp`` of more overflows a float.
MAX_LOG_WIDTH = 700.0


def conformal_quantile(scores: Sequence[float], coverage: float = COVERAGE) -> float:
    """The ``ceil((n + 1) * coverage)``-th smallest of ``scores`` (infinite when there are too
    few for that coverage): a new exchangeable score is at most it with probability >= coverage."""
    finite = sorted(s for s in scores if math.isfinite(s))
    k = math.ceil((len(finite) + 1) * coverage)
    if k > len(finite) or k < 1:
        return math.inf
    return finite[k - 1]


@dataclass(frozen=True)
class Band:
    """The widths of one format's intervals, on the log scale."""

    coverage: float
    kernel_q: dict[str, float] = field(default_factory=dict)
    pooled_q: float = math.inf
    model_q: float = math.inf
    kernel_scores: int = 0  # how many out-of-fold kernel errors the widths come from
    model_scores: int = 0  # how many kernel models' out-of-fold errors

    @classmethod
    def fit(
        cls,
        kernel_errors: Mapping[str, Sequence[float]],
        models: Sequence[tuple[float, Sequence[str], Sequence[float]]],
        coverage: float = COVERAGE,
    ) -> Band:
        """``kernel_errors``: per key, the out-of-fold ``|log|`` errors of its kernels;
        ``models``: per kernel model, its out-of-fold ``|log(predicted / measured)|``, its
        kernels' keys and their predicted times (us)."""
        pooled = conformal_quantile([e for errs in kernel_errors.values() for e in errs], coverage)
        kernel_q = {
            key: conformal_quantile(errs, coverage)
            for key, errs in kernel_errors.items()
            if len(errs) >= MIN_KEY_SCORES
        }
        partial = cls(coverage, kernel_q, pooled)
        normalised = [err / partial.width(keys, us) for err, keys, us in models]
        return cls(
            coverage,
            kernel_q,
            pooled,
            conformal_quantile(normalised, coverage),
            sum(len(errs) for errs in kernel_errors.values()),
            len(models),
        )

    def kernel_width(self, key: str) -> float:
        return max(self.kernel_q.get(key, self.pooled_q), MIN_WIDTH)

    def width(self, keys: Sequence[str], us: Sequence[float]) -> float:
        """A model's own log-scale width: its kernels' widths weighted by their time."""
        total = sum(us)
        if total <= 0:
            return self.kernel_width("")
        weighted = sum(t * self.kernel_width(k) for k, t in zip(keys, us, strict=True))
        return max(weighted / total, MIN_WIDTH)

    def kernel_interval(self, key: str, us: float) -> tuple[float, float]:
        return _around(us, self.kernel_width(key))

    def model_interval(
        self, value: float, keys: Sequence[str], us: Sequence[float]
    ) -> tuple[float, float]:
        return _around(value, self.model_q * self.width(keys, us))

    def to_json(self) -> dict[str, Any]:
        return {
            "coverage": self.coverage,
            "kernel_q": dict(self.kernel_q),
            "pooled_q": finite_or_none(self.pooled_q),
            "model_q": finite_or_none(self.model_q),
            "kernel_scores": self.kernel_scores,
            "model_scores": self.model_scores,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Band:
        pooled, model_q = data.get("pooled_q"), data.get("model_q")
        return cls(
            float(data["coverage"]),
            {str(k): float(v) for k, v in data.get("kernel_q", {}).items()},
            math.inf if pooled is None else float(pooled),
            math.inf if model_q is None else float(model_q),
            int(data.get("kernel_scores", 0)),
            int(data.get("model_scores", 0)),
        )


def _around(value: float, q: float) -> tuple[float, float]:
    if not q <= MAX_LOG_WIDTH:  # infinite or NaN too
        return 0.0, math.inf
    return value * math.exp(-q), value * math.exp(q)


def finite_or_none(value: float | None) -> float | None:
    """JSON has no infinity: an unbounded width, or side of an interval, is written as null."""
    return value if value is not None and math.isfinite(value) else None


def log_error(predicted: float, measured: float, offset: float = 0.0) -> float:
    """``|log((predicted + offset) / (measured + offset))|``; infinite where either side is not
    positive after the offset."""
    p, m = predicted + offset, measured + offset
    if p <= 0 or m <= 0:
        return math.inf
    return abs(math.log(p / m))
