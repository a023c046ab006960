"""The network stage's data: zoo networks measured on the device, each next to its kernel sum
predicted with its family held out (``network_cal.py`` says why and how the stage is fitted).

The networks come from ordinary ``bench run`` folders of the device (the main job,
``bench run --device D --models all``, makes one): ``--networks RUN_ID`` names them, else the
newest run in the results folder whose rows hold enough zoo networks measured on the setup the
predictor was built on (same device, CPU, threads, runner and runtime versions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from benchharness.errors import CostError, ResultsError
from benchharness.predict.census import family_of
from benchharness.predict.network_cal import MIN_NETWORKS, NetworkPoint
from benchharness.predict.predictor import Predictor, fingerprint_of_rows
from benchharness.predict.samples import artifact_graph
from benchharness.predict.wiring import Graph
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore, list_runs, read_records
from benchharness.zoo.registry import ModelSpec, resolve_models

#: Newest runs looked at for networks when none is named: the search stays bounded however many
#: runs the results folder holds.
MAX_RUNS_SCANNED = 50


def zoo_models() -> set[str]:
    """The names of the zoo's models (the network stage learns from these only, so no outside
    model an evaluation scores can be in it)."""
    return {r.name for r in resolve_models("all") if isinstance(r, ModelSpec)}


def usable_rows(rows: Iterable[RunRow], zoo: set[str], formats: Iterable[str]) -> list[RunRow]:
    """The first ``ok`` row of each zoo model and format whose graph runs its model and which
    has a median."""
    wanted = set(formats)
    seen: set[tuple[str, str]] = set()
    out = []
    for row in rows:
        key = (row.model, row.format)
        if (
            key in seen
            or not row.ok
            or row.format not in wanted
            or row.model not in zoo
            or not row.runs_its_model
            or row.median_ms is None
            or row.median_ms <= 0
        ):
            continue
        seen.add(key)
        out.append(row)
    return out


def find_network_run(
    predictor: Predictor, results_dir: Path, zoo: set[str], skip: Iterable[str] = ()
) -> str | None:
    """The newest run of ``results_dir`` with at least ``MIN_NETWORKS`` zoo networks of one of
    the predictor's formats, measured on the predictor's setup; None if there is none."""
    device = predictor.fingerprint.get("device")
    passed = set(skip)
    for run_id in list(reversed(list_runs(results_dir)))[:MAX_RUNS_SCANNED]:
        if run_id in passed:
            continue
        try:
            # runs.csv only: a kernel build's ops.csv is megabytes and says nothing here
            path = RunStore.at(results_dir, run_id).path / "runs.csv"
            rows = [r for r in read_records(path, RunRow, runs=True) if r.device == device]
        except ResultsError:
            continue  # a damaged or foreign folder is no candidate; the run itself says why
        usable = usable_rows(rows, zoo, predictor.formats)
        fingerprint = fingerprint_of_rows(usable)
        for fmt in predictor.formats:
            mine = [r for r in usable if r.format == fmt]
            if len(mine) >= MIN_NETWORKS and not predictor.strict_differences(fingerprint, fmt):
                return run_id
    return None


def network_points(
    predictor: Predictor,
    rows: Sequence[RunRow],
    zoo: set[str],
    graph_of: Callable[[RunRow], Graph] = artifact_graph,
) -> tuple[list[NetworkPoint], list[str]]:
    """Each usable zoo row of ``rows`` as a network point: its kernel sum predicted by the
    predictor refitted without the row's family (one refit per family and format, without
    intervals); and a note per row that could not be used."""
    skipped: list[str] = []
    # (model, its median, run id, graph) per family and format
    by_fold: dict[tuple[str, str], list[tuple[str, float, str, Graph]]] = {}
    for row in usable_rows(rows, zoo, predictor.formats):
        if row.median_ms is None:  # usable_rows keeps none such; the type does not know it
            continue
        try:
            graph = graph_of(row)
        except CostError as exc:
            skipped.append(f"{row.model} {row.format}: {exc}")
            continue
        family = family_of(row.model, row.source or "")
        by_fold.setdefault((family, row.format), []).append(
            (row.model, row.median_ms, row.run_id, graph)
        )
    origins = {s.origin for s in predictor.samples}
    points = []
    for (family, fmt), members in sorted(by_fold.items()):
        fold = (
            predictor.without([family], [fmt], with_band=False) if family in origins else predictor
        )
        predictions = fold.predict_graphs([m[3] for m in members])
        for (model, median_ms, run_id, _), pred in zip(members, predictions, strict=True):
            kernel_ms = pred.kernel_ms if pred.kernel_ms is not None else pred.ms
            points.append(NetworkPoint(fmt, model, family, median_ms, kernel_ms, run_id))
    return points, skipped
