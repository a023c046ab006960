"""The predictor: per-format calibration, fusion evidence and kernel regressors, in one JSON file.

A predictor is fitted from a build's measurements (``samples.Measured``) and saved with the
**fingerprint** of what it was measured on (device, CPU, runtime and version per format, threads,
runner, statistic, harness version). It predicts a graph by finding its kernels (read from ONNX
Runtime's optimized graph where this host runs the device's ORT on its CPU, ``runtime_view``;
else inferred from fusion evidence, ``fusion.detect_kernels``), predicting each with its key's
regressor and adding the calibration's per-run offset. Its samples and calibration points are
kept in the file, so an evaluation can refit it without the kernels of one family (``without``).

File format (``FILE_KIND``, ``FILE_VERSION``): JSON, gzip-compressed when the name ends in
``.gz``, written atomically. It is read through its schema (``predict/predictor_file.py``): a
newer ``FILE_VERSION`` is refused with a message saying which harness reads it, and a damaged
file with one naming the field.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchharness.atomic import write_bytes_atomic
from benchharness.errors import PredictorError
from benchharness.predict.conformal import FOLDS, Band, log_error
from benchharness.predict.features import kernel_features, kernel_key, owner_map
from benchharness.predict.fusion import PairResult, detect_kernels
from benchharness.predict.join import Evidence, Kernel
from benchharness.predict.network_cal import NetworkPoint, NetworkStage
from benchharness.predict.predictor_file import (
    FILE_KIND,
    FILE_VERSION,
    check_predictor,
    read_predictor_json,
)
from benchharness.predict.regress import (
    TARGET_OFFSET_US,
    Regressor,
    Sample,
    fit_format,
    predict_kernels,
)
from benchharness.predict.runtime_view import (
    KERNELS_INFERRED,
    KERNELS_READ,
    host_cpu_model,
    host_ort_version,
    ort_view,
    read_kernels,
)
from benchharness.predict.samples import Measured, Point
from benchharness.predict.selection import ORIGIN_PAIR
from benchharness.predict.wiring import Graph
from benchharness.results.schema import RunRow

#: Fewer kernel models than this and the calibration is one ratio, the median of end-to-end over
#: summed kernel times (three coefficients need more points than a handful).
MIN_CALIBRATION_POINTS = 8
#: A fitted scale outside this range is not a calibration but a symptom: refused, the simple one
#: is used instead.
SCALE_RANGE = (0.3, 3.0)
#: Fingerprint fields that must match for a prediction to stand (docs/method.md, "Predicting
#: latency"); the rest only warn.
STRICT_FIELDS = ("device", "cpu_model", "threads", "runner", "runtime_version")
WARN_FIELDS = ("harness_version", "statistic")


@dataclass
class Calibration:
    """``e2e_us = scale * sum(kernel us) + per_row_us * profile rows + offset_us``, fitted on the
    kernel models; kernel labels are the first two terms, the offset is added once per model."""

    scale: float = 1.0
    per_row_us: float = 0.0
    offset_us: float = 0.0
    n: int = 0

    @classmethod
    def fit(cls, points: Sequence[Point]) -> Calibration:
        # Fusion-pair models are left out: one or two operators in a ~5 us run, whose profiled
        # time is mostly the profiler's cost per operator (5-8x their end-to-end on LiteRT), and
        # under relative-error weights a dozen of them outweighed every kernel model.
        points = [p for p in points if p.origin != ORIGIN_PAIR]
        if not points:
            return cls()
        e2e = np.array([p.e2e_us for p in points])
        s = np.array([p.sum_us for p in points])
        ratios = e2e[s > 0] / s[s > 0]
        simple = cls(float(np.median(ratios)) if len(ratios) else 1.0, 0.0, 0.0, len(points))
        if len(points) < MIN_CALIBRATION_POINTS:
            return simple
        rows = np.array([p.rows for p in points], dtype=np.float64)
        w = 1.0 / np.maximum(e2e, 1.0)  # relative errors: a 0.1 ms model counts as a 10 ms one
        x = np.column_stack([s, rows, np.ones_like(s)]) * w[:, None]
        coef, *_ = np.linalg.lstsq(x, e2e * w, rcond=None)
        scale, per_row, offset = (float(c) for c in coef)
        if offset < 0:
            # a run costs at least nothing beyond its operators: a negative offset is the rows
            # term and the constant trading off, so the fit is redone through zero
            coef, *_ = np.linalg.lstsq(x[:, :2], e2e * w, rcond=None)
            scale, per_row, offset = float(coef[0]), float(coef[1]), 0.0
        if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
            return simple
        return cls(scale, per_row, offset, len(points))

    def label(self, time_us: float, rows: int) -> float:
        """A kernel's profiled time as its share of an unprofiled run."""
        return max(0.0, self.scale * time_us + self.per_row_us * rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "per_row_us": self.per_row_us,
            "offset_us": self.offset_us,
            "n": self.n,
        }


