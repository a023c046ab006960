"""Export a zoo model to the requested formats, verify each artifact, and cache it.

The model is built with the weights its spec names (``ModelSpec.build``: the seeded rule of
``zoo/init_weights.py`` unless the builder's own are kept); the cache key carries that choice and
the rule's source, so a changed rule re-exports.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchharness.errors import ExportError, HarnessError
from benchharness.export import cache, convert, pte, quantize, verify
from benchharness.zoo import init_weights
from benchharness.zoo.registry import ModelSpec

#: onnx and tflite are the defaults of `bench run`; torch (PyTorch eager on a torch.export
#: program) and pte (an ExecuTorch program, XNNPACK-lowered) are asked for by name, since they
#: need torch (and ExecuTorch) on the device.
FORMATS = ("onnx", "tflite", "torch", "pte")
#: Formats with compressed variants (export/quantize.py); torch artifacts are FP32 only.
QUANTIZABLE_FORMATS = ("onnx", "tflite")
#: fp32 plus the compressed variants of export/quantize.py.
PRECISIONS = quantize.PRECISIONS

#: Seed of the verification input, so every export is checked on the same numbers.
VERIFY_SEED = 1234


@dataclass
class ExportOutcome:
    """One format's result: an entry, or the error that stopped it."""

    format: str
    entry: cache.CacheEntry | None = None
    error: HarnessError | None = None


def key_fields(spec: ModelSpec, fmt: str, precision: str) -> dict[str, Any]:
    return {
        "model": spec.name,
        "builder": spec.builder,
        # an edited module:function or seed architecture must not reuse the old artifact
        "builder_source": cache.builder_fingerprint(spec.builder),
        "kwargs": spec.kwargs,
        "classes": spec.classes,
        "input_shape": list(spec.input_shape),
        "format": fmt,
        "precision": precision,
        # the exported weights: the seeded rule (its source included) or the builder's own
        "weights": init_weights.key_field(spec.keeps_builder_weights),
        **_tolerance_field(precision),
    }


def _tolerance_field(precision: str) -> dict[str, Any]:
    """A compressed variant's tolerance: the cache records its verdict, so a new tolerance
    verifies it again. FP32's is left out, so its keys (and artifacts) outlive such changes."""
    if precision == "fp32" or precision not in verify.TOLERANCES:
        return {}
    return {"tolerance": list(verify.TOLERANCES[precision])}


def verify_input(shape: Sequence[int]) -> np.ndarray:
    return np.random.default_rng(VERIFY_SEED).standard_normal(tuple(shape)).astype(np.float32)


class _Reference:
    """Builds the torch model and its reference output once, and only when an export is needed."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._model: Any = None
        self.x = verify_input(spec.input_shape)
        self._out: np.ndarray | None = None

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self.spec.build()
        return self._model

    def example(self) -> Any:
        import torch

        return torch.from_numpy(self.x)

    def output(self) -> np.ndarray:
        if self._out is None:
            import torch

            try:
                with torch.no_grad():
                    out = self.model(self.example())
            except Exception as exc:  # e.g. an input size the model cannot take: a failed export
                first = str(exc).strip().splitlines()
                raise ExportError(
                    f"{self.spec.name} does not run on input {self.spec.input_shape_str}: "
                    f"{type(exc).__name__}: {first[0][:300] if first else ''}"
                ) from exc
            self._out = out.detach().numpy() if hasattr(out, "detach") else np.asarray(out)
        return self._out


def export_model(
    spec: ModelSpec,
    formats: Sequence[str],
    *,
    precision: str = "fp32",
    root: Path | None = None,
    log_path: Path | None = None,
    calibration: quantize.Calibration | None = None,
) -> list[ExportOutcome]:
    """Export ``spec`` to each format (or take it from the cache); never raises for one format.

    A compressed precision is made from the FP32 artifact of the same format, which is exported
    (and cached) first when it is not cached yet.
    """
    root = root or cache.cache_dir()
    precision = quantize.canonical_precision(precision)
    ref = _Reference(spec)
    outcomes = []
    for fmt in formats:
        try:
            entry = _cached_or_export(ref, fmt, precision, root, log_path, calibration)
            outcomes.append(ExportOutcome(fmt, entry=entry))
        except HarnessError as exc:
            outcomes.append(ExportOutcome(fmt, error=exc))
    return outcomes


def _cached_or_export(
    ref: _Reference,
    fmt: str,
    precision: str,
    root: Path,
    log_path: Path | None,
    calibration: quantize.Calibration | None,
) -> cache.CacheEntry:
    fields, path = artifact_location(ref.spec, fmt, precision, root, calibration)
    hit = _usable(path, fmt)
    if hit is not None:
        return hit
    with cache.key_lock(path):
        hit = _usable(path, fmt)  # another process may have exported it while we waited
        if hit is not None:
            return hit
        base = None
        if precision != "fp32" and fmt in QUANTIZABLE_FORMATS and precision in PRECISIONS:
            base = _cached_or_export(ref, fmt, "fp32", root, log_path, None)
        return _export_one(
            ref, fmt, precision, path, fields, log_path, base=base, calibration=calibration
        )


def artifact_location(
    spec: ModelSpec,
    fmt: str,
    precision: str,
    root: Path,
    calibration: quantize.Calibration | None = None,
) -> tuple[dict[str, Any], Path]:
    """The cache-key fields of ``spec``'s ``fmt`` artifact at ``precision``, and its path."""
    # fp32 keys have no extra fields, so artifacts cached before variants existed stay valid
    fields = {**key_fields(spec, fmt, precision), **quantize.key_extra(precision, calibration)}
    return fields, cache.artifact_path(root, spec.name, cache.cache_key(fields), fmt)


