"""Training data from run folders: which measured kernel models count."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.predict.samples import UNRELIABLE_FLAGS, Measured, _collect_row
from benchharness.results.schema import OpRow, RunRow


def _row(flags: str, tmp_path: Path) -> RunRow:
    return RunRow(
        model="k1",
        format="onnx",
        status="ok",
        job_id="j1",
        median_ms=0.5,
        flags=flags,
        artifact=str(tmp_path / "gone.onnx"),
    )


@pytest.mark.parametrize("flag", sorted(UNRELIABLE_FLAGS))
def test_a_kernel_model_whose_measurement_does_not_hold_gives_no_sample(
    flag: str, tmp_path: Path
) -> None:
    ops = {"j1": [OpRow(job_id="j1", op_index=0, op_name="c", op_type="Conv", median_us=9.0)]}
    out = Measured()
    _collect_row(out, _row(f"HIGH_CV;{flag}", tmp_path), ops, "random")
    assert not out.samples and not out.points
    assert out.skipped == [f"k1 onnx: flagged {flag}, not a steady measurement"]
    # other flags (noisy but steady) do not: the row goes on to its artifact (gone here)
    out = Measured()
    _collect_row(out, _row("HIGH_CV;EXTREME", tmp_path), ops, "random")
    assert len(out.skipped) == 1 and "gone" in out.skipped[0]
