"""``bench predict``: latency of any model the harness can export, from a predictor, offline.

Models are resolved and exported as ``bench run`` does (zoo names, ``module:function``, model
files; exports come from the cache), their graphs read, and each format predicted by the
predictor of the device. Nothing touches the device: the fingerprint the predictor is checked
against is what this host knows of the device (``device_fingerprint``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from benchharness.api import RunRequest
from benchharness.cost.artifact_cost import GRAPH_FORMATS
from benchharness.errors import HarnessError
from benchharness.export.cache import cache_dir
from benchharness.plan.artifacts import prepare_artifacts
from benchharness.plan.options import RunOptions
from benchharness.predict.build import load_predictor
from benchharness.predict.conformal import finite_or_none
from benchharness.predict.predictor import (
    KernelPrediction,
    Predictor,
    check_fingerprint,
    fingerprint_of_rows,
)
from benchharness.predict.runtime_view import host_cpu_model
from benchharness.predict.wiring import read_graph
from benchharness.profiles.device_profile import DeviceProfile, load_profile
from benchharness.results.store import RunStore, list_runs
from benchharness.zoo.registry import parse_shape, resolve_models
from benchharness.zoo.variants import expand_variants

#: Runtime packages of the python runner on this host, per format.
LOCAL_RUNTIMES = {"onnx": ("onnxruntime", "onnxruntime"), "tflite": ("litert", "ai-edge-litert")}


@dataclass
class ModelPrediction:
    model: str
    format: str
    ms: float | None
    macs: int | None = None
    kernels: list[KernelPrediction] = field(default_factory=list)
    error: str | None = None
    # the prediction interval (predict/conformal.py); None from a predictor file without one
    low_ms: float | None = None
    high_ms: float | None = None
    measured_ms: float | None = None  # the device's median, where --measure-above ran it
    kernels_from: str | None = None  # how the kernels were found (predict/runtime_view.py)
    kernel_ms: float | None = None  # the kernel sum before the network stage (None: no stage)

    @property
    def interval_pct(self) -> float | None:
        """The interval's width as a share of the prediction, in percent ((high - low) / ms)."""
        if self.ms is None or self.ms <= 0 or self.low_ms is None or self.high_ms is None:
            return None
        return (self.high_ms - self.low_ms) / self.ms * 100.0

    def to_json(self, with_kernels: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "format": self.format,
            "predicted_ms": self.ms,
            "low_ms": finite_or_none(self.low_ms),
            "high_ms": finite_or_none(self.high_ms),
            "macs": self.macs,
            "error": self.error,
            "measured_ms": self.measured_ms,
            "kernels_from": self.kernels_from,
            "kernel_sum_ms": self.kernel_ms,
        }
        if with_kernels:
            out["kernels"] = [
                {
                    "key": k.key,
                    "nodes": k.nodes,
                    "us": k.us,
                    "low_us": finite_or_none(k.low_us),
                    "high_us": finite_or_none(k.high_us),
                }
                for k in self.kernels
            ]
        return out


def device_fingerprint(
    profile: DeviceProfile, results_dir: Path, threads: int | None = None
) -> tuple[dict[str, Any], str]:
    """What this host knows of a device without touching it, and where that came from.

    This host: its CPU and the installed runtimes. Another device: the newest run on it in the
    results folder (empty when there is none; then nothing can be checked).
    """
    if profile.transport == "local":
        fp: dict[str, Any] = {
            "device": profile.name,
            "cpu_model": host_cpu_model(),
            "threads": threads or profile.threads or os.cpu_count(),
            "runner": "python",
            "runtimes": {},
        }
        for fmt, (runtime, dist) in LOCAL_RUNTIMES.items():
            try:
                fp["runtimes"][fmt] = {"runtime": runtime, "version": metadata.version(dist)}
            except metadata.PackageNotFoundError:
                continue
        return fp, "this host"
    for run_id in reversed(list_runs(results_dir)):
        try:
            store = RunStore.open(results_dir, run_id)
        except HarnessError:
            continue
        rows = [r for r in store.runs if r.device == profile.name and r.ok]
        if rows:
            fp = fingerprint_of_rows(rows)
            if threads:
                fp["threads"] = threads
            return fp, f"run {run_id}"
    return {"device": profile.name}, "nothing (no run on this device yet)"


@dataclass
class PredictRequest:
    """What ``bench predict`` was asked."""

    models: str  # all | a,b | module:function | model files
    device: str = "local"
    formats: tuple[str, ...] = GRAPH_FORMATS
    input_shape: str | None = None  # e.g. 1x3x160x160, instead of the zoo's
    threads: int | None = None  # threads the models would run with
    predictor: Path | None = None  # None: the device's current predictor
    force: bool = False  # predict although the fingerprints differ
    results_dir: Path = Path("results")
    # a sweep answered by the predictor (zoo/variants.py): every model at each width/side
    resolutions: tuple[int, ...] = ()
    widths: tuple[float, ...] = ()


@dataclass
class DevicePredictions:
    """The predicted latency of models on one device."""

    device: str
    models: list[ModelPrediction]

    def to_json(self, with_kernels: bool = False) -> dict[str, Any]:
        return {
            "device": self.device,
            "predictions": [m.to_json(with_kernels) for m in self.models],
        }


