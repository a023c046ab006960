"""Kernels read from the runtime's own graph: ONNX Runtime's optimized model, real sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from benchharness.parse import ort_profile
from benchharness.predict.fusion import detect_kernels
from benchharness.predict.join import Evidence, measured_kernels
from benchharness.predict.predictor import Predictor
from benchharness.predict.runtime_view import (
    KERNELS_INFERRED,
    KERNELS_READ,
    MAX_VIEW_NODES,
    RuntimeView,
    host_cpu_model,
    ort_view,
    read_kernels,
)
from benchharness.predict.samples import Measured, measure_artifact
from benchharness.predict.wiring import Graph, read_graph
from benchharness.results.schema import OpRow


def _profiled_rows(path: Path, tmp_path: Path) -> list[OpRow]:
    """The rows a real profiled ORT session gives, as the runner's parser reads them."""
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "trace")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, 32, 32), np.float32)
    for _ in range(3):
        session.run(None, {session.get_inputs()[0].name: x})
    events = ort_profile.load_profile_events(Path(session.end_profiling()).read_text())
    return [
        OpRow(op_index=t.op_index, op_name=t.op_name, op_type=t.op_type, median_us=t.per_run_us)
        for t in ort_profile.aggregate_node_times(events)
    ]


def _names(kernels: Any) -> list[list[str]]:
    return [[n.name for n in k.nodes] for k in kernels]


@pytest.fixture(scope="module")
def tiny_onnx(tiny_artifacts: Any) -> tuple[Path, Graph]:
    path: Path = tiny_artifacts["onnx"].path
    return path, read_graph(path, "onnx")


def test_the_optimized_graph_holds_the_profiles_rows_name_for_name(
    tiny_onnx: tuple[Path, Graph], tmp_path: Path
) -> None:
    path, _ = tiny_onnx
    view = ort_view(path)
    assert view is not None and view.runtime == f"onnxruntime {ort.__version__}"
    rows = _profiled_rows(path, tmp_path)
    graph = read_graph(path, "onnx")

    def of_the_graph(names: list[str]) -> list[str]:
        # the nodes named after graph nodes (runtime-made ones, ReorderOutput and
        # ReorderOutput_token_6, take their names in an order that varies from session to session)
        return [n for n in names if ort_profile.graph_name(n) in graph.by_name or "_nchwc" in n]

    view_names = [name for name, _ in view.nodes]
    row_names = [r.op_name for r in rows]
    assert of_the_graph(view_names) == of_the_graph(row_names)
    assert len(of_the_graph(view_names)) >= 5  # the convolutions, the mean, the reshape, the gemm
    assert sorted(t for _, t in view.nodes) == sorted(r.op_type for r in rows)


def test_kernels_read_from_the_runtime_are_the_kernels_it_was_measured_with(
    tiny_onnx: tuple[Path, Graph], tmp_path: Path
) -> None:
    path, graph = tiny_onnx
    view = ort_view(path)
    assert view is not None
    measured, _ = measured_kernels(graph, _profiled_rows(path, tmp_path))
    read = read_kernels(graph, view)
    assert _names(read) == _names(measured)
    assert all(k.time_us is None and k.rows == 0 for k in read)
    # ORT ran the convolutions with their batch norm / activation inside: read, not guessed
    assert any(k.head.type == "Conv" and len(k.nodes) > 1 for k in read)
    # without evidence the inference keeps every node apart: the reading is what knows
    assert len(detect_kernels(graph, Evidence())) > len(read)


def test_a_file_no_session_loads_has_no_view(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert ort_view(bad) is None
    assert ort_view(tmp_path / "missing.onnx") is None


def test_view_rows_place_runtime_made_nodes_as_measured_rows_are() -> None:
    from tests.predict.test_join import _conv_relu_mean

    g = _conv_relu_mean().graph()
    view = RuntimeView(
        "onnxruntime 0",
        (
            ("ReorderInput", "ReorderInput"),
            ("relu_4_nchwc", "Conv"),
            ("ReorderOutput_token_7", "ReorderOutput"),
            ("node_ReduceMean_2", "ReduceMean"),
        ),
    )
    conv, mean = read_kernels(g, view)
    assert [n.type for n in conv.nodes] == ["Conv", "Relu"] and mean.head.type == "ReduceMean"
    assert len(view.rows()) == 4 and MAX_VIEW_NODES > 4


def _fingerprint(cpu: str | None, version: str) -> dict[str, Any]:
    return {
        "device": "local",
        "cpu_model": cpu,
        "threads": 2,
        "runtimes": {"onnx": {"runtime": "onnxruntime", "version": version}},
    }


@pytest.fixture(scope="module")
def measured(tiny_onnx: tuple[Path, Graph], tmp_path_factory: pytest.TempPathFactory) -> Measured:
    """Six kernel models from one real profile of the tiny CNN (its times scaled)."""
    path, graph = tiny_onnx
    rows = _profiled_rows(path, tmp_path_factory.mktemp("trace"))
    m = Measured()
    for i in range(6):
        scale = 1.0 + 0.2 * i
        scaled = [
            OpRow(op_index=r.op_index, op_name=r.op_name, op_type=r.op_type,
                  median_us=(r.median_us or 0.0) * scale)
            for r in rows
        ]  # fmt: skip
        total = sum(r.median_us or 0.0 for r in scaled)
        m.add(measure_artifact(graph, scaled, "random", f"k{i}", total * 1.1))
    return m


def test_a_predictor_reads_the_graph_only_where_this_host_runs_the_devices_runtime(
    tiny_onnx: tuple[Path, Graph], measured: Measured
) -> None:
    path, graph = tiny_onnx
    here = Predictor.fit(measured, _fingerprint(host_cpu_model(), ort.__version__))
    assert here.reads_runtime_graph("onnx") and not here.reads_runtime_graph("tflite")
    pred = here.predict_graph(graph)
    view = ort_view(path)
    assert view is not None
    assert pred.kernels_from == KERNELS_READ
    assert [k.nodes for k in pred.kernels] == _names(read_kernels(graph, view))
    # the evaluation's comparison: the same predictor, kernels inferred from its evidence
    inferred = here.predict_graph(graph, infer=True)
    assert inferred.kernels_from == KERNELS_INFERRED
    model = here.formats["onnx"]
    assert [k.nodes for k in inferred.kernels] == _names(detect_kernels(graph, model.evidence))
    for other in (
        _fingerprint("another CPU", ort.__version__),
        _fingerprint(host_cpu_model(), "0.0.1"),
        _fingerprint(None, ort.__version__),
    ):
        elsewhere = Predictor.fit(measured, other)
        assert not elsewhere.reads_runtime_graph("onnx")
        assert elsewhere.predict_graph(graph).kernels_from == KERNELS_INFERRED
    # a graph without its file (synthetic, or read from elsewhere) is inferred too
    graph_only = Graph(graph.format, graph.nodes, graph.cost)
    assert here.predict_graph(graph_only).kernels_from == KERNELS_INFERRED
