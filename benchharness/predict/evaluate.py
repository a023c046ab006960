"""``bench predictor eval``: the predictor on models it never saw, next to the MACs lines.

* **Zoo, leave one family out**: each zoo model is predicted by the predictor refitted without the
  kernels drawn from its family's layers (``Predictor.without``); random, refinement and pair
  kernels stay, as they were drawn without looking at any zoo model.
* **Outside models** (``module:function``, not in the zoo): predicted by the whole predictor.

Where the predictor reads a model's kernels from ONNX Runtime's optimized graph
(``predict/runtime_view.py``), the same fold also predicts it with kernels inferred from fusion
evidence (``PREDICTOR_INFERRED``): what reading the runtime's graph is worth, on the same models.
Where the predictor has a network stage (``predict/network_cal.py``), its kernel sum before the
stage is scored too (``PREDICTOR_KERNEL_SUM``): what the stage is worth. A zoo model's fold
refits the stage without its family's networks as well. Where a measured model has its operator
profile and its row no ``UNRELIABLE_FLAGS``, its error is
split into kernel types and the gap outside them (``predict/error_parts.py``). Each measured
model keeps its run's own 99 % interval of the median, so the scores also say how many
measurements resolve +-10 % at all, and how the predictor does on those (``metrics.resolves``).

Next to it, on the same models, four FLOPs predictors: latency as a line on MACs and as a plane
on MACs and bytes moved, fitted (a) on the kernel models the predictor learned from (its very
data, the fold's held-out family left out the same way) and (b) on the measured zoo models of the
other families (for outside models: on the whole zoo). Measured latencies come from ordinary
``bench run`` folders.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchharness.errors import CostError, PredictorError
from benchharness.predict.census import family_of
from benchharness.predict.conformal import finite_or_none
from benchharness.predict.error_parts import PartError, model_parts, summarize
from benchharness.predict.metrics import LinearFit, Scores, coverage, scores
from benchharness.predict.predictor import Predictor
from benchharness.predict.runtime_view import KERNELS_READ
from benchharness.predict.samples import UNRELIABLE_FLAGS, artifact_graph, graph_bytes
from benchharness.predict.wiring import Graph
from benchharness.results.schema import OpRow, RunRow

#: The methods compared, in the order tables show them.
PREDICTOR = "predictor"
PREDICTOR_INFERRED = "predictor, kernels inferred"
PREDICTOR_KERNEL_SUM = "predictor, no network stage"
MACS_KERNELS = "MACs line, kernel models"
MACS_BYTES_KERNELS = "MACs+bytes, kernel models"
MACS_ZOO = "MACs line, other zoo families"
MACS_BYTES_ZOO = "MACs+bytes, other zoo families"
METHODS = (
    PREDICTOR,
    PREDICTOR_INFERRED,
    PREDICTOR_KERNEL_SUM,
    MACS_KERNELS,
    MACS_BYTES_KERNELS,
    MACS_ZOO,
    MACS_BYTES_ZOO,
)
#: The two model sets of an evaluation.
ZOO = "zoo, family held out"
OUTSIDE = "outside models"


@dataclass
class ModelResult:
    model: str
    family: str
    set: str
    format: str
    measured_ms: float
    macs: int
    bytes: int
    predicted_ms: dict[str, float] = field(default_factory=dict)
    # the predictor's interval (predict/conformal.py), from the same fold as its prediction
    low_ms: float | None = None
    high_ms: float | None = None
    kernels_from: str | None = None  # how the predictor found the kernels (runtime_view)
    # part -> (share of the measured latency, error share), where the profile was measured
    parts: dict[str, tuple[float, float]] = field(default_factory=dict)
    # the measurement's own 99 % interval of its median (the run's), for metrics.resolves
    measured_low_ms: float | None = None
    measured_high_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "set": self.set,
            "format": self.format,
            "measured_ms": self.measured_ms,
            "macs": self.macs,
            "bytes": self.bytes,
            "predicted_ms": self.predicted_ms,
            "low_ms": finite_or_none(self.low_ms),
            "high_ms": finite_or_none(self.high_ms),
            "kernels_from": self.kernels_from,
            "parts": {k: list(v) for k, v in self.parts.items()},
            "measured_low_ms": finite_or_none(self.measured_low_ms),
            "measured_high_ms": finite_or_none(self.measured_high_ms),
        }


@dataclass
class Evaluation:
    models: list[ModelResult]
    scores: dict[tuple[str, str, str], Scores]  # (set, format, method)
    skipped: list[str] = field(default_factory=list)
    parts: list[PartError] = field(default_factory=list)  # error per part, per set and format

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [m.to_json() for m in self.models],
            "scores": [
                {"set": s, "format": f, "method": m, **sc.to_json()}
                for (s, f, m), sc in self.scores.items()
            ],
            "skipped": self.skipped,
            "parts": [p.to_json() for p in self.parts],
        }


def _fit_line(inputs: tuple[str, ...], rows: Sequence[tuple[float, float, float]]) -> LinearFit:
    """``rows`` = (macs, bytes, latency ms)."""
    x = np.array(
        [[r[0] for r in rows]]
        if inputs == ("macs",)
        else [[r[0] for r in rows], [r[1] for r in rows]]
    ).T
    if not rows:
        x = np.zeros((0, len(inputs)))
    return LinearFit.fit(inputs, x, np.array([r[2] for r in rows]))


def _line_predict(fit: LinearFit, macs: float, nbytes: float) -> float:
    x = [macs] if fit.inputs == ("macs",) else [macs, nbytes]
    return float(fit.predict(np.array([x]))[0])


def evaluate(
    predictor: Predictor,
    rows: Iterable[RunRow],
    zoo_names: Iterable[str],
    outside_names: Iterable[str] = (),
    formats: Sequence[str] | None = None,
    graph_of: Callable[[RunRow], Graph] = artifact_graph,
    ops_of: Callable[[RunRow], Sequence[OpRow]] | None = None,
) -> Evaluation:
    """Score the predictor and the MACs lines on the measured ``ok`` rows of zoo/outside models;
    ``ops_of`` gives a row's operator profile (in profile order), for the error's parts."""
    zoo = set(zoo_names)
    outside = set(outside_names) - zoo
    wanted = set(formats) if formats else set(predictor.formats)
    measured = _measured_models(predictor, rows, zoo, outside, wanted, graph_of, ops_of)
    if not measured.results:
        raise PredictorError(
            "no measured zoo or outside model to evaluate on: give a run of them with --run, "
            "or let eval measure them"
        )
    _predict(predictor, measured)
    parts = [
        part
        for s in (ZOO, OUTSIDE)
        for fmt in sorted({r.format for r in measured.results})
        for part in summarize(
            s, fmt, [r.parts for r in measured.results if r.set == s and r.format == fmt]
        )
    ]
    return Evaluation(measured.results, _score_table(measured.results), measured.skipped, parts)


@dataclass
class _Measured:
    """The models an evaluation is scored on, their graphs, and the rows it could not use."""

    results: list[ModelResult] = field(default_factory=list)
    graphs: dict[tuple[str, str], Graph] = field(default_factory=dict)  # (model, format)
    ops: dict[tuple[str, str], Sequence[OpRow]] = field(default_factory=dict)  # where measured
    skipped: list[str] = field(default_factory=list)


def _measured_models(
    predictor: Predictor,
    rows: Iterable[RunRow],
    zoo: set[str],
    outside: set[str],
    wanted: set[str],
    graph_of: Callable[[RunRow], Graph],
    ops_of: Callable[[RunRow], Sequence[OpRow]] | None = None,
) -> _Measured:
    """The most precise ``ok`` row of each wanted zoo/outside model and format (``_tightest``),
    with its graph."""
    out = _Measured()
    for row in _tightest(rows):
        model, fmt = row.model, row.format
        if not row.ok or fmt not in wanted or (model, fmt) in out.graphs:
            continue
        if not row.runs_its_model:
            out.skipped.append(f"{model} {fmt}: GRAPH_FOLDED, its graph runs less than the model")
            continue
        if model not in zoo and model not in outside:
            continue
        if fmt not in predictor.formats:
            out.skipped.append(f"{model} {fmt}: the predictor has no {fmt} part")
            continue
        if row.median_ms is None:
            out.skipped.append(f"{model} {fmt}: the row has no median")
            continue
        try:
            graph = graph_of(row)
        except CostError as exc:
            out.skipped.append(f"{model} {fmt}: {exc}")
            continue
        out.graphs[(model, fmt)] = graph
        ops = ops_of(row) if ops_of is not None else ()
        unsteady = ", ".join(sorted(UNRELIABLE_FLAGS.intersection(row.flag_list)))
        if ops and unsteady:
            # its operators were not timed at the speed of its median: a split would put the
            # profiler's distortion into the gap
            out.skipped.append(f"{model} {fmt}: flagged {unsteady}, not in the error's parts")
        elif ops:
            out.ops[(model, fmt)] = ops
        out.results.append(
            ModelResult(
                model,
                family_of(model, row.source or ""),
                ZOO if model in zoo else OUTSIDE,
                fmt,
                row.median_ms,
                row.macs or sum(n.cost.macs for n in graph.nodes),
                graph_bytes(graph),
                measured_low_ms=row.ci99_low_ms,
                measured_high_ms=row.ci99_high_ms,
            )
        )
    return out


def _relative_width(row: RunRow) -> float:
    """A row's own 99 % interval as a share of its median; infinite without one."""
    low, high, median = row.ci99_low_ms, row.ci99_high_ms, row.median_ms
    if low is None or high is None or median is None or not median > 0:
        return math.inf
    width = (high - low) / median
    return width if math.isfinite(width) else math.inf


