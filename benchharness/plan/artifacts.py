"""Turn model references into verified artifacts with their cost, before any device is touched.

An artifact's cost (``Artifact.cost``, the row's cost columns) is its own graph's: ``macs``,
``flops``, ``params``, ``activation_bytes``, ``model_bytes`` and ``graph_ops`` (convolutions and
matrix products). An exported one also keeps the source model's ``source_macs``,
``source_params`` and ``source_ops`` (torch's count), the weights it was exported with
(``init``), and ``folded``, one line, when its graph runs less than the model defines
(``cost/folding.py``); a model file keeps ``folded`` when ONNX Runtime's session drops
convolutions.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness.cost import folding
from benchharness.cost.artifact_cost import graph_cost_or_none
from benchharness.cost.records import GraphCost
from benchharness.errors import HarnessError, ModelFileError
from benchharness.export import cache
from benchharness.export.pipeline import ExportOutcome, export_model, key_fields
from benchharness.export.quantize import Calibration, canonical_precision
from benchharness.ondevice.pte_file import is_pte
from benchharness.plan.parallel_export import ExportSettings, export_ahead, export_job
from benchharness.zoo.registry import ArtifactRef, ModelRef, ModelSpec

#: The first bytes of an ONNX file are a protobuf field tag; TFLite files carry this identifier.
TFLITE_IDENTIFIER = b"TFL3"

Stage = Callable[[str], None]


@dataclass
class Artifact:
    """An exported (or user-given) model file and what is known of it before timing."""

    model: str
    source: str
    input_shape: str
    format: str
    precision: str
    path: Path | None
    sha256: str = ""
    max_abs_err: float | None = None
    tolerance: float | None = None
    error: str | None = None
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.model}|{self.format}|{self.precision}|{self.input_shape}"


def check_model_file(path: Path, fmt: str) -> None:
    """Fail early, with a clear message, on a model file that cannot be what it claims."""
    try:
        head = path.read_bytes()[:8]
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if fmt == "tflite" and head[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(
            f"{path} is not a TFLite flatbuffer (no TFL3 identifier); re-export it"
        )
    if fmt == "pte" and not is_pte(head):
        raise ModelFileError(
            f"{path} is not an ExecuTorch program (no ET.. identifier); re-export it"
        )
    if fmt == "onnx":
        import onnx

        try:
            onnx.checker.check_model(str(path))
        except Exception as exc:  # onnx raises several types for damaged files
            raise ModelFileError(
                f"{path} is not a valid ONNX model ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); re-export it"
            ) from exc


#: What the torch model's cost sidecar must hold; an older one without it is counted again.
SOURCE_COST_KEYS = ("macs", "params", "ops")


def torch_cost(spec: ModelSpec, root: Path) -> dict[str, Any]:
    """MACs (paper convention), params and the number of convolutions and matrix products of
    the torch model, cached beside the artifacts."""
    fields = key_fields(spec, "torch", "fp32")
    side = root / spec.name / f"{spec.name}-{cache.cache_key(fields)}.cost.json"
    if side.exists():
        try:
            data: dict[str, Any] = json.loads(side.read_text(encoding="utf-8"))
            if all(k in data for k in SOURCE_COST_KEYS):
                return data
        except (OSError, json.JSONDecodeError):
            pass
    import torch

    from benchharness.cost.torch_cost import count_params, torch_macs

    model = spec.build()
    example = torch.zeros(spec.input_shape)
    data = {
        "macs": torch_macs(model, example),
        "params": count_params(model),
        "ops": folding.source_ops(model, example),
    }
    cache.atomic_write_text(side, json.dumps(data))
    return data


def _graph_fields(path: Path, fmt: str, sha256: str) -> tuple[dict[str, Any], GraphCost | None]:
    """The cost columns of the artifact's own graph (None: no reader, or unreadable)."""
    cost = graph_cost_or_none(path, fmt, sha256)
    fields: dict[str, Any] = {"model_bytes": path.stat().st_size}
    if cost is not None:
        fields.update(
            macs=cost.macs,
            flops=cost.flops,
            params=cost.params,
            activation_bytes=cost.activation_peak_bytes,
            graph_ops=folding.graph_work(cost).ops,
        )
    return fields, cost


def _file_cost(path: Path, fmt: str, sha256: str) -> dict[str, Any]:
    """A model file's cost: its graph's, and what an ONNX Runtime session folds away."""
    fields, _ = _graph_fields(path, fmt, sha256)
    loss = folding.session_loss(path, sha256) if fmt == "onnx" else None
    if loss:
        fields["folded"] = loss
    return fields


