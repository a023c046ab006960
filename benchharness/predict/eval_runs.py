"""``bench predictor eval`` as a library call: a device's measured rows gathered from run folders
(models they lack measured with ``bench run``), the predictor checked against them, and scored
(``evaluate.evaluate``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchharness.api import RunRequest
from benchharness.api import run as run_request
from benchharness.cost.artifact_cost import GRAPH_FORMATS
from benchharness.plan.options import Method, RunOptions
from benchharness.predict.build import load_predictor
from benchharness.predict.evaluate import Evaluation, evaluate
from benchharness.predict.predictor import check_fingerprint, fingerprint_of_rows
from benchharness.predict.samples import ops_by_job
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from benchharness.zoo.registry import resolve_models

#: ``--models`` values that mean no zoo model (outside models only).
NO_ZOO = ("", "none")
#: What the fingerprint of the evaluation's rows is called in a refusal or warning.
MEASURED_RUNS = "the measured runs"

#: Measures a ``bench run`` request and returns its run (the CLI shows its progress).
Measure = Callable[[RunRequest], RunStore]
#: Receives a line for the user (progress, or a warning).
Say = Callable[[str], None]


@dataclass
class EvalRequest:
    """What ``bench predictor eval`` was asked."""

    device: str = "local"
    runs: tuple[str, ...] = ()  # run ids holding measured models
    models: str = "all"  # zoo selection, held out by family; "none": outside models only
    outside: tuple[str, ...] = ()  # module:function references of models outside the zoo
    formats: tuple[str, ...] = GRAPH_FORMATS
    quick: bool = False  # measure missing models with the quick preset
    force: bool = False  # evaluate although the fingerprints differ
    predictor: Path | None = None  # None: the device's current predictor
    results_dir: Path = Path("results")


def _quiet(_line: str) -> None:
    """Where lines go when the caller gives no ``say`` or ``warn``."""


def evaluate_runs(
    req: EvalRequest,
    *,
    measure: Measure = run_request,
    say: Say = _quiet,
    warn: Say = _quiet,
) -> Evaluation:
    """Held-out accuracy of the device's predictor on the models of ``req``, measuring those the
    given runs lack with ``measure`` (``bench run``, without progress, unless the caller shows
    it); ``say`` gets progress lines, ``warn`` fingerprint differences."""
    predictor = load_predictor(req.results_dir, req.device, req.predictor)
    zoo, outside = model_names(req)
    stores = [RunStore.open(req.results_dir, rid) for rid in req.runs]
    rows = device_rows(stores, req.device)
    missing = missing_models(rows, [*zoo, *outside], req.formats)
    if missing:
        store = _measure_missing(req, missing, zoo, measure, say)
        stores.append(store)
        rows += list(store.runs)
    current = fingerprint_of_rows(rows)
    for warning in check_fingerprint(predictor, current, MEASURED_RUNS, req.formats, req.force):
        warn(warning)
    ops = ops_by_job(op for store in stores for op in store.ops)
    return evaluate(
        predictor, rows, zoo, outside, req.formats, ops_of=lambda r: ops.get(r.job_id, [])
    )


def model_names(req: EvalRequest) -> tuple[list[str], list[str]]:
    """The names of the zoo models and of the outside models the request evaluates."""
    none = req.models.strip().lower() in NO_ZOO
    zoo = [] if none else [r.name for r in resolve_models(req.models)]
    outside = [r.name for r in resolve_models(",".join(req.outside))] if req.outside else []
    return zoo, outside


def device_rows(stores: Iterable[RunStore], device: str) -> list[RunRow]:
    """The runs.csv rows of ``device`` in the given runs."""
    return [r for store in stores for r in store.runs if r.device == device]


def missing_models(
    rows: Iterable[RunRow], names: Sequence[str], formats: Sequence[str]
) -> list[str]:
    """The models of ``names`` without an ``ok`` row in one of ``formats``."""
    have = {(r.model, r.format) for r in rows if r.ok}
    return [m for m in names if any((m, f) not in have for f in formats)]


def _measure_missing(
    req: EvalRequest, missing: list[str], zoo: list[str], measure: Measure, say: Say
) -> RunStore:
    """Measure the missing models on the device in one run."""
    wanted = [m for m in zoo if m in missing]
    wanted += [o for o in req.outside if o.split(":")[-1] in missing]
    say(f"measuring {len(missing)} model(s) not in the given runs")
    store = measure(
        RunRequest(
            devices=(req.device,),
            models=",".join(wanted),
            formats=req.formats,
            options=RunOptions(method=Method(quick=req.quick)),
            results_dir=req.results_dir,
        )
    )
    say(f"measured in run {store.run_id}")
    return store