def _tightest(rows: Iterable[RunRow]) -> list[RunRow]:
    """``rows`` with the ``ok`` rows of each model and format in order of their own interval's
    width, narrowest first (stable: equal ones keep their order), so that where several runs
    measured a model the evaluation scores against the most precise measurement. The choice
    looks at the measurements alone, never at a prediction."""
    listed = list(rows)
    first: dict[tuple[str, str], int] = {}
    for i, r in enumerate(listed):
        first.setdefault((r.model, r.format), i)
    return sorted(
        listed,
        key=lambda r: (
            first[(r.model, r.format)],  # models stay in the order the runs list them
            not r.ok,
            _relative_width(r),
        ),
    )


def _predict(predictor: Predictor, measured: _Measured) -> None:
    """Every model's prediction by the predictor (its family's fold for a zoo model) and by the
    four MACs lines, into ``predicted_ms``."""
    folds: dict[tuple[str, str], Predictor] = {}
    for r in measured.results:
        held_out = r.family if r.set == ZOO else None
        key = (held_out or "", r.format)
        if key not in folds:
            folds[key] = predictor.without([held_out], [r.format]) if held_out else predictor
        graph = measured.graphs[(r.model, r.format)]
        pred = folds[key].predict_graph(graph)
        r.predicted_ms[PREDICTOR] = pred.ms
        r.low_ms, r.high_ms = pred.low_ms, pred.high_ms
        r.kernels_from = pred.kernels_from
        if pred.kernels_from == KERNELS_READ:
            r.predicted_ms[PREDICTOR_INFERRED] = folds[key].predict_graph(graph, infer=True).ms
        if pred.kernel_ms is not None:
            r.predicted_ms[PREDICTOR_KERNEL_SUM] = pred.kernel_ms
        ops = measured.ops.get((r.model, r.format))
        if ops:
            calibration = folds[key].formats[r.format].calibration
            r.parts = model_parts(graph, ops, calibration, pred, r.measured_ms)
        r.predicted_ms.update(_line_predictions(predictor, measured.results, r, held_out))


