from __future__ import annotations

import pytest

from benchharness.analysis.op_breakdown import op_summary
from benchharness.errors import ResultsError
from benchharness.results.schema import OpRow

# typed, as the store hands rows to callers
OPS = [OpRow.from_values(o) for o in [
    {"device": "d", "model": "m", "format": "onnx", "op_index": 0, "op_name": "a", "op_type": "Conv",
     "median_us": 300, "share": 0.6, "macs": 3000000, "bytes": 100},
    {"device": "d", "model": "m", "format": "onnx", "op_index": 1, "op_name": "b", "op_type": "Conv",
     "median_us": 100, "share": 0.2, "macs": 1000000, "bytes": 100},
    {"device": "d", "model": "m", "format": "onnx", "op_index": 2, "op_name": "c", "op_type": "Relu",
     "median_us": 100, "share": 0.2, "macs": 0, "bytes": 200},
]]  # fmt: skip


def test_per_type_shares_and_gmacs_are_computed_from_the_rows() -> None:
    (s,) = op_summary(OPS, model="m")
    by = {t.op_type: t for t in s.by_type}
    assert by["Conv"].time_share == pytest.approx(0.8)
    assert by["Conv"].macs_share == pytest.approx(1.0)
    assert by["Relu"].bytes_share == pytest.approx(0.5)
    # 4 MMACs in 400 us = 10 GMAC/s
    assert by["Conv"].gmacs_per_s == pytest.approx(10.0)
    assert by["Relu"].gmacs_per_s is None
    assert [o.op_name for o in s.top] == ["a", "b", "c"] or s.top[0].op_name == "a"


def test_unknown_model_names_the_models_that_have_rows() -> None:
    with pytest.raises(ResultsError, match="models with operator rows: m"):
        op_summary(OPS, model="x")
