"""LiteRT per-operator profiling through libLiteRt.so's profiler C API, on tiny converted models."""

from __future__ import annotations

from pathlib import Path

import litert_torch
import numpy as np
import pytest
import torch

from benchharness.ondevice import litert_profiler as lp

pytestmark = pytest.mark.skipif(not lp.available(), reason=f"{lp.unavailable_reason()}")

INPUT_SHAPE = (1, 3, 32, 32)  # small enough for a shared 2-core machine
RUNS = 5  # a median over a few runs is enough to check structure, not to benchmark
WARMUP = 2  # first runs allocate and pack weights
# LiteRT's events are nested in the timed run: none can outlast it (a small slack for the two
# clocks). How much of a run the operators cover is a timing ratio that depends on the machine
# (0.08-0.6 seen on a tiny model): benchmarks/ops_sum.py prints it, no test asserts it.
MAX_OPS_SHARE = 1.05


class _Tiny(torch.nn.Module):
    """conv -> relu -> depthwise conv -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = torch.nn.Linear(8 * 32 * 32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw(torch.relu(self.conv(x)))
        return self.fc(x.flatten(1))


class _WithArgmax(torch.nn.Module):
    """ARG_MAX is not taken by XNNPACK, so it splits the graph into two delegate partitions."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.c1(x))
        index = torch.argmax(x, dim=1, keepdim=True).float()
        return self.c2(x * index).mean(dim=(2, 3))


def _convert(module: torch.nn.Module, path: Path) -> str:
    torch.manual_seed(0)
    litert_torch.convert(module.eval(), (torch.randn(*INPUT_SHAPE),)).export(str(path))
    return str(path)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _convert(_Tiny(), tmp_path_factory.mktemp("litert") / "tiny.tflite")


@pytest.fixture(scope="module")
def argmax_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _convert(_WithArgmax(), tmp_path_factory.mktemp("litert") / "argmax.tflite")


@pytest.fixture(scope="module")
def tiny_profile(tiny_model: str) -> dict:
    return lp.profile_ops(tiny_model, threads=1, runs=RUNS, warmup=WARMUP)