def _line_predictions(
    predictor: Predictor, results: Sequence[ModelResult], r: ModelResult, held_out: str | None
) -> dict[str, float]:
    """``r`` by the MACs lines fitted on the kernel models (its family's left out) and on the
    other zoo families; NaN where a line has nothing to be fitted on."""
    kernel_rows = [
        (p.macs, p.bytes, p.e2e_us / 1e3)
        for p in predictor.points
        if p.format == r.format and p.origin != held_out
    ]
    zoo_rows = [
        (o.macs, o.bytes, o.measured_ms)
        for o in results
        if o.set == ZOO and o.format == r.format and o.family != r.family
    ]
    out: dict[str, float] = {}
    for name, inputs, train in (
        (MACS_KERNELS, ("macs",), kernel_rows),
        (MACS_BYTES_KERNELS, ("macs", "bytes"), kernel_rows),
        (MACS_ZOO, ("macs",), zoo_rows),
        (MACS_BYTES_ZOO, ("macs", "bytes"), zoo_rows),
    ):
        out[name] = _line_predict(_fit_line(inputs, train), r.macs, r.bytes) if train else math.nan
    return out


def _score_table(results: Sequence[ModelResult]) -> dict[tuple[str, str, str], Scores]:
    """Scores per (model set, format, method), for every set and format that has models."""
    table: dict[tuple[str, str, str], Scores] = {}
    for s in (ZOO, OUTSIDE):
        for fmt in sorted({r.format for r in results}):
            chosen = [r for r in results if r.set == s and r.format == fmt]
            if not chosen:
                continue
            for method in METHODS:
                if method in (PREDICTOR_INFERRED, PREDICTOR_KERNEL_SUM) and not any(
                    method in r.predicted_ms for r in chosen
                ):
                    continue  # no kernels read, or no network stage: the predictor's line again
                table[(s, fmt, method)] = scores(
                    [r.predicted_ms.get(method, math.nan) for r in chosen],
                    [r.measured_ms for r in chosen],
                    [(r.measured_low_ms, r.measured_high_ms) for r in chosen],
                )
            table[(s, fmt, PREDICTOR)] = dataclasses.replace(
                table[(s, fmt, PREDICTOR)],
                coverage=coverage(
                    [(r.low_ms, r.high_ms) for r in chosen], [r.measured_ms for r in chosen]
                ),
            )
    return table
