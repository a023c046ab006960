"""ORT operator rows corrected by the profiler's calibrated cost per recorded node."""

from __future__ import annotations

import json

import pytest

from benchharness.cost.records import GraphCost, OpCost
from benchharness.parse.op_join import _match_ort, corrected_us, ort_rows
from benchharness.parse.optable import OpTime
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


def _op(index: int, name: str, op_type: str, macs: int) -> OpCost:
    return OpCost(index, name, op_type, macs, 2 * macs, 0, 0, (1, 8, 8, 8))


def _graph(ops: list[OpCost]) -> GraphCost:
    macs = sum(o.macs for o in ops)
    return GraphCost("onnx", ops, macs, 2 * macs, 0, 0, 0, 0, 0, 0)


def test_arm_nhwc_kernels_keep_the_graph_operators_they_ran() -> None:
    """ONNX Runtime on aarch64 (profiled on the emulated board): a convolution it moves to NHWC
    runs as ``NhwcFusedConv`` named ``<node>_token_<k>``, between two inserted ``Transpose``s.
    Its cost belonged to the convolution, not to whichever row came before it."""
    ops = [
        _op(0, "node_conv2d", "Conv", 100),
        _op(1, "node_mean", "ReduceMean", 0),
        _op(2, "node_view", "Reshape", 0),
        _op(3, "node_Conv_91", "Conv", 500),
        _op(4, "node_hardsigmoid", "HardSigmoid", 0),
    ]
    times = [
        OpTime(i, name, op_type, us, "median")
        for i, (name, op_type, us) in enumerate(
            [
                ("node_conv2d", "Conv", 10.0),
                ("node_mean", "ReduceMean", 2.0),
                ("node_view", "Reshape", 1.0),
                ("Transpose", "Transpose", 0.5),
                ("node_Conv_91_token_1", "NhwcFusedConv", 50.0),
                ("Transpose_token_9", "Transpose", 0.5),
            ]
        )
    ]
    groups = _match_ort(times, _graph(ops))
    names = [[o.op_name for o in g] for g in groups]
    assert names[2] == ["node_view"], names
    assert names[4] == ["node_Conv_91", "node_hardsigmoid"], names
    assert names[3] == [] and names[5] == []  # the runtime's own layout changes cost no MACs
