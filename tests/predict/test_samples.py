"""Training data from run folders: which measured kernel models count."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchharness.predict.samples import MIN_STEADY_MODELS, UNRELIABLE_FLAGS, collect
from benchharness.results.schema import OpRow, RunRow
from tests.predict import synthetic as S


def _store(flags: list[str], tmp_path: Path) -> Any:
    """A run of kernel models ``k0``, ``k1``, ... with the given flags, each with a profile."""
    runs = [
        RunRow(model=f"k{i}", format="onnx", status="ok", job_id=f"j{i}", median_ms=0.5,
               flags=f, artifact=str(tmp_path / f"k{i}.onnx"))
        for i, f in enumerate(flags)
    ]  # fmt: skip
    ops = [OpRow(job_id=f"j{i}", op_index=0, op_name="c", op_type="Conv", median_us=9.0)
           for i in range(len(flags))]  # fmt: skip
    return SimpleNamespace(runs=runs, ops=ops)


@pytest.mark.parametrize("flag", sorted(UNRELIABLE_FLAGS))
def test_flagged_kernel_models_are_kept_only_where_too_few_are_steady(
    flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = S.random_model(random.Random(1), 2)  # every kernel model's graph
    monkeypatch.setattr("benchharness.predict.samples.artifact_graph", lambda row: g)
    origins = {f"k{i}": "random" for i in range(MIN_STEADY_MODELS + 2)}
    # enough steady ones: the flagged model is left out, and said so
    flags = ["HIGH_CV"] * MIN_STEADY_MODELS + [f"HIGH_CV;{flag}", "EXTREME"]
    out = collect([_store(flags, tmp_path)], origins)
    models = {p.model for p in out.points}
    assert len(models) == MIN_STEADY_MODELS + 1 and f"k{MIN_STEADY_MODELS}" not in models
    assert out.skipped == [f"k{MIN_STEADY_MODELS} onnx: flagged {flag}, not steady"]
    # too few steady ones: a noisy predictor beats none, so it is kept, and said so
    out = collect([_store(["", f"{flag};HIGH_CV"], tmp_path)], {"k0": "r", "k1": "r"})
    assert {p.model for p in out.points} == {"k0", "k1"}
    assert out.skipped == [f"k1 onnx: flagged {flag}, kept: only 1 steady onnx kernel models"]
