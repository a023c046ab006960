"""Latency predictors of a device, built from kernel measurements (docs/method.md, "Predicting
latency").

The public face: build a predictor (``build_predictor``), load it (``load_predictor``,
``Predictor.load``; ``Predictor.save`` writes one), predict models with it offline
(``predict_on_device``) and score it on measured models it never saw (``evaluate_runs``). The
modules hold the parts: ``build`` (rounds of kernel models), ``samples`` (training data from run
folders), ``predictor`` (the fitted model and its file), ``apply`` (``bench predict``),
``evaluate`` and ``eval_runs`` (``bench predictor eval``).

Importing this package imports what its callers (the CLI and the report) need anyway: the build,
which runs ``bench run`` (``benchharness.api``), and the predictor, whose kernel models are torch
modules.
"""

from __future__ import annotations

from benchharness.predict.apply import DevicePredictions, PredictRequest, predict_on_device
from benchharness.predict.build import (
    BuildOutcome,
    BuildRequest,
    build_predictor,
    interrupted_run,
    load_predictor,
    predictor_path,
)
from benchharness.predict.eval_runs import EvalRequest, evaluate_runs
from benchharness.predict.evaluate import METHODS, Evaluation
from benchharness.predict.predictor import Predictor, fingerprint_of_rows
from benchharness.predict.samples import artifact_graph

__all__ = [
    "METHODS",
    "BuildOutcome",
    "BuildRequest",
    "DevicePredictions",
    "EvalRequest",
    "Evaluation",
    "PredictRequest",
    "Predictor",
    "artifact_graph",
    "build_predictor",
    "evaluate_runs",
    "fingerprint_of_rows",
    "interrupted_run",
    "load_predictor",
    "predict_on_device",
    "predictor_path",
]
