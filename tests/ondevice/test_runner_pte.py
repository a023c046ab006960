"""The device-side runner's pte format: an ExecuTorch program timed and profiled for real on this
host's CPU through its ExecuTorch class, imported as a device imports it (the whole runner process
is tests/test_pte_format.py's)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from benchharness.cost.artifact_cost import graph_cost
from benchharness.cost.pte_cost import edge_ops, edge_program, load_etrecord
from benchharness.export import pipeline, pte
from benchharness.export.cache import CacheEntry
from benchharness.parse.etdump import read_etdump
from benchharness.parse.op_join import litert_rows
from benchharness.runners import python as python_runner
from benchharness.zoo.registry import ModelSpec
from tests.export.test_pte_export import MIXED

RUNNER_DIR = python_runner.RUNNER_DIR
PROFILE_RUNS = 12


def export(spec: ModelSpec) -> CacheEntry:
    (outcome,) = pipeline.export_model(spec, ["pte"])
    assert outcome.entry is not None, outcome.error
    return outcome.entry


@pytest.fixture(scope="module")
def tiny(tiny_spec: ModelSpec) -> CacheEntry:
    return export(tiny_spec)


@pytest.fixture(scope="module")
def mixed() -> CacheEntry:
    return export(MIXED)


@pytest.fixture(scope="module")
def device() -> ModuleType:
    """runner_pte.py imported as the device imports it: beside protocol.py, no package."""
    sys.path.insert(0, str(RUNNER_DIR))
    try:
        spec = importlib.util.spec_from_file_location(
            "bh_executorch_under_test", RUNNER_DIR / "runner_pte.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        runner_spec = importlib.util.spec_from_file_location(
            "bh_runner_under_test", RUNNER_DIR / "runner.py"
        )
        assert runner_spec is not None and runner_spec.loader is not None
        runner = importlib.util.module_from_spec(runner_spec)
        runner_spec.loader.exec_module(runner)
        module.make_inputs = runner.make_inputs  # type: ignore[attr-defined]
    finally:
        sys.path.remove(str(RUNNER_DIR))
    return module


def test_threads_are_set_and_read_back_from_executorchs_pool(
    device: ModuleType, tiny: CacheEntry
) -> None:
    from executorch.extension.pybindings import portable_lib

    for threads in (2, 1):
        runner = device.ExecuTorchRunner(str(tiny.path), threads, np, device.make_inputs)
        assert portable_lib._threadpool_get_thread_count() == threads
        assert runner.device_timer() > 0


def test_the_input_is_copied_in_before_every_timed_inference(
    device: ModuleType, mixed: CacheEntry
) -> None:
    from executorch.runtime import Runtime

    runner = device.ExecuTorchRunner(str(mixed.path), 1, np, device.make_inputs)
    for _ in range(5):  # memory planning reuses the input's buffer: each run must start afresh
        runner.device_timer()
    got = runner.outputs()[0]
    once = Runtime.get().load_program(mixed.path).load_method("forward").execute(runner.inputs)
    np.testing.assert_allclose(got, once[0].numpy(), rtol=1e-6, atol=1e-6)
    assert runner.provider == "XNNPACK+portable"


def test_etdump_rows_align_to_the_edge_graph_and_carry_all_its_cost(
    device: ModuleType, tiny: CacheEntry, tmp_path: Path
) -> None:
    runner = device.ExecuTorchRunner(str(tiny.path), 1, np, device.make_inputs)
    profile = runner.profile(PROFILE_RUNS, str(tmp_path))
    assert profile.profile_file is not None
    read = read_etdump(Path(profile.profile_file), tiny.path, profile.warmup_runs or 0)
    assert read.runs == PROFILE_RUNS and read.execute_ms is not None and read.execute_ms > 0
    cost = graph_cost(tiny.path, "pte", tiny.sha256)
    rows = litert_rows(read.ops, cost)
    assert sum(r["macs"] or 0 for r in rows) == cost.macs
    convs = [op.op_index for op in cost.ops if op.op_type == "aten.convolution"]
    by_index = {op.op_index: op for op in read.ops if op.op_index >= 0}
    for index in convs:  # each convolution got an XNNPACK convolution or GEMM of its own
        name = by_index[index].op_name
        assert name.startswith(("Convolution", "Fully Connected")), name
    # XNNPACK's layout transposes are its own work: time, but no graph operator's cost
    transposes = [op for op in read.ops if op.op_name.startswith("Transpose")]
    assert transposes and all(op.op_index == -1 for op in transposes)
    assert all(op.median_us is not None and op.median_us >= 0 for op in read.ops)


def test_operators_on_portable_kernels_get_rows_of_their_own(
    device: ModuleType, mixed: CacheEntry, tmp_path: Path
) -> None:
    runner = device.ExecuTorchRunner(str(mixed.path), 1, np, device.make_inputs)
    profile = runner.profile(PROFILE_RUNS, str(tmp_path))
    assert profile.profile_file is not None
    ops = read_etdump(Path(profile.profile_file), mixed.path, profile.warmup_runs or 0).ops
    graph = edge_ops(edge_program(load_etrecord(pte.etrecord_path(mixed.path))))
    cumsum = next(op for op in graph if op.op_type == "aten.cumsum")
    (row,) = [op for op in ops if op.op_index == cumsum.index]
    assert row.op_name.startswith("native_call_cumsum") and row.op_type == "aten.cumsum"
    assert row.median_us is not None and row.median_us > 0


def test_the_runtime_is_imported_without_executorchs_compiler() -> None:
    # a fresh interpreter, as a runner process starts: the public module would pull in ``exir``
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import runner_pte; "
        "lib = runner_pte.import_runtime(); "
        "print(hasattr(lib, '_load_program'), 'executorch.exir' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(RUNNER_DIR)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False"]
