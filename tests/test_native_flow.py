"""`bench run` on a device whose profile names only the native tools, end to end.

Over the real adb client against the emulated phone (``tests/support/adbd.py``), with stand-ins
for ``benchmark_model`` and ``onnxruntime_perf_test`` installed in its ``/data/local/tmp``: no
x86-64 build of either tool can be installed here, so ``tests/support/native_tools.py`` plays the
binary (it checks the command line it is given and prints a real captured log; see its
docstring). The rows must say what those captured logs say; failures and garbage must become
failed rows with the tool's own error or a clear ParseError; resume must finish a failed job.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchharness.api import RunRequest, run
from benchharness.plan.options import Method, RunOptions
from benchharness.results.store import RunStore
from tests.runners.fixtures import FIXTURES
from tests.support.adbd import DEVICE_TMP, EmulatedDevice
from tests.support.native_tools import BM_FAILED, calls, install_stand_in

TINY = "tests.support.tiny:tiny_cnn"
SHAPE = "1x3x32x32"
QUICK = RunOptions(method=Method(quick=True))
BM_LOG = FIXTURES / "benchmark_model/tflite_benchmark_model_8.txt"  # median=1239807 us, n=50
BM_PROFILE_LOG = FIXTURES / "benchmark_model/tflite_benchmark_model_10.txt"  # op tables
PT_LOG = FIXTURES / "onnxruntime_perf_test/onnxruntime_perf_test_1.txt"  # P50 0.0199047 s
ORT_PROFILE = FIXTURES / "ort_profile/ort_profile_1.json"
GARBAGE = "Segmentation fault? no: just some text\nthat no tool prints\n"


def _profile(path: Path, fields: dict[str, Any], runtimes: dict[str, str]) -> Path:
    lines = [
        f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in fields.items()
    ]
    lines.append("[runtimes]")
    lines += [f'{k} = "{v}"' for k, v in runtimes.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _install(sandbox: Path, bm_log: Path = BM_LOG, pt_log: Path = PT_LOG, **kw: Any) -> None:
    install_stand_in(sandbox / "benchmark_model", "benchmark_model", bm_log,
                     profiling_log=BM_PROFILE_LOG, **kw)  # fmt: skip
    install_stand_in(sandbox / "onnxruntime_perf_test", "onnxruntime_perf_test", pt_log,
                     profile_json=ORT_PROFILE, **kw)  # fmt: skip


NATIVE = {
    "benchmark_model": f"{DEVICE_TMP}/benchmark_model",
    "onnxruntime_perf_test": f"{DEVICE_TMP}/onnxruntime_perf_test",
}


@pytest.fixture
def phone(
    adb_server: Any, adb_device_factory: Callable[..., EmulatedDevice],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> Callable[..., tuple[EmulatedDevice, Path]]:  # fmt: skip
    """``make(legacy=False)``: an emulated phone and a profile naming only its native tools."""
    for key, value in adb_server.env.items():
        monkeypatch.setenv(key, value)

    def make(legacy: bool = False) -> tuple[EmulatedDevice, Path]:
        device = adb_device_factory(legacy=legacy)
        fields = {"name": "phone", "transport": "adb", "serial": device.serial,
                  "workdir": f"{DEVICE_TMP}/benchharness", "threads": 1, "affinity": "1"}  # fmt: skip
        return device, _profile(tmp_path / "phone.toml", fields, NATIVE)

    return make


@pytest.mark.parametrize("legacy", [False, True], ids=["shell_v2", "legacy"])
def test_bench_run_with_only_native_tools_over_adb(
    legacy: bool, phone: Callable[..., tuple[EmulatedDevice, Path]], tmp_path: Path
) -> None:
    device, profile = phone(legacy)
    _install(device.sandbox)
    store = run(RunRequest(devices=(str(profile),), models=TINY, input_shape=SHAPE, options=QUICK,
                           results_dir=tmp_path / "results"))  # fmt: skip
    rows = {r.format: r for r in store.runs}
    assert {f: r.status for f, r in rows.items()} == {"onnx": "ok", "tflite": "ok"}, store.runs

    tfl = rows["tflite"]
    assert tfl.runtime == "tflite-benchmark_model" and tfl.transport == "adb"
    assert tfl.stats_source == "benchmark_model"
    assert tfl.median_ms == pytest.approx(1239.807)  # median=1239807 in the captured log
    assert tfl.n == 50 and tfl.processes == 1
    assert tfl.mean_ms == pytest.approx(1240.27) and tfl.min_ms == pytest.approx(1238.588)
    assert tfl.p90_ms is None and "FEW_SAMPLES" in tfl.flag_list  # 50 < 64
    assert tfl.cold_ms == pytest.approx(1357.602) and tfl.load_ms == pytest.approx(5.579)
    assert tfl.runtime_version.startswith("sha256:")
    assert tfl.runtime_version.endswith(f"{DEVICE_TMP}/benchmark_model")
    assert tfl.cpu_model, "the environment probe read nothing on the device"
    # "Memory footprint delta from the start of the tool (MB): init=6.36328 overall=109.832"
    assert tfl.mem_source == "benchmark_model"
    assert tfl.mem_init_bytes == round(6.36328 * 2**20)
    assert tfl.mem_peak_bytes == round(109.832 * 2**20)
    assert tfl.mem_estimate_bytes == tfl.model_bytes + tfl.activation_bytes

    onx = rows["onnx"]
    assert onx.runtime == "onnxruntime_perf_test" and onx.stats_source == "onnxruntime_perf_test"
    assert onx.median_ms == pytest.approx(19.9047) and onx.n == 100
    assert onx.p90_ms == pytest.approx(20.0251) and onx.mean_ms == pytest.approx(19.918)
    assert onx.load_ms == pytest.approx(50.8382) and onx.warmup_n == 1
    # "Peak working set size: 109531136 bytes": the whole process, no baseline printed
    assert onx.mem_source == "onnxruntime_perf_test" and onx.mem_peak_bytes == 109531136
    assert onx.mem_baseline_bytes is None and onx.mem_init_bytes is None

    assert store.samples == [], "a native tool prints no samples; none may be invented"
    # ops.csv from the op-profiling pass (benchmark_model) and the pulled -p profile (perf_test)
    tfl_ops = [o for o in store.ops if o.format == "tflite"]
    assert "Fully Connected (NC, PF32) GEMM" in {o.op_type for o in tfl_ops}
    assert sum(o.macs or 0 for o in tfl_ops) == tfl.macs, "graph MACs lost in the join"
    onnx_ops = [o for o in store.ops if o.format == "onnx"]
    assert [o.op_name for o in onnx_ops][:2] == ["DmlFusedNode_0_41", "DmlFusedNode_4_63"]
    assert onnx_ops[0].median_us == 378.0

    # what the tools were asked: the pushed artifact, pinned, and docs/method.md's --quick mapping
    bm_calls = calls(device.sandbox / "benchmark_model")
    timing, profiling = bm_calls
    graph = Path(timing["argv"][0].removeprefix("--graph="))
    assert graph.parent == device.sandbox / "benchharness" / "artifacts"
    assert hashlib.sha256(graph.read_bytes()).hexdigest() == tfl.artifact_sha256
    assert timing["cpus"] == [0], "taskset 1 was not applied"
    assert timing["argv"][1:] == ["--num_threads=1", "--num_runs=64", "--warmup_runs=10",
                                  "--min_secs=5", "--report_peak_memory_footprint=true",
                                  "--max_secs=120", "--warmup_min_secs=1"]  # fmt: skip
    assert "--enable_op_profiling=true" in profiling["argv"]
    assert "--report_peak_memory_footprint=true" not in profiling["argv"]
    pilot, timed, profiled = calls(device.sandbox / "onnxruntime_perf_test")
    assert pilot["argv"][:4] == ["-m", "times", "-r", "10"]
    # -r covers 5 s at the pilot's 19.9047 ms per inference
    assert timed["argv"][:4] == ["-m", "times", "-r", str(math.ceil(5000 / 19.9047))]
    assert "-p" in profiled["argv"] and timed["cpus"] == [0]
    # the run's work directory (profiles included) is gone; the artifacts stay for the next run
    assert not (device.sandbox / "benchharness" / store.run_id).exists()


def test_tool_failure_and_garbage_become_failed_rows_then_resume_finishes(
    phone: Callable[..., tuple[EmulatedDevice, Path]], tmp_path: Path
) -> None:
    device, profile = phone()
    failed_log = tmp_path / "failed.txt"
    failed_log.write_text(BM_FAILED)
    garbage = tmp_path / "garbage.txt"
    garbage.write_text(GARBAGE)
    install_stand_in(device.sandbox / "benchmark_model", "benchmark_model", failed_log,
                     exit_status=1)  # fmt: skip
    install_stand_in(device.sandbox / "onnxruntime_perf_test", "onnxruntime_perf_test", garbage)
    req = RunRequest(devices=(str(profile),), models=TINY, input_shape=SHAPE, options=QUICK,
                     results_dir=tmp_path / "results")  # fmt: skip
    store = run(req)
    rows = {r.format: r for r in store.runs}
    assert {f: r.status for f, r in rows.items()} == {"onnx": "failed", "tflite": "failed"}
    tfl_error = rows["tflite"].error
    assert tfl_error.startswith("RunnerError: benchmark_model failed (exit status 1)")
    assert "Registration failed.; Failed to initialize the interpreter" in tfl_error
    onnx_error = rows["onnx"].error
    assert onnx_error.startswith("ParseError: onnxruntime_perf_test's output cannot be read")
    assert "not onnxruntime_perf_test output" in onnx_error and "Segmentation fault?" in onnx_error

    _install(device.sandbox)  # the tools are fixed on the phone
    again = run(RunRequest(resume=store.run_id, results_dir=tmp_path / "results"))
    assert sorted((r.format, r.status) for r in again.runs) == [
        ("onnx", "ok"),
        ("tflite", "ok"),
    ]
    assert len(RunStore.open(tmp_path / "results", store.run_id).runs) == 2


def test_missing_tool_and_format_without_a_tool_on_this_host(tmp_path: Path) -> None:
    """The same runner over the local transport: a tool that is not there, and a profile that
    names no tool for a format."""
    tools = tmp_path / "tools"
    install_stand_in(tools / "benchmark_model", "benchmark_model", BM_LOG,
                     profiling_log=BM_PROFILE_LOG)  # fmt: skip
    profile = _profile(
        tmp_path / "host.toml",
        {"name": "host", "transport": "local", "affinity": "1"},
        {"benchmark_model": str(tools / "benchmark_model")},
    )
    store = run(RunRequest(devices=(str(profile),), models=TINY, input_shape=SHAPE,
                           options=replace(QUICK, processes=2),
                           results_dir=tmp_path / "results"))  # fmt: skip
    rows = {r.format: r for r in store.runs}
    assert rows["onnx"].status == "failed"
    assert rows["onnx"].error.startswith("DeviceProfileError: host has no way to run onnx")
    assert 'onnxruntime_perf_test = "' in rows["onnx"].error
    tfl = rows["tflite"]
    assert tfl.status == "ok" and tfl.processes == 2 and tfl.n == 100
    # two processes: the median of the process medians, no pooled percentiles
    assert tfl.median_ms == pytest.approx(1239.807) and tfl.p90_ms is None
    assert tfl.process_medians_ms == [1239.81, 1239.81]  # typed on reload
    # no threads given: one per pinned core, as docs/method.md says
    assert all("--num_threads=1" in c["argv"] for c in calls(tools / "benchmark_model"))

    gone = _profile(
        tmp_path / "gone.toml",
        {"name": "gone", "transport": "local"},
        {"benchmark_model": str(tmp_path / "nowhere" / "benchmark_model")},
    )
    store = run(RunRequest(devices=(str(gone),), models=TINY, input_shape=SHAPE, options=QUICK,
                           formats=("tflite",), results_dir=tmp_path / "results"))  # fmt: skip
    (row,) = store.runs
    assert row.status == "failed" and "exit status 127" in row.error
    assert "bench devices check" in row.error
