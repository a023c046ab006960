"""An export that loads but fails to run in its runtime is that model's failed row, not the end
of the run."""

from __future__ import annotations

from pathlib import Path

import onnxruntime
import pytest

from benchharness.api import RunRequest, run
from benchharness.export.pipeline import export_model
from benchharness.plan.options import Method, RunOptions
from benchharness.zoo.registry import ModelSpec

TINY = "tests.support.tiny:tiny_cnn"


class FailingSession(onnxruntime.InferenceSession):
    """Loads the model for real, then fails to run it.

    Mocked: an ONNX graph that passes onnx.checker and loads, yet fails in ORT at run time, cannot
    be produced on purpose with this converter; the exception raised is ORT's own type."""

    def run(self, *args: object, **kwargs: object) -> list:
        fail = onnxruntime.capi.onnxruntime_pybind11_state.RuntimeException
        raise fail("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code")


def test_a_runtime_failure_during_verification_is_an_export_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnxruntime, "InferenceSession", FailingSession)
    spec = ModelSpec("tiny_breaks", "user", TINY, (1, 3, 32, 32), classes=10)
    (onnx_outcome,) = export_model(spec, ["onnx"], root=tmp_path)
    assert onnx_outcome.entry is None
    assert "fails to run in onnxruntime" in str(onnx_outcome.error)


def test_the_run_goes_on_with_a_failed_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxruntime, "InferenceSession", FailingSession)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    store = run(
        RunRequest(models=TINY, input_shape="1x3x32x32", formats=("onnx",),
                   options=RunOptions(method=Method(quick=True, min_n=20, min_s=0.1,
                                                    warmup_min_s=0.05), profile_ops=False),
                   results_dir=tmp_path / "results")
    )  # fmt: skip
    (row,) = store.runs
    assert row.status == "failed" and "fails to run in onnxruntime" in row.error
