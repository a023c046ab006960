"""Where a held-out prediction's error comes from: each kernel type, and the gap outside them.

A measured model's latency ``E`` splits into its measured kernels' labels (profiled time turned by
the calibration into a share of an unprofiled run, as the training labels are:
``Calibration.label``) and the **gap** ``G = E - sum(labels)``, the time outside every kernel,
which the calibration's offset predicts. A prediction is ``P = sum(p_k) + offset``, so

    E - P = sum over kernel types t of (L_t - P_t)  +  (G - offset)

exactly, ``L_t`` and ``P_t`` being the labels and the predictions of the kernels of type ``t``.
A network stage (``network_cal.py``) turns ``P`` into ``P' = f * P``; its part is ``P - P'``, so
the parts still sum to ``E - P'``.
Summed per type, the two sides need not group nodes alike. Each term over ``E`` is that part's
share of the model's error; over the held-out models of a set, the parts with the largest mean
absolute share are where the predictor should get better first (issue 27: the kernel time, the
inter-kernel gaps, or the calibration).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchharness.predict.features import kernel_key
from benchharness.predict.join import measured_kernels
from benchharness.predict.predictor import Calibration, GraphPrediction
from benchharness.predict.wiring import Graph
from benchharness.results.schema import OpRow

#: The part of a model's time outside every kernel (the calibration's offset predicts it).
GAP = "gap outside the kernels"
#: What the network stage (predict/network_cal.py) moved the prediction by: no time of its own.
NETWORK = "network stage"
#: Parts shown by the CLI: the largest mean absolute shares, the rest summed in the JSON.
TOP_PARTS = 8


def model_parts(
    graph: Graph,
    ops: Sequence[OpRow],
    calibration: Calibration,
    prediction: GraphPrediction,
    measured_ms: float,
) -> dict[str, tuple[float, float]]:
    """Per part (kernel type, or ``GAP``): (measured share of ``measured_ms``, error share
    ``(measured - predicted) / measured``); the error shares sum to the model's
    ``(E - P) / E``."""
    e2e_us = measured_ms * 1e3
    if e2e_us <= 0:
        return {}
    kernels, _ = measured_kernels(graph, ops)
    labels: dict[str, float] = {}
    for k in kernels:
        if k.time_us is None or k.rows == 0:
            continue
        key = kernel_key(k, graph.format)
        labels[key] = labels.get(key, 0.0) + calibration.label(k.time_us, k.rows)
    predicted: dict[str, float] = {}
    for p in prediction.kernels:
        predicted[p.key] = predicted.get(p.key, 0.0) + p.us
    out = {}
    for key in sorted(labels.keys() | predicted.keys()):
        label = labels.get(key, 0.0)
        out[key] = (label / e2e_us, (label - predicted.get(key, 0.0)) / e2e_us)
    gap = e2e_us - sum(labels.values())
    out[GAP] = (gap / e2e_us, (gap - calibration.offset_us) / e2e_us)
    if prediction.kernel_ms is not None:
        out[NETWORK] = (0.0, (prediction.kernel_ms - prediction.ms) * 1e3 / e2e_us)
    return out


@dataclass(frozen=True)
class PartError:
    """One part's error over the models of one set and format (shares in percent of latency)."""

    set: str
    format: str
    part: str
    models: int  # models with time in this part, measured or predicted
    time_pct: float  # mean share of the measured latency
    error_pct: float  # mean (measured - predicted) share: > 0, the part is predicted short
    abs_error_pct: float  # mean absolute share: what this part adds to the model's error

    def to_json(self) -> dict[str, Any]:
        return {
            "set": self.set,
            "format": self.format,
            "part": self.part,
            "models": self.models,
            "time_pct": self.time_pct,
            "error_pct": self.error_pct,
            "abs_error_pct": self.abs_error_pct,
        }


def summarize(
    set_name: str, fmt: str, per_model: Iterable[Mapping[str, tuple[float, float]]]
) -> list[PartError]:
    """The parts of one set and format, largest mean absolute error share first (a model
    without a part counts as 0 in its means: the shares are of every model's latency)."""
    models = [m for m in per_model if m]
    parts = sorted({p for m in models for p in m})
    out = []
    for part in parts:
        time = np.array([m.get(part, (0.0, 0.0))[0] for m in models]) * 100
        err = np.array([m.get(part, (0.0, 0.0))[1] for m in models]) * 100
        seen = sum(1 for m in models if part in m)
        out.append(
            PartError(
                set_name,
                fmt,
                part,
                seen,
                float(time.mean()),
                float(err.mean()),
                float(np.abs(err).mean()),
            )
        )
    return sorted(out, key=lambda p: -p.abs_error_pct)
