"""The network stage: measured whole networks correct the predicted kernel sum.

A kernel model is a few short chains of blocks; a network is hundreds of kernels in one chain.
What the predicted kernels of a network sum to is not its end-to-end time, in a way that the
kernel models cannot show: on this project's host, held out by family, the zoo's small networks
(< 1 ms) ran 15-40 % faster than their summed kernels and ResNets 5 % slower, on both runtimes
(docs/method.md, "Predicting latency"). Whatever the cause (caches warm from the previous kernel,
thread-pool wake-ups, the profiled pass's own cost), it is a property of whole networks on the
device, so it is learned from whole networks measured there: the zoo's rows of an ordinary
``bench run``.

Each **network point** is a zoo model's end-to-end median next to its kernel sum as the predictor
predicts it **with the model's family held out** (its kernels' regressors refitted without the
layers drawn from that family), which is how a new model's kernel sum is made. The stage is a
line on the log scale, ``log(e2e) = slope * log(kernel sum) + intercept``, so the correction is a
factor that may change with size; outside the kernel sums it was fitted on, the factor at the
nearest end is kept (a power law extrapolated is not evidence). Its interval half-width is the
conformal quantile of its leave-family-out errors (each family's networks corrected by a stage
fitted without them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchharness.predict.conformal import COVERAGE, conformal_quantile, finite_or_none

#: Fewer networks (or families) than these and there is no stage: two coefficients from a handful
#: of points of one family would fit that family, not the device.
MIN_NETWORKS = 6
MIN_FAMILIES = 3
#: A fitted slope outside this range is a symptom (one odd network, a wrong run), not a device:
#: the stage falls back to one factor, the median ratio.
SLOPE_RANGE = (0.7, 1.4)


@dataclass(frozen=True)
class NetworkPoint:
    """One measured network: its end-to-end median and its family-held-out kernel sum."""

    format: str
    model: str
    family: str
    e2e_ms: float
    kernel_ms: float
    run_id: str = ""

    def to_json(self) -> list[Any]:
        return [self.format, self.model, self.family, self.e2e_ms, self.kernel_ms, self.run_id]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> NetworkPoint:
        fmt, model, family, e2e, kernel, run_id = data
        return cls(str(fmt), str(model), str(family), float(e2e), float(kernel), str(run_id))


@dataclass(frozen=True)
class NetworkStage:
    """``ms = kernel_ms * factor(kernel_ms)``, ``log factor = (slope - 1) * log(x) + intercept``
    with ``x`` the kernel sum held inside the fitted range ``[low_ms, high_ms]``."""

    slope: float = 1.0
    intercept: float = 0.0
    low_ms: float = 0.0
    high_ms: float = 0.0
    n: int = 0
    families: int = 0
    q: float = math.inf  # log-scale half-width of its interval (inf: too few families to say)

    @classmethod
    def fit(cls, points: Sequence[NetworkPoint], with_width: bool = True) -> NetworkStage | None:
        """The stage of one format's points; None with too few networks or families."""
        usable = [p for p in points if p.e2e_ms > 0 and p.kernel_ms > 0]
        families = {p.family for p in usable}
        if len(usable) < MIN_NETWORKS or len(families) < MIN_FAMILIES:
            return None
        x = np.log([p.kernel_ms for p in usable])
        y = np.log([p.e2e_ms for p in usable])
        slope, intercept = (float(c) for c in np.polyfit(x, y, 1))
        if not SLOPE_RANGE[0] <= slope <= SLOPE_RANGE[1]:
            slope, intercept = 1.0, float(np.median(y - x))
        stage = cls(
            slope,
            intercept,
            float(np.exp(x.min())),
            float(np.exp(x.max())),
            len(usable),
            len(families),
        )
        if not with_width:
            return stage
        errors = []
        for family in sorted(families):
            rest = NetworkStage.fit([p for p in usable if p.family != family], with_width=False)
            for p in usable:
                if p.family == family:
                    predicted = rest.apply(p.kernel_ms) if rest is not None else p.kernel_ms
                    errors.append(abs(math.log(predicted / p.e2e_ms)))
        return cls(
            stage.slope,
            stage.intercept,
            stage.low_ms,
            stage.high_ms,
            stage.n,
            stage.families,
            conformal_quantile(errors, COVERAGE),
        )

    def factor(self, kernel_ms: float) -> float:
        x = min(max(kernel_ms, self.low_ms), self.high_ms)
        if x <= 0:
            return 1.0
        return math.exp((self.slope - 1.0) * math.log(x) + self.intercept)

    def apply(self, kernel_ms: float) -> float:
        return kernel_ms * self.factor(kernel_ms)

    def interval(self, ms: float) -> tuple[float, float] | None:
        """The stage's own interval around a corrected prediction; None when unbounded."""
        if not math.isfinite(self.q):
            return None
        return ms * math.exp(-self.q), ms * math.exp(self.q)

    def describe(self) -> str:
        """One line for the CLI: the factor at both ends of its range and what it came from."""
        width = f", its own interval x/{math.exp(self.q):.2f}" if math.isfinite(self.q) else ""
        return (
            f"x{self.factor(self.low_ms):.3f} at {self.low_ms:.3g} ms to "
            f"x{self.factor(self.high_ms):.3f} at {self.high_ms:.3g} ms (from {self.n} measured "
            f"networks of {self.families} families{width})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "slope": self.slope,
            "intercept": self.intercept,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "n": self.n,
            "families": self.families,
            "q": finite_or_none(self.q),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkStage:
        q = data.get("q")
        return cls(
            float(data["slope"]),
            float(data["intercept"]),
            float(data["low_ms"]),
            float(data["high_ms"]),
            int(data.get("n", 0)),
            int(data.get("families", 0)),
            math.inf if q is None else float(q),
        )