def is_cached(
    spec: ModelSpec,
    formats: Sequence[str],
    *,
    precision: str = "fp32",
    root: Path | None = None,
    calibration: quantize.Calibration | None = None,
) -> bool:
    """Whether every format of ``spec`` at ``precision`` is in the cache, by presence alone.

    No file is hashed: the lookup of ``export_model`` checks the sha256 again anyway, and exports
    a damaged file afresh. A key that cannot be computed counts as missing: ``export_model`` meets
    the same failure and reports it."""
    root = root or cache.cache_dir()
    precision = quantize.canonical_precision(precision)
    try:
        paths = [
            (artifact_location(spec, fmt, precision, root, calibration)[1], fmt) for fmt in formats
        ]
    except Exception:  # e.g. an unreadable calibration .npy: export_model says what it is
        return False
    return all(_present(path, fmt) for path, fmt in paths)


def _present(path: Path, fmt: str) -> bool:
    """What ``_usable`` needs on disk, without reading it: the file, its record, and a
    program's ETRecord."""
    files = [path, cache.record_path(path)]
    if fmt == "pte":
        files.append(pte.etrecord_path(path))
    return all(f.exists() for f in files)


def _usable(path: Path, fmt: str) -> cache.CacheEntry | None:
    """The cached artifact at ``path``, unless it cannot serve: a program without its ETRecord
    has lost its profile reader and its cost, and is exported again."""
    hit = cache.lookup(path)
    if hit is not None and fmt == "pte" and not pte.etrecord_path(path).exists():
        return None
    return hit


def _export_one(
    ref: _Reference,
    fmt: str,
    precision: str,
    path: Path,
    fields: dict[str, Any],
    log_path: Path | None,
    *,
    base: cache.CacheEntry | None = None,
    calibration: quantize.Calibration | None = None,
) -> cache.CacheEntry:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise ExportError(
            f"precision {precision!r} is not supported; choose from {', '.join(PRECISIONS)}"
        )
    if fmt == "pte" and precision not in pte.PTE_PRECISIONS:
        raise ExportError(
            f"the pte format is exported at {' and '.join(pte.PTE_PRECISIONS)} only; ask for "
            f"{precision} with --formats {','.join(QUANTIZABLE_FORMATS)}"
        )
    if precision != "fp32" and fmt not in (*QUANTIZABLE_FORMATS, "pte"):
        raise ExportError(
            f"the {fmt} format is exported at fp32 only; ask for {precision} with "
            f"--formats {','.join(QUANTIZABLE_FORMATS)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with convert.quiet_fds(log_path):
        reference = ref.output()
        if base is not None:
            quantize.quantize(
                fmt, base.path, path, precision,
                input_shape=ref.spec.input_shape, calibration=calibration,
            )  # fmt: skip
        elif fmt == "onnx":
            convert.to_onnx(ref.model, ref.example(), path)
        elif fmt == "torch":
            convert.to_torch(ref.model, ref.example(), path)
        elif fmt == "pte":
            batches = (
                (calibration or quantize.Calibration()).batches(ref.spec.input_shape)
                if precision == "int8-static"
                else []
            )
            pte.to_pte(ref.model, ref.example(), path, precision=precision, calibration=batches)
        else:
            convert.to_tflite(ref.model, ref.example(), path)
        err = verify.max_abs_error(path, fmt, ref.x, reference)
    entry = cache.CacheEntry(
        path=path,
        format=fmt,
        precision=precision,
        sha256=cache.sha256_file(path),
        max_abs_err=err,
        tolerance=verify.tolerance(reference, precision),
        export_s=time.perf_counter() - start,
        cached=False,
    )
    cache.record(entry, fields)
    return entry