def _graph_types_from_interpreter(model_path: str) -> list[str]:
    """The TFLite graph's op types as the Python interpreter sees them, for an independent check."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=model_path)
    return [op["op_name"] for op in interpreter._get_ops_details()]


def test_profile_has_documented_shape(tiny_profile: dict) -> None:
    assert tiny_profile["source"] == "litert-profiler"
    assert len(tiny_profile["run_ms"]) == RUNS
    assert len(tiny_profile["events_per_run"]) == RUNS
    assert tiny_profile["ops"]
    for row in tiny_profile["ops"]:
        assert isinstance(row["op_index"], int)
        assert isinstance(row["op_name"], str) and row["op_name"]
        assert isinstance(row["op_type"], str) and row["op_type"]
        assert row["calls"] == 1
        assert row["median_us"] >= 0 and row["mean_us"] >= 0


def test_xnnpack_reports_its_own_operators(tiny_profile: dict) -> None:
    rows = tiny_profile["ops"]
    assert {row["executor"] for row in rows} == {"xnnpack"}
    assert "CONV_2D" in {row["op_type"] for row in rows}
    assert "DEPTHWISE_CONV_2D" in {row["op_type"] for row in rows}
    assert any(row["op_name"].startswith("Convolution (NHWC") for row in rows)
    assert any(row["op_name"].startswith("Fully Connected") for row in rows)
    # The sizeable ops took measurable time.
    conv_us = sum(row["median_us"] for row in rows if row["op_type"] == "CONV_2D")
    assert conv_us > 0


def test_op_indices_join_the_tflite_graph(tiny_model: str, tiny_profile: dict) -> None:
    graph = [op["op_type"] for op in tiny_profile["graph_ops"]]
    assert graph == _graph_types_from_interpreter(tiny_model)
    for row in tiny_profile["ops"]:
        assert 0 <= row["op_index"] < len(graph)
        assert graph[row["op_index"]] == row["op_type"]
        assert row["op_index_source"] == "aligned"
        assert all(0 <= i < len(graph) for i in row["absorbed_op_indices"])
    # Every graph op is either profiled or absorbed by a profiled XNNPACK operator.
    covered = {row["op_index"] for row in tiny_profile["ops"]}
    covered |= {i for row in tiny_profile["ops"] for i in row["absorbed_op_indices"]}
    assert covered == set(range(len(graph)))


def test_runtime_own_run_time_nests_in_the_timed_run(tiny_profile: dict) -> None:
    # LiteRT's run phases and the invoke happen inside the timed call: invoke <= phases <= call
    p = tiny_profile
    for invoke, whole, ms in zip(p["invoke_us"], p["run_events_us"], p["run_ms"], strict=True):
        assert 0 < invoke <= whole <= ms * 1e3 * MAX_OPS_SHARE


def test_builtin_kernels_report_exact_node_indices(tiny_model: str) -> None:
    result = lp.profile_ops(tiny_model, threads=1, runs=3, warmup=1, kernel_mode="builtin")
    graph = [op["op_type"] for op in result["graph_ops"]]
    rows = result["ops"]
    assert [row["op_index"] for row in rows] == list(range(len(graph)))
    assert all(row["op_index_source"] == "event" for row in rows)
    assert [row["op_type"] for row in rows] == graph
    assert [row["op_name"] for row in rows] == graph


def test_partitions_around_a_tflite_kernel(argmax_model: str) -> None:
    result = lp.profile_ops(argmax_model, threads=1, runs=3, warmup=1)
    graph = [op["op_type"] for op in result["graph_ops"]]
    rows = result["ops"]
    argmax = [row for row in rows if row["op_type"] == "ARG_MAX"]
    assert len(argmax) == 1
    assert argmax[0]["executor"] == "tflite"
    assert argmax[0]["op_index_source"] == "event"
    assert graph[argmax[0]["op_index"]] == "ARG_MAX"
    xnn = [row for row in rows if row["executor"] == "xnnpack"]
    assert {row["xnnpack_partition"] for row in xnn} == {0, 1}
    convs = [row["op_index"] for row in xnn if row["op_type"] == "CONV_2D"]
    assert len(convs) == 2
    assert convs[0] < argmax[0]["op_index"] < convs[1]
    # Ops are listed in execution order.
    assert [row["exec_order"] for row in rows] == list(range(len(rows)))


def test_unprofiled_timing_and_input_checks(tiny_model: str) -> None:
    times = lp.measure_run_ms(tiny_model, threads=1, runs=3, warmup=1)
    assert len(times) == 3 and all(t > 0 for t in times)
    ones = [np.ones(INPUT_SHAPE, dtype=np.float32)]
    assert lp.profile_ops(tiny_model, threads=1, runs=1, warmup=0, input_arrays=ones)["ops"]
    with pytest.raises(ValueError, match="shape"):
        lp.profile_ops(
            tiny_model, threads=1, runs=1, warmup=0, input_arrays=[np.ones((1, 3), np.float32)]
        )
    with pytest.raises(ValueError, match="inputs"):
        lp.profile_ops(tiny_model, threads=1, runs=1, warmup=0, input_arrays=[])
    with pytest.raises(ValueError, match="kernel_mode"):
        lp.profile_ops(tiny_model, threads=1, runs=1, warmup=0, kernel_mode="gpu")


def test_alignment_folds_pads_and_keeps_one_to_many() -> None:
    names = [
        "Transpose (ND, X32) Transpose",
        "Convolution (NHWC, F32) IGEMM",
        "Convolution (NHWC, F32) DWConv",
        "Fully Connected (NC, F32) GEMM",
    ]
    types = ["TRANSPOSE", "PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "RELU", "FULLY_CONNECTED"]
    assert lp.align_xnnpack_ops(names, types) == [0, 2, 3, 5]
    # Dynamic-range quantised FULLY_CONNECTED: XNNPACK converts the input, then runs the GEMM.
    quantised = ["Convert (NC, F32, QDU8)", "Fully Connected (NC, QDU8, F32, QC8W) GEMM"]
    assert lp.align_xnnpack_ops(quantised, ["FULLY_CONNECTED"]) == [0, 0]
    assert lp.align_xnnpack_ops([], types) is None
