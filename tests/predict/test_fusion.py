"""Fusion detection: nn-Meter's pair rule on a pair known to fuse and one known not to, and the
kernels a graph is grouped into from the fusion evidence of measured profiles."""

from __future__ import annotations

import pytest

from benchharness.predict.fusion import PairResult, detect_kernels, model_time_us, pair_results
from benchharness.predict.join import Evidence
from benchharness.results.schema import OpRow
from tests.predict.synthetic import Builder, conv_us, reduce_us, relu_us

#: A 1x1 convolution and a ReLU on 64x56x56, timed by the fake device of synthetic.py.
CONV_MACS, CONV_BYTES, ACT_BYTES = 64 * 64 * 56 * 56, 2 * 64 * 56 * 56 * 4, 2 * 64 * 56 * 56 * 4


def _rows(*times: tuple[str, float]) -> list[OpRow]:
    edges = [OpRow(op_type="TRANSPOSE", median_us=40.0)]  # a layout change at the graph edge
    return [*edges, *(OpRow(op_type=t, median_us=us) for t, us in times), *edges]


def test_a_pair_that_fuses_and_one_that_does_not() -> None:
    conv = conv_us(CONV_MACS, CONV_BYTES, 1)
    relu = relu_us(ACT_BYTES)
    mean = reduce_us(ACT_BYTES)
    times = {
        ("onnx", "pair-conv"): model_time_us(_rows(("Conv", conv))),
        ("onnx", "pair-relu"): model_time_us(_rows(("Relu", relu))),
        # fused: the ReLU runs inside the convolution, its pass over memory is saved
        ("onnx", "pair-conv+relu"): model_time_us(_rows(("Conv", conv + 0.1 * relu))),
        ("onnx", "pair-gap"): model_time_us(_rows(("ReduceMean", mean))),
        # not fused: both run, a little slower together (cache)
        ("onnx", "pair-conv+gap"): model_time_us(
            _rows(("Conv", conv), ("ReduceMean", mean * 1.05))
        ),
    }
    results = {
        (r.first, r.second): r
        for r in pair_results([("conv", "relu"), ("conv", "gap"), ("conv", "add")], times)
    }
    assert set(results) == {("conv", "relu"), ("conv", "gap")}  # conv+add was not measured
    assert results[("conv", "relu")].fused
    assert not results[("conv", "gap")].fused
    assert results[("conv", "relu")].t1 == pytest.approx(conv)  # the edge transposes left out


def test_the_rule_is_half_the_cheaper_operator() -> None:
    assert PairResult("onnx", "a", "b", 100.0, 40.0, 119.0).fused  # saves 21 > 20
    assert not PairResult("onnx", "a", "b", 100.0, 40.0, 121.0).fused  # saves 19
    assert not PairResult("onnx", "a", "b", 100.0, 40.0, 145.0).fused  # slower together


def _graph() -> Builder:
    b = Builder()
    x, y = (1, 8, 8, 8), (1, 16, 8, 8)
    b.add("Conv", ["input"], "c", [x], y, macs=1, attrs={"k": 1, "s": 1, "g": 1})
    b.add("Relu", ["c"], "r", [y], y)
    b.add("ReduceMean", ["r"], "m", [y], (1, 16, 1, 1))
    b.add("Reshape", ["m"], "f", [(1, 16, 1, 1)], (1, 16))
    return b


def test_kernels_follow_the_majority_of_the_runtime_s_choices() -> None:
    g = _graph().graph()
    ev = Evidence(
        down={
            ("Conv", "Relu", "tail"): [9, 10],
            ("Conv", "ReduceMean", "tail"): [0, 10],
            ("ReduceMean", "Reshape", "tail"): [4, 10],
        },
        alone={"Reshape": [7, 1]},  # reshapes mostly had no time of their own
    )
    kernels = detect_kernels(g, ev)
    assert [[n.type for n in k.nodes] for k in kernels] == [["Conv", "Relu"], ["ReduceMean"]]


def test_without_evidence_every_node_is_its_own_kernel() -> None:
    g = _graph().graph()
    assert len(detect_kernels(g, Evidence())) == 4