def exported_cost(
    path: Path, fmt: str, sha256: str, source: dict[str, Any], init: str
) -> dict[str, Any]:
    """An exported artifact's cost: every figure from its own graph, the source model's MACs,
    params and operator count beside them (``source_*``), the weights it was exported with
    (``init``), and ``folded`` when the graph lost work the model defines (``cost/folding``).

    A torch-format artifact has no graph reader: its program is the model's, so its figures are
    the source's."""
    fields, cost = _graph_fields(path, fmt, sha256)
    fields["init"] = init
    fields.update({f"source_{k}": source.get(k) for k in SOURCE_COST_KEYS})
    if cost is None and fmt == "torch":
        fields.update(macs=source.get("macs"), params=source.get("params"))
        fields["graph_ops"] = source.get("ops")
    losses = []
    if cost is not None and source.get("macs") is not None and source.get("ops") is not None:
        own = folding.Work(macs=int(source["macs"]), ops=int(source["ops"]))
        losses.append(folding.describe_loss(fmt, folding.graph_work(cost), own))
    if fmt == "onnx":
        losses.append(folding.session_loss(path, sha256))
    if any(losses):
        fields["folded"] = "; ".join(loss for loss in losses if loss)
    return fields


def warm_model(spec: ModelSpec, settings: ExportSettings) -> int:
    """A worker's task: export ``spec`` and count its torch cost into the cache, so that
    ``prepare_artifacts`` finds both; how many artifacts failed."""
    failed = export_job(spec, settings)
    # the main loop counts it again when this fails, and reports what went wrong
    with contextlib.suppress(Exception):
        torch_cost(spec, settings.root)
    return failed


def prepare_artifacts(
    refs: Sequence[ModelRef],
    formats: Sequence[str],
    *,
    precision: str | Sequence[str] = "fp32",
    root: Path | None = None,
    log_path: Path | None = None,
    stage: Stage | None = None,
    calibration: Calibration | None = None,
    export_jobs: int | None = None,
) -> list[Artifact]:
    """Export (or reuse) and cost every model; a model that fails becomes an artifact with error.

    ``precision`` is one precision or several (each model is exported at each, model-major).

    When two or more models miss the cache, ``export_jobs`` worker processes export them first
    (``parallel_export.py``; None: one per core, at most ``MAX_DEFAULT_JOBS``; 1: none), and
    the loop below then finds them cached; what a worker failed to export, the loop exports (or
    fails to) itself, as it does with one job. It returns before any runner starts: ``bench
    run`` measures only after it, so exports never overlap timing.
    """
    root = root or cache.cache_dir()
    asked = (precision,) if isinstance(precision, str) else tuple(precision)
    precisions = tuple(dict.fromkeys(canonical_precision(p) for p in asked))
    stage = stage or (lambda _text: None)
    # a damaged model file fails the call at once, not after minutes of exports
    for ref in refs:
        if isinstance(ref, ArtifactRef):
            check_model_file(ref.path, ref.format)
    settings = ExportSettings(tuple(formats), precisions, root, log_path, calibration)
    specs = [ref for ref in refs if isinstance(ref, ModelSpec)]
    export_ahead(specs, settings, workers=export_jobs, work=warm_model, stage=stage)
    artifacts: list[Artifact] = []
    for ref in refs:
        if isinstance(ref, ArtifactRef):
            artifacts.append(_file_artifact(ref, stage))
        else:
            artifacts.extend(_exported_artifacts(ref, settings, stage))
    return artifacts


def _file_artifact(ref: ArtifactRef, stage: Stage) -> Artifact:
    """A model file, benchmarked as it is: its cost from its own graph."""
    stage(f"{ref.name}: cost")
    sha = cache.sha256_file(ref.path)
    return Artifact(
        model=ref.name,
        source="file",
        input_shape="",
        format=ref.format,
        precision="as-is",
        path=ref.path,
        sha256=sha,
        cost=_file_cost(ref.path, ref.format, sha),
    )


def _exported_artifacts(ref: ModelSpec, settings: ExportSettings, stage: Stage) -> list[Artifact]:
    """A model's artifacts in every format and precision, exported (or cached) and costed; a
    format that failed to export is an artifact with its error."""
    formats = list(settings.formats)
    outcomes: list[tuple[str, ExportOutcome]] = []
    for prec in settings.precisions:
        stage(f"{ref.name}: export {', '.join(formats)} {prec}")
        exported = export_model(
            ref,
            formats,
            precision=prec,
            root=settings.root,
            log_path=settings.log_path,
            calibration=settings.calibration,
        )
        outcomes.extend((prec, o) for o in exported)
    base_cost: dict[str, Any] = {}
    cost_error = None
    try:
        stage(f"{ref.name}: cost")
        base_cost = torch_cost(ref, settings.root)
    except HarnessError as exc:
        cost_error = str(exc)
    artifacts = []
    for prec, outcome in outcomes:
        art = Artifact(
            model=ref.name,
            source=ref.source,
            input_shape=ref.input_shape_str,
            format=outcome.format,
            precision=prec,
            path=outcome.entry.path if outcome.entry else None,
        )
        if outcome.entry is None:
            art.error = f"{type(outcome.error).__name__}: {outcome.error}"
        else:
            art.sha256 = outcome.entry.sha256
            art.max_abs_err = outcome.entry.max_abs_err
            art.tolerance = outcome.entry.tolerance
            art.cost = exported_cost(
                outcome.entry.path, outcome.format, art.sha256, base_cost, ref.init
            )
            if cost_error:
                art.cost["cost_error"] = cost_error
            if art.cost.get("folded"):
                stage(f"{art.model}: {art.format} {prec} GRAPH_FOLDED: {art.cost['folded']}")
        artifacts.append(art)
    return artifacts
