"""``--fail-on`` as data: which matches fail a gate, and the line CI prints."""

from __future__ import annotations

import pytest

from benchharness.analysis.gates import FailOn, apply_gates, parse_fail_on_specs
from benchharness.errors import UsageError
from tests.analysis.test_comparison import compare_one, measure


def test_specs_parse_once_per_gate() -> None:
    assert parse_fail_on_specs([]) == FailOn()
    both = parse_fail_on_specs(["median:5%", "peak_mem:10%"])
    assert both.latency_spec == "median:5%" and both.latency == pytest.approx(0.05)
    assert both.memory == pytest.approx(0.10)
    for bad in (["median:5%", "median:2%"], ["peak_mem:5%", "peak_mem:9%"], ["p99:5%"]):
        with pytest.raises(UsageError):
            parse_fail_on_specs(bad)


def test_a_slowdown_fails_the_latency_gate_and_says_where() -> None:
    result = compare_one(measure("m", seed=1), measure("m", seed=2, scale=1.08))
    gated = apply_gates(result, [], parse_fail_on_specs(["median:5%"]))
    assert gated.failed and gated.latency_gate is not None and gated.memory_gate is None
    assert gated.latency_gate.failing == ["m [onnx/fp32]"]
    assert gated.latency_gate.message().startswith(
        "GateFailed: significant slowdown beyond median:5% in m [onnx/fp32]; investigate"
    )
    data = gated.to_dict()
    assert data["gate_failed"] is True and data["gate_threshold"] == pytest.approx(0.05)
    assert data["memory"] == [] and data["memory_gate_threshold"] is None
    assert not apply_gates(result, [], parse_fail_on_specs(["median:10%"])).failed
    assert not apply_gates(result, [], FailOn()).failed
