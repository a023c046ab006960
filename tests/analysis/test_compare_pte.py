"""``bench compare`` with the third runtime: ExecuTorch rows pair with ExecuTorch rows and are
judged like the other two (synthetic samples whose answer is known)."""

from __future__ import annotations

import pytest

from benchharness.analysis.comparison import compare_runs
from benchharness.results.schema import RunRow, SampleRow
from tests.analysis.test_comparison import measure, run_of

STACKS = {
    "onnx": {"runtime": "onnxruntime", "runtime_version": "1.32.0"},
    "tflite": {"runtime": "litert", "runtime_version": "2.3.0"},
    "pte": {"runtime": "executorch", "runtime_version": "1.5.1", "provider": "XNNPACK"},
}


def three(seed: int, pte_scale: float = 1.0, **pte: str) -> tuple[list[RunRow], list[SampleRow]]:
    return run_of(
        *(
            measure("resnet18", seed=seed + i, format=fmt, job=f"resnet18-{fmt}",
                    scale=pte_scale if fmt == "pte" else 1.0,
                    **{**fields, **(pte if fmt == "pte" else {})})
            for i, (fmt, fields) in enumerate(STACKS.items())
        )
    )  # fmt: skip


def test_each_runtime_pairs_with_itself_and_a_slower_executorch_is_called() -> None:
    runs_a, samples_a = three(1)
    runs_b, samples_b = three(11, pte_scale=1.2)
    result = compare_runs(runs_a, samples_a, runs_b, samples_b)
    verdicts = {m.format: m.verdict for m in result.matches}
    assert verdicts == {"onnx": "same", "tflite": "same", "pte": "slower"}
    (pte,) = [m for m in result.matches if m.format == "pte"]
    assert pte.ratio == pytest.approx(1.2, rel=0.03)


def test_another_executorch_version_is_a_fingerprint_mismatch() -> None:
    runs_a, samples_a = three(1)
    runs_b, samples_b = three(11, runtime_version="1.6.0")
    result = compare_runs(runs_a, samples_a, runs_b, samples_b, allow_mismatch=True)
    (pte,) = [m for m in result.matches if m.format == "pte"]
    assert pte.fingerprint_diff.get("runtime_version") == ["1.5.1", "1.6.0"]
