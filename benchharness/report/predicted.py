"""The report's predictor section: predicted against measured, next to the MACs line.

When a device of the report has a predictor (``RESULTS_DIR/predictors/DEVICE.json.gz``, written
by ``bench predictor build``), every measured model of that device is predicted from its own
artifact and set against its median and against what the series' log-log MACs fit (the report's
"FLOPs line") says, with the prediction's 90 % interval (``predict/conformal.py``) and how the
predictor found the kernels (``predict/runtime_view.py``). The MACs line is fitted on these very
models, so it is judged in sample; the predictor never saw them unless they are kernel models. A
predictor built on another setup than the run (runtime version, threads, CPU) is named in the
table's note; one whose file cannot be read (damaged, of a newer harness) is named in a note of
the report, which is written all the same.
"""

from __future__ import annotations

import math
from pathlib import Path

from benchharness.errors import HarnessError
from benchharness.predict.build import predictor_path
from benchharness.predict.predictor import Predictor, fingerprint_of_rows
from benchharness.predict.samples import artifact_graph
from benchharness.report.cells import Cell, Table, num_cell, sig
from benchharness.report.figures import Analysis, Series
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore

#: The error band the table counts: nn-Meter's +-10 %.
BAND = 0.10


def _error_cell(predicted: float | None, measured: float) -> Cell:
    if predicted is None or measured <= 0:
        return Cell("–")
    err = predicted / measured - 1.0
    return num_cell(err * 100, f"{err * 100:+.1f} %", "num" if abs(err) <= BAND else "slower")


def _interval_cell(low: float | None, high: float | None) -> Cell:
    """``low-high``; "–" without an interval, "unbounded" where the build could not bound it."""
    if low is None or high is None:
        return Cell("–")
    if not math.isfinite(high):
        return Cell("unbounded")
    return Cell(f"{sig(low)}–{sig(high)}")


def _rows_by_job(analysis: Analysis) -> dict[tuple[str, str], RunRow]:
    rows: dict[tuple[str, str], RunRow] = {}
    for info in analysis.runs:
        try:
            store = RunStore.open(info.path.parent, str(info.path))
        except HarnessError:
            continue
        for r in store.runs:
            rows[(store.run_id, r.job_id)] = r
    return rows


def series_table(
    series: Series, predictor: Predictor, rows: dict[tuple[str, str], RunRow]
) -> Table | None:
    fmt = series.key.format
    if fmt not in predictor.formats:
        return None
    table = Table(
        f"Predicted vs measured — {series.key.label}",
        [
            "model",
            "measured ms",
            "predicted ms",
            "90 % interval ms",
            "predictor error",
            "MACs line ms",
            "MACs line error",
        ],
    )
    mine = []
    hits = {"predictor": 0, "macs": 0, "n": 0, "inside": 0, "bounded": 0}
    sources: set[str] = set()
    for p in series.points:
        row = rows.get((p.run_id, p.job_id))
        if row is None:
            continue
        mine.append(row)
        predicted: float | None = None
        low = high = None
        try:
            pred = predictor.predict_graph(artifact_graph(row))
            predicted, low, high = pred.ms, pred.low_ms, pred.high_ms
            sources.add(pred.kernels_from)
        except HarnessError:
            pass
        if low is not None and high is not None:
            hits["bounded"] += 1
            hits["inside"] += low <= p.median_ms <= high
        table.rows.append([
            Cell(p.model), num_cell(p.median_ms), num_cell(predicted), _interval_cell(low, high),
            _error_cell(predicted, p.median_ms), num_cell(p.predicted_ms),
            _error_cell(p.predicted_ms, p.median_ms),
        ])  # fmt: skip
        if predicted is not None and p.predicted_ms is not None and p.median_ms > 0:
            hits["n"] += 1
            hits["predictor"] += abs(predicted / p.median_ms - 1) <= BAND
            hits["macs"] += abs(p.predicted_ms / p.median_ms - 1) <= BAND
    if not table.rows:
        return None
    diffs = predictor.differences(fingerprint_of_rows(mine), fmt)
    n = hits["n"]
    learnt = {(q.run_id, q.model) for q in predictor.networks if q.format == fmt}
    seen = sum(1 for r in mine if (r.run_id, r.model) in learnt)
    fitted_on = (
        f"the predictor's network stage on {seen} of them, so those are no test of it: "
        "`bench predictor eval` holds each family out"
        if seen
        else "the predictor on kernel models"
        + (" and other runs' networks" if learnt else "")
        + " only"
    )
    table.note = (
        f"Within ±{BAND:.0%}: predictor {hits['predictor']} of {n}, MACs line {hits['macs']} of "
        f"{n} (the line is fitted on these models; {fitted_on})."
        + (
            f" Inside the predictor's 90 % interval: {hits['inside']} of {hits['bounded']}."
            if hits["bounded"]
            else ""
        )
        + (f" Kernels {' / '.join(sorted(sources))}." if sources else "")
        + (f" The predictor was built on another setup: {'; '.join(diffs)}." if diffs else "")
        + f" Predictor: {sig(float(len(predictor.samples)))} kernel samples."
    )
    return table


def prediction_section(analysis: Analysis, results_dir: Path) -> tuple[list[Table], list[str]]:
    """One table per series whose device has a predictor ([] when none has), and a note per
    predictor that could not be read: a damaged predictor leaves its tables out, not the
    report."""
    predictors: dict[str, Predictor | None] = {}
    notes: list[str] = []
    tables: list[Table] = []
    rows: dict[tuple[str, str], RunRow] | None = None
    for s in analysis.series:
        device = s.key.device
        if device not in predictors:
            predictors[device] = _load(results_dir, device, notes)
        predictor = predictors[device]
        if predictor is None:
            continue
        if rows is None:
            rows = _rows_by_job(analysis)
        table = series_table(s, predictor, rows)
        if table is not None:
            tables.append(table)
    return tables, notes


def _load(results_dir: Path, device: str, notes: list[str]) -> Predictor | None:
    """The device's predictor; None where it has none, or (with a note saying why) where its
    file cannot be read."""
    path = predictor_path(results_dir, device)
    if not path.exists():
        return None
    try:
        return Predictor.load(path)
    except HarnessError as exc:
        notes.append(f"The predictor of {device} is left out of this report: {exc}")
        return None
