"""Turn model references into verified artifacts with their cost, before any device is touched."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness.cost.artifact_cost import graph_cost_or_none
from benchharness.errors import HarnessError, ModelFileError
from benchharness.export import cache
from benchharness.export.pipeline import ExportOutcome, export_model, key_fields
from benchharness.export.quantize import Calibration, canonical_precision
from benchharness.ondevice.pte_file import is_pte
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


def torch_cost(spec: ModelSpec, root: Path) -> dict[str, Any]:
    """MACs and params of the torch model (paper convention), cached beside the artifacts."""
    fields = key_fields(spec, "torch", "fp32")
    side = root / spec.name / f"{spec.name}-{cache.cache_key(fields)}.cost.json"
    if side.exists():
        try:
            data: dict[str, Any] = json.loads(side.read_text(encoding="utf-8"))
            return data
        except (OSError, json.JSONDecodeError):
            pass
    import torch

    from benchharness.cost.torch_cost import count_params, torch_macs

    model = spec.build()
    data = {
        "macs": torch_macs(model, torch.zeros(spec.input_shape)),
        "params": count_params(model),
    }
    cache.atomic_write_text(side, json.dumps(data))
    return data


def _graph_fields(path: Path, fmt: str, sha256: str) -> dict[str, Any]:
    cost = graph_cost_or_none(path, fmt, sha256)
    fields: dict[str, Any] = {"model_bytes": path.stat().st_size}
    if cost is not None:
        fields.update(
            macs=getattr(cost, "macs", None),
            flops=getattr(cost, "flops", None),
            params=getattr(cost, "params", None),
            activation_bytes=getattr(cost, "activation_peak_bytes", None),
        )
    return fields


def prepare_artifacts(
    refs: Sequence[ModelRef],
    formats: Sequence[str],
    *,
    precision: str | Sequence[str] = "fp32",
    root: Path | None = None,
    log_path: Path | None = None,
    stage: Stage | None = None,
    calibration: Calibration | None = None,
) -> list[Artifact]:
    """Export (or reuse) and cost every model; a model that fails becomes an artifact with error.

    ``precision`` is one precision or several (each model is exported at each, model-major).
    """
    root = root or cache.cache_dir()
    asked = (precision,) if isinstance(precision, str) else tuple(precision)
    precisions = tuple(dict.fromkeys(canonical_precision(p) for p in asked))
    stage = stage or (lambda _text: None)
    artifacts: list[Artifact] = []
    for ref in refs:
        if isinstance(ref, ArtifactRef):
            check_model_file(ref.path, ref.format)
            stage(f"{ref.name}: cost")
            artifacts.append(
                Artifact(
                    model=ref.name,
                    source="file",
                    input_shape="",
                    format=ref.format,
                    precision="as-is",
                    path=ref.path,
                    sha256=(sha := cache.sha256_file(ref.path)),
                    cost=_graph_fields(ref.path, ref.format, sha),
                )
            )
            continue
        outcomes: list[tuple[str, ExportOutcome]] = []
        for prec in precisions:
            stage(f"{ref.name}: export {', '.join(formats)} {prec}")
            exported = export_model(
                ref, formats, precision=prec, root=root, log_path=log_path, calibration=calibration
            )
            outcomes.extend((prec, o) for o in exported)
        base_cost: dict[str, Any] = {}
        cost_error = None
        try:
            stage(f"{ref.name}: cost")
            base_cost = torch_cost(ref, root)
        except HarnessError as exc:
            cost_error = str(exc)
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
                art.cost = _graph_fields(outcome.entry.path, outcome.format, art.sha256)
                # the paper-convention MACs and exact params come from torch, not the graph
                art.cost.update({k: v for k, v in base_cost.items() if v is not None})
                if cost_error:
                    art.cost["cost_error"] = cost_error
            artifacts.append(art)
    return artifacts