@dataclass
class FormatModel:
    """Everything the predictor knows of one format on its device."""

    calibration: Calibration
    evidence: Evidence
    regressors: dict[str, Regressor]
    pairs: list[PairResult] = field(default_factory=list)
    band: Band | None = None  # None: too few kernel models, or a file written before intervals
    network: NetworkStage | None = None  # None: no measured networks (network_cal.py)


@dataclass
class KernelPrediction:
    key: str
    nodes: list[str]
    us: float
    low_us: float | None = None  # the interval (predict/conformal.py); None without a band
    high_us: float | None = None


@dataclass
class GraphPrediction:
    format: str
    ms: float
    kernels: list[KernelPrediction]
    low_ms: float | None = None
    high_ms: float | None = None
    kernels_from: str = KERNELS_INFERRED  # runtime_view: how the kernels were found
    kernel_ms: float | None = None  # the kernel sum before the network stage (None: no stage)


def fit_formats(
    samples: Sequence[Sample],
    points: Sequence[Point],
    evidence: Mapping[str, Evidence],
    pairs: Sequence[PairResult] = (),
    seed: int = 0,
    networks: Sequence[NetworkPoint] = (),
    with_band: bool = True,
) -> dict[str, FormatModel]:
    """Calibrate, relabel and fit the regressors of every format the samples hold, and the
    network stage of every format with measured networks; ``with_band=False`` skips the
    intervals' five refits (a fold that only predicts kernel sums needs none)."""
    out = {}
    for fmt in sorted({s.format for s in samples} | {p.format for p in points}):
        my_points = [p for p in points if p.format == fmt]
        cal = Calibration.fit(my_points)
        mine = [s for s in samples if s.format == fmt]
        out[fmt] = FormatModel(
            calibration=cal,
            evidence=evidence.get(fmt, Evidence()),
            regressors=fit_format(_labelled(mine, cal), seed),
            pairs=[p for p in pairs if p.format == fmt],
            band=out_of_fold_band(mine, my_points, seed) if with_band else None,
            network=NetworkStage.fit([n for n in networks if n.format == fmt]),
        )
    return out


def _labelled(samples: Sequence[Sample], cal: Calibration) -> list[Sample]:
    """``samples`` with their profiled times turned into shares of an unprofiled run."""
    return [
        Sample(s.format, s.key, s.features, cal.label(s.time_us, s.rows), s.origin, s.model, s.rows)
        for s in samples
    ]


def out_of_fold_band(
    samples: Sequence[Sample], points: Sequence[Point], seed: int = 0
) -> Band | None:
    """One format's interval widths: its kernel models in ``FOLDS`` folds, each predicted by a
    calibration and regressors fitted without it (predict/conformal.py); None with fewer kernel
    models than folds. Fusion-pair models train every fold but are never scored (the
    calibration leaves them out for the same reason)."""
    by_model: dict[str, list[Sample]] = {}
    for s in samples:
        by_model.setdefault(s.model, []).append(s)
    point_of = {p.model: p for p in points if p.origin != ORIGIN_PAIR and p.model in by_model}
    scored = sorted(point_of)
    if len(scored) < FOLDS:
        return None
    order = np.random.default_rng(seed).permutation(len(scored))
    kernel_errors: dict[str, list[float]] = {}
    models: list[tuple[float, list[str], list[float]]] = []
    for fold in np.array_split(order, FOLDS):
        held = {scored[i] for i in fold}
        cal = Calibration.fit([p for p in points if p.model not in held])
        regressors = fit_format(_labelled([s for s in samples if s.model not in held], cal), seed)
        for name in sorted(held):
            mine = by_model[name]
            keys = [s.key for s in mine]
            us = [float(t) for t in predict_kernels(regressors, keys, [s.features for s in mine])]
            for s, t in zip(mine, us, strict=True):
                measured = cal.label(s.time_us, s.rows)
                kernel_errors.setdefault(s.key, []).append(log_error(t, measured, TARGET_OFFSET_US))
            total = sum(us) + cal.offset_us
            models.append((log_error(total, point_of[name].e2e_us), keys, us))
    return Band.fit(kernel_errors, models)


