"""ORT operator rows corrected by the profiler's calibrated cost per recorded node."""

from __future__ import annotations

import json

import pytest

from benchharness.parse.op_join import corrected_us, ort_rows
from benchharness.results.rows import op_rows as finish_rows
from tests.parse.test_ort_profile import three_runs


def test_correction_takes_the_node_cost_once_per_call() -> None:
    assert corrected_us(40.0, 1, 3.0) == 37.0
    assert corrected_us(40.0, 2, 3.0) == 34.0
    assert corrected_us(2.0, 1, 3.0) == 0.0  # a node faster than the cost is free, not negative
    assert corrected_us(40.0, 1, None) == 40.0 and corrected_us(40.0, 1, 0.0) == 40.0
    assert corrected_us(None, 1, 3.0) is None
    assert corrected_us(40.0, None, 3.0) == 37.0


def test_ort_rows_keep_the_raw_figure_beside_the_corrected_one() -> None:
    text = json.dumps(three_runs())
    raw = ort_rows(text, 0, None)
    assert [(r["median_us"], r["median_raw_us"]) for r in raw] == [(44.0, 44.0), (15.0, 15.0)]
    fixed = ort_rows(text, 0, None, node_cost_us=4.0)
    # Conv: one call a run; Relu: a median of one call a run (2 in the second run)
    assert [(r["median_us"], r["median_raw_us"]) for r in fixed] == [(40.0, 44.0), (11.0, 15.0)]
    shares = [r.share for r in finish_rows(fixed, {"model": "m"})]
    assert shares == pytest.approx([40.0 / 51.0, 11.0 / 51.0])  # shares of the corrected sum