def _ignore(_warning: str) -> None:
    """Where warnings go when the caller gives no ``warn``."""


def predict_on_device(
    req: PredictRequest, warn: Callable[[str], None] = _ignore
) -> DevicePredictions:
    """Check the device's predictor against what this host knows of the device (refused on a
    strict difference unless ``req.force``; ``warn`` gets every difference), then predict."""
    profile = load_profile(req.device)
    predictor = load_predictor(req.results_dir, profile.name, req.predictor)
    current, where = device_fingerprint(profile, req.results_dir, req.threads)
    for warning in check_fingerprint(predictor, current, where, req.formats, req.force):
        warn(warning)
    models = predict_models(
        predictor, req.models, req.formats, req.input_shape, req.resolutions, req.widths
    )
    return DevicePredictions(profile.name, models)


def predict_models(
    predictor: Predictor,
    selection: str,
    formats: Sequence[str],
    input_shape: str | None = None,
    resolutions: Sequence[int] = (),
    widths: Sequence[float] = (),
) -> list[ModelPrediction]:
    """Export (or take from the cache) and predict every model of ``selection`` (each at every
    width and input side of a sweep)."""
    shape = parse_shape(input_shape) if input_shape else None
    refs = expand_variants(
        resolve_models(selection, input_shape=shape), resolutions=resolutions, widths=widths
    )
    artifacts = prepare_artifacts(refs, formats, log_path=cache_dir() / "export.log")
    out: list[ModelPrediction | None] = []
    graphs = []
    for a in artifacts:
        if a.error or a.path is None:
            out.append(ModelPrediction(a.model, a.format, None, error=a.error or "no artifact"))
            continue
        try:
            graphs.append((len(out), a, read_graph(a.path, a.format, a.sha256)))
        except HarnessError as exc:  # an unreadable graph: that model fails, the rest go on
            out.append(
                ModelPrediction(a.model, a.format, None, error=f"{type(exc).__name__}: {exc}")
            )
            continue
        out.append(None)
    usable = [(i, a, g) for i, a, g in graphs if g.format in predictor.formats]
    for i, a, g in graphs:
        if g.format not in predictor.formats:
            out[i] = ModelPrediction(
                a.model, a.format, None, error=f"the predictor has no {a.format} part"
            )
    preds = predictor.predict_graphs([g for _, _, g in usable])
    for (i, a, _), pred in zip(usable, preds, strict=True):
        macs = a.cost.get("macs")
        out[i] = ModelPrediction(
            a.model,
            a.format,
            pred.ms,
            int(macs) if macs is not None else None,
            pred.kernels,
            low_ms=pred.low_ms,
            high_ms=pred.high_ms,
            kernels_from=pred.kernels_from,
            kernel_ms=pred.kernel_ms,
        )
    return [m for m in out if m is not None]


#: Measures a ``bench run`` request and returns its run (the CLI shows its progress).
Measure = Callable[[RunRequest], RunStore]


def wider_than(models: Sequence[ModelPrediction], above_pct: float) -> list[ModelPrediction]:
    """The predictions whose interval is wider than ``above_pct`` % of the prediction, or that
    have no interval (an unbounded one is infinitely wide); failed predictions are never chosen
    (there is nothing to check)."""
    return [
        m
        for m in models
        if m.error is None and (m.interval_pct is None or m.interval_pct > above_pct)
    ]


def measure_uncertain(
    req: PredictRequest,
    result: DevicePredictions,
    above_pct: float,
    measure: Measure,
    options: RunOptions | None = None,
) -> RunStore | None:
    """``bench predict --measure-above``: run on the device, through ``bench run`` (its runner,
    method and run folder), the models whose interval is wider than ``above_pct`` %, and set
    each one's ``measured_ms`` beside its prediction. The run takes whole selections: a sweep's
    other variants of a chosen model are measured too. None when no model was chosen."""
    chosen = wider_than(result.models, above_pct)
    if not chosen:
        return None
    names = {m.model for m in chosen}
    store = measure(
        RunRequest(
            devices=(result.device,),
            models=",".join(_selection_of(req, names)),
            formats=tuple(sorted({m.format for m in chosen})),
            options=options or RunOptions(),
            input_shape=req.input_shape,
            results_dir=req.results_dir,
            resolutions=req.resolutions,
            widths=req.widths,
            force=req.force,
        )
    )
    measured = {(r.model, r.format): r.median_ms for r in store.runs if r.ok}
    for m in chosen:
        m.measured_ms = measured.get((m.model, m.format))
    return store


def _selection_of(req: PredictRequest, names: set[str]) -> list[str]:
    """The items of ``req.models`` (``all`` as its zoo names) whose models, after the sweep,
    include one of ``names``."""
    shape = parse_shape(req.input_shape) if req.input_shape else None
    out: list[str] = []
    for item in (s.strip() for s in req.models.split(",") if s.strip()):
        refs = resolve_models(item, input_shape=shape)
        for ref in refs:
            variants = expand_variants([ref], resolutions=req.resolutions, widths=req.widths)
            if names & {v.name for v in variants}:
                out.append(ref.name if len(refs) > 1 else item)
    return list(dict.fromkeys(out))