def _network_stage(pred: GraphPrediction, stage: NetworkStage) -> None:
    """``pred`` through the network stage: its total scaled by the stage's factor, and its
    interval the union of the kernels' (scaled alike) and the stage's own, so it is at least as
    wide as each of the two ways the prediction can be wrong."""
    factor = stage.factor(pred.ms)
    pred.kernel_ms = pred.ms
    pred.ms = pred.ms * factor
    bounds = []
    if pred.low_ms is not None and pred.high_ms is not None:
        bounds.append((pred.low_ms * factor, pred.high_ms * factor))
    own = stage.interval(pred.ms)
    if own is not None:
        bounds.append(own)
    if bounds:
        pred.low_ms = min(b[0] for b in bounds)
        pred.high_ms = max(b[1] for b in bounds)


@dataclass
class Predictor:
    fingerprint: dict[str, Any]
    formats: dict[str, FormatModel]
    samples: list[Sample] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    build: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    networks: list[NetworkPoint] = field(default_factory=list)  # the network stage's data

    @classmethod
    def fit(
        cls,
        measured: Measured,
        fingerprint: dict[str, Any],
        pairs: Sequence[PairResult] = (),
        build: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> Predictor:
        if not measured.samples:
            raise PredictorError(
                "the build's runs hold no kernel measurements with operator profiles; "
                "were they run with --no-ops, or did every job fail?"
            )
        formats = fit_formats(measured.samples, measured.points, measured.evidence, pairs, seed)
        return cls(
            fingerprint,
            formats,
            list(measured.samples),
            list(measured.points),
            dict(build or {}),
            seed,
        )

    def without(
        self,
        origins: Iterable[str],
        formats: Iterable[str] | None = None,
        with_band: bool = True,
    ) -> Predictor:
        """The same predictor refitted without the kernels drawn from ``origins`` (zoo
        families) and without those families' networks in its network stage."""
        drop = set(origins)
        keep = set(formats) if formats is not None else set(self.formats)
        samples = [s for s in self.samples if s.origin not in drop and s.format in keep]
        points = [p for p in self.points if p.origin not in drop and p.format in keep]
        networks = [n for n in self.networks if n.family not in drop and n.format in keep]
        evidence = {fmt: m.evidence for fmt, m in self.formats.items()}
        pairs = [p for m in self.formats.values() for p in m.pairs]
        formats = fit_formats(
            samples, points, evidence, pairs, self.seed, networks, with_band=with_band
        )
        return Predictor(
            self.fingerprint, formats, samples, points, self.build, self.seed, networks
        )

    def with_networks(self, networks: Sequence[NetworkPoint]) -> Predictor:
        """This predictor with its network stage fitted on ``networks`` (kernels unchanged)."""
        formats = {
            fmt: dataclasses.replace(
                m, network=NetworkStage.fit([n for n in networks if n.format == fmt])
            )
            for fmt, m in self.formats.items()
        }
        return dataclasses.replace(self, formats=formats, networks=list(networks))

    # --- predicting ---------------------------------------------------------------------------

    def predict_graph(self, graph: Graph, infer: bool = False) -> GraphPrediction:
        return self.predict_graphs([graph], infer)[0]

    def reads_runtime_graph(self, fmt: str) -> bool:
        """Whether this host's runtime runs ``fmt`` graphs as the device does (runtime_view): ONNX
        Runtime of the predictor's version on the predictor's CPU."""
        if fmt != "onnx":
            return False
        runtime = (self.fingerprint.get("runtimes") or {}).get(fmt) or {}
        version = host_ort_version()
        cpu = self.fingerprint.get("cpu_model")
        return (
            runtime.get("runtime") == "onnxruntime"
            and version is not None
            and runtime.get("version") == version
            and bool(cpu)
            and cpu == host_cpu_model()
        )

    def _kernels(self, graph: Graph, model: FormatModel, infer: bool) -> tuple[list[Kernel], str]:
        if not infer and graph.path is not None and self.reads_runtime_graph(graph.format):
            view = ort_view(graph.path)
            if view is not None:
                return read_kernels(graph, view), KERNELS_READ
        return detect_kernels(graph, model.evidence), KERNELS_INFERRED

    def predict_graphs(self, graphs: Sequence[Graph], infer: bool = False) -> list[GraphPrediction]:
        """Predictions of several graphs, each kernel type's regressor called once for all;
        ``infer`` infers the kernels from fusion evidence even where the runtime's graph could be
        read (the evaluation compares the two)."""
        detected = []
        sources = []
        for graph in graphs:
            model = self.formats.get(graph.format)
            if model is None:
                known = ", ".join(sorted(self.formats)) or "none"
                raise PredictorError(
                    f"this predictor was built for the formats {known}, not {graph.format}; "
                    f"build one with `bench predictor build --formats {graph.format}`"
                )
            kernels, source = self._kernels(graph, model, infer)
            sources.append(source)
            owner = owner_map(kernels)
            keys = [kernel_key(k, graph.format) for k in kernels]
            rows = [kernel_features(k, graph, owner) for k in kernels]
            detected.append((graph, kernels, keys, rows))
        times: list[np.ndarray] = [np.zeros(0)] * len(graphs)
        for fmt in {g.format for g in graphs}:
            mine = [i for i, d in enumerate(detected) if d[0].format == fmt]
            keys = [k for i in mine for k in detected[i][2]]
            rows = [r for i in mine for r in detected[i][3]]
            flat = predict_kernels(self.formats[fmt].regressors, keys, rows)
            start = 0
            for i in mine:
                n = len(detected[i][2])
                times[i] = flat[start : start + n]
                start += n
        out = []
        for (graph, kernels, keys, _), us, source in zip(detected, times, sources, strict=True):
            model = self.formats[graph.format]
            preds = [
                KernelPrediction(key, [n.name for n in k.nodes], float(t))
                for key, k, t in zip(keys, kernels, us, strict=True)
            ]
            kernel_ms = max(float(us.sum()) + model.calibration.offset_us, 0.0) / 1e3
            pred = GraphPrediction(graph.format, kernel_ms, preds, kernels_from=source)
            if model.band is not None:
                for p in preds:
                    p.low_us, p.high_us = model.band.kernel_interval(p.key, p.us)
                pred.low_ms, pred.high_ms = model.band.model_interval(
                    kernel_ms, keys, [float(t) for t in us]
                )
            if model.network is not None:
                _network_stage(pred, model.network)
            out.append(pred)
        return out

    # --- fingerprint --------------------------------------------------------------------------

    def differences(self, other: Mapping[str, Any], fmt: str | None = None) -> list[str]:
        """Fingerprint fields that differ from ``other`` (strict ones first), as sentences."""
        out = []
        mine = flat_fingerprint(self.fingerprint, fmt)
        theirs = flat_fingerprint(other, fmt)
        for name in (*STRICT_FIELDS, *WARN_FIELDS):
            a, b = mine.get(name), theirs.get(name)
            if a is not None and b is not None and str(a) != str(b):
                out.append(f"{name}: predictor {a}, now {b}")
        return out

    def strict_differences(self, other: Mapping[str, Any], fmt: str | None = None) -> list[str]:
        return [d for d in self.differences(other, fmt) if d.split(":")[0] in STRICT_FIELDS]

    # --- file ---------------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        """What ``bench predictor show`` shows: fingerprint, build record and, per format, the
        calibration, the kernel types (with their sample counts) and the fusion findings."""
        return {
            "fingerprint": self.fingerprint,
            "build": self.build,
            "formats": {
                f: {
                    "calibration": m.calibration.to_json(),
                    "network_stage": m.network.to_json() if m.network is not None else None,
                    "kernel_types": {k: r.n for k, r in m.regressors.items()},
                    "pairs": [r.to_json() for r in m.pairs],
                    "fusion_rules": m.evidence.to_json(),
                }
                for f, m in self.formats.items()
            },
        }

    def to_json(self) -> dict[str, Any]:
        from benchharness import __version__

        return {
            "kind": FILE_KIND,
            "version": FILE_VERSION,
            "harness_version": __version__,
            "fingerprint": self.fingerprint,
            "build": self.build,
            "seed": self.seed,
            "formats": {
                fmt: {
                    "calibration": m.calibration.to_json(),
                    "evidence": m.evidence.to_json(),
                    "pairs": [p.to_json() for p in m.pairs],
                    "regressors": {k: r.to_json() for k, r in m.regressors.items()},
                    **({"band": m.band.to_json()} if m.band is not None else {}),
                    **({"network": m.network.to_json()} if m.network is not None else {}),
                }
                for fmt, m in self.formats.items()
            },
            "samples": [s.to_json() for s in self.samples],
            "points": [p.to_json() for p in self.points],
            "networks": [n.to_json() for n in self.networks],
        }

    def save(self, path: Path) -> None:
        """Write the predictor to ``path`` (gzip when it ends in ``.gz``) atomically: a reader
        sees the old file or the new one, never half of one; PredictorError if it cannot."""
        try:
            text = json.dumps(self.to_json(), separators=(",", ":"), allow_nan=False)
        except ValueError as exc:  # NaN or infinity: the file would not load back
            raise PredictorError(f"cannot write the predictor {path}: {exc}") from exc
        data = text.encode("utf-8")
        if path.suffix == ".gz":
            data = gzip.compress(data)
        try:
            write_bytes_atomic(path, data)
        except OSError as exc:
            raise PredictorError(
                f"cannot write the predictor {path}: {exc.strerror or exc}"
            ) from exc

    @classmethod
    def load(cls, path: Path) -> Predictor:
        """The predictor in ``path``; PredictorError naming the file (and the field) if it is
        missing, too large, damaged or of a newer version."""
        return cls._from_json(check_predictor(read_predictor_json(path), path))

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> Predictor:
        """The predictor of a file's JSON that ``check_predictor`` passed (so nothing here
        can meet a missing field or a wrong type)."""
        formats = {}
        for fmt, m in data["formats"].items():
            cal = m["calibration"]
            pairs = [
                PairResult(
                    p["format"],
                    p["first"],
                    p["second"],
                    float(p["t1_us"]),
                    float(p["t2_us"]),
                    float(p["t12_us"]),
                )
                for p in m["pairs"]
            ]
            formats[fmt] = FormatModel(
                calibration=Calibration(
                    float(cal["scale"]),
                    float(cal["per_row_us"]),
                    float(cal["offset_us"]),
                    int(cal.get("n", 0)),
                ),
                evidence=Evidence.from_json(m["evidence"]),
                regressors={k: Regressor.from_json(r) for k, r in m["regressors"].items()},
                pairs=pairs,
                band=Band.from_json(m["band"]) if "band" in m else None,
                network=NetworkStage.from_json(m["network"]) if "network" in m else None,
            )
        return cls(
            fingerprint=dict(data["fingerprint"]),
            formats=formats,
            samples=[Sample.from_json(s) for s in data.get("samples", [])],
            points=[Point.from_json(p) for p in data.get("points", [])],
            build=dict(data.get("build", {})),
            seed=int(data.get("seed", 0)),
            networks=[NetworkPoint.from_json(n) for n in data.get("networks", [])],
        )


def flat_fingerprint(fp: Mapping[str, Any], fmt: str | None) -> dict[str, Any]:
    """A fingerprint's fields with the runtime version of ``fmt`` (all formats' when None)."""
    flat = {k: v for k, v in fp.items() if k != "runtimes"}
    runtimes = fp.get("runtimes") or {}
    if fmt is not None and fmt in runtimes:
        r = runtimes[fmt]
        flat["runtime_version"] = f"{r.get('runtime')} {r.get('version')}"
    elif fmt is None and runtimes:
        flat["runtime_version"] = ", ".join(
            f"{f}: {r.get('runtime')} {r.get('version')}" for f, r in sorted(runtimes.items())
        )
    return flat


def fingerprint_of_rows(rows: Iterable[RunRow]) -> dict[str, Any]:
    """The fingerprint of the ``ok`` runs.csv rows of one device (the first row of each format)."""
    fp: dict[str, Any] = {"runtimes": {}}
    for row in rows:
        if not row.ok:
            continue
        fp.setdefault("device", row.device)
        fp.setdefault("cpu_model", row.cpu_model)
        fp.setdefault("threads", row.threads)
        fp.setdefault("harness_version", row.harness_version)
        fp.setdefault("runner", runner_of(row))
        fp.setdefault("statistic", "median")
        fp["runtimes"].setdefault(
            row.format, {"runtime": row.runtime, "version": row.runtime_version}
        )
    return fp


def runner_of(row: RunRow) -> str:
    """Which runner produced a row: the python runner (samples) or a native tool."""
    source = row.stats_source or "samples"
    return "python" if source == "samples" else f"native ({source})"


def check_fingerprint(
    predictor: Predictor,
    current: Mapping[str, Any],
    where: str,
    formats: Iterable[str],
    force: bool = False,
) -> list[str]:
    """Refuse a predictor built on another setup than ``current`` (``where`` says what that is),
    unless ``force``; returns a warning per difference (with ``force``, the strict ones too)."""
    strict: list[str] = []
    soft: list[str] = []
    for f in formats:
        strict += [d for d in predictor.strict_differences(current, f) if d not in strict]
        soft += [d for d in predictor.differences(current, f) if d not in strict + soft]
    if strict and not force:
        raise PredictorError(
            f"the predictor was built on another setup than the device now ({where}): "
            f"{'; '.join(strict)}. Build a predictor for it (`bench predictor build`), or pass "
            "--force to predict anyway"
        )
    return [f"predictor fingerprint differs ({where}): {d}" for d in strict + soft]
