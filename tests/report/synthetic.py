"""Synthetic results folders with known numbers, written through benchharness.results.store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchharness.results.schema import OpRow, Record, RunRow, SampleRow
from benchharness.results.store import atomic_write_text, rows_to_csv

#: model -> (MACs, median ms on devA, median ms on devB, model_bytes, activation_bytes)
MODELS: dict[str, tuple[float, float, float, float, float]] = {
    "alpha": (1e8, 2.0, 6.0, 4e6, 1e6),
    "beta": (3e8, 9.0, 20.0, 12e6, 3e6),
    "gamma": (6e8, 7.0, 30.0, 20e6, 2e6),
    "delta": (1.2e9, 30.0, 50.0, 45e6, 6e6),
    "epsilon": (2e9, 25.0, 100.0, 44e6, 5e6),
    "alpha@w0.5": (3e7, 1.5, 4.0, 1e6, 0.5e6),
}
#: A model name that must come out escaped in HTML and Markdown.
EVIL = "ev<b>il|&x$1"
FLAGGED = ("beta", "devA")


def job(device: str, model: str) -> str:
    return f"{device}|{model}|onnx|fp32"


def run_rows(device: str, column: int) -> list[dict[str, Any]]:
    rows = []
    for model, spec in MODELS.items():
        macs, median = spec[0], spec[column]
        rows.append(
            {
                "schema_version": 1,
                "run_id": "",
                "job_id": job(device, model),
                "device": device,
                "runtime": "onnxruntime",
                "format": "onnx",
                "precision": "fp32",
                "model": model,
                "input_shape": "1x3x224x224",
                "status": "ok",
                "n": 100,
                "median_ms": median,
                "p90_ms": median * 1.1,
                "iqr_ms": median * 0.04,
                "ci99_low_ms": median * 0.99,
                "ci99_high_ms": median * 1.01,
                "macs": macs,
                "flops": macs / 50,
                "params": macs / 100,
                "model_bytes": spec[3],
                "activation_bytes": spec[4],
                "flags": "HIGH_IQR;DRIFT" if (model, device) == FLAGGED else "",
                "cpu_model": f"cpu of {device}",
            }
        )
    return rows


#: Ops of ``alpha`` on devA: (op_type, median_us, macs, bytes), bytes left empty on one row.
ALPHA_OPS = [
    ("Conv", 1200.0, 9e7, 3e6),
    ("Conv", 300.0, 5e6, 1e6),
    ("Relu", 400.0, 0.0, 2e6),
    ("Add", 100.0, 0.0, ""),
]


def write_csv(path: Path, record: type[Record], rows: list[dict[str, Any]]) -> None:
    """``rows`` (column values) written as one of a run's CSVs, as the store writes them."""
    atomic_write_text(path, rows_to_csv(record.columns(), [record.from_values(r) for r in rows]))


def write_run(
    root: Path,
    run_id: str,
    device: str,
    column: int,
    *,
    with_ops: bool = True,
    failed: bool = True,
    evil: bool = False,
    environment: dict[str, Any] | None = None,
) -> Path:
    """``environment``: columns every measured row gets besides (``arch``, ``emulated``, ...)."""
    path = root / run_id
    path.mkdir(parents=True)
    rows = [{**r, **(environment or {})} for r in run_rows(device, column)]
    if evil:
        rows.append(
            {**rows[0], "model": EVIL, "job_id": job(device, EVIL), "macs": 5e8, "median_ms": 12.0}
        )
    if failed:
        rows.append(
            {
                "schema_version": 1,
                "job_id": job(device, "broken"),
                "device": device,
                "runtime": "onnxruntime",
                "format": "onnx",
                "precision": "fp32",
                "model": "broken",
                "status": "failed",
                "error": "RunnerError: boom",
            }
        )
    for r in rows:
        r["run_id"] = run_id
    ops = []
    if with_ops and device == "devA":
        for i, (op_type, us, macs, nbytes) in enumerate(ALPHA_OPS):
            ops.append(
                {
                    "schema_version": 1,
                    "run_id": run_id,
                    "job_id": job(device, "alpha"),
                    "device": device,
                    "model": "alpha",
                    "format": "onnx",
                    "precision": "fp32",
                    "runtime": "onnxruntime",
                    "op_index": i,
                    "op_name": f"op{i}",
                    "op_type": op_type,
                    "calls": 1,
                    "median_us": us,
                    "macs": macs,
                    "bytes": nbytes,
                }
            )
    samples = [
        {
            "schema_version": 1,
            "run_id": run_id,
            "job_id": job(device, "alpha"),
            "device": device,
            "model": "alpha",
            "format": "onnx",
            "precision": "fp32",
            "process": 0,
            "index": i,
            "latency_ms": v,
        }
        for i, v in enumerate([1.0, 2.0, 3.0, 4.0, 5.0])
    ]
    write_csv(path / "runs.csv", RunRow, rows)
    write_csv(path / "ops.csv", OpRow, ops)
    write_csv(path / "samples.csv", SampleRow, samples)
    meta = {
        "run_id": run_id,
        "created": "2026-01-01T00:00:00+00:00",
        "method": {"processes": 3, "preset": "default"},
        "request": {"devices": [device], "models": "synthetic"},
        "host": {"hostname": "host-" + device},
    }
    atomic_write_text(path / "run.json", json.dumps(meta))
    return path
