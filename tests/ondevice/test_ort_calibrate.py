"""The ORT profiler's per-node cost calibration: the hand-written chain model and its parsing.

Only structure is asserted (a valid model that ONNX and ONNX Runtime accept and that computes
what it says; a non-negative cost): how large the cost is depends on the machine and belongs in
``benchmarks/ops_sum.py``."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from benchharness.ondevice import ort_calibrate as oc


def test_chain_model_is_valid_onnx_that_adds_one_per_node() -> None:
    data = oc.chain_model(7)
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Add"] * 7
    assert model.opset_import[0].version == oc.OPSET
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = np.arange(oc.CHAIN_WIDTH, dtype=np.float32).reshape(1, -1)
    (y,) = session.run(None, {"x": x})
    np.testing.assert_array_equal(y, x + 7.0)
    with pytest.raises(ValueError):
        oc.chain_model(0)


def test_kernel_sums_per_run_skip_the_warmup_and_ignore_fences() -> None:
    def ev(name: str, ts: float, dur: float, cat: str = "Node") -> dict:
        return {"name": name, "ts": ts, "dur": dur, "cat": cat, "ph": "X"}

    events = []
    for r, durs in enumerate([(9.0, 9.0), (2.0, 3.0), (4.0, 1.0)]):
        start = 100.0 * r
        events.append(ev("model_run", start, 50.0, "Session"))
        events.append(ev("add0_fence_before", start + 1, 0.5))
        events += [ev(f"add{k}_kernel_time", start + 2 + 10 * k, d) for k, d in enumerate(durs)]
    events.append(ev("add9_kernel_time", 900.0, 40.0))  # outside every run
    assert oc.kernel_sums_us(events, 0) == [18.0, 5.0, 5.0]
    assert oc.kernel_sums_us(events, 1) == [5.0, 5.0]


def test_calibration_runs_here_and_gives_a_cost(tmp_path: Path) -> None:
    cost = oc.node_cost_us(ort, np, 1, ["CPUExecutionProvider"], str(tmp_path))
    assert cost >= 0.0
    assert list(tmp_path.iterdir()) == []  # its profiles are removed after reading


def test_calibration_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(oc.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
