"""The native-tool runner's pieces: which runner a job gets, the command lines docs/method.md maps to,
the conversion of real captured tool output into the python runner's result, the statistics of
printed aggregates, the environment probe and the operator alignment."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from benchharness.cost.records import OpCost
from benchharness.dispatch.inspect import DeviceReport, parse_probe
from benchharness.errors import DeviceProfileError, ParseError, RunnerError, UsageError
from benchharness.ondevice import probe
from benchharness.ondevice.protocol import RunnerResult
from benchharness.parse.native_result import align_benchmark_model_ops
from benchharness.parse.op_join import litert_rows
from benchharness.plan.options import Method
from benchharness.profiles.device_profile import DeviceProfile, parse_profile
from benchharness.results.rows import tool_stats
from benchharness.runners.native import (
    BENCHMARK_MODEL,
    PERF_TEST,
    benchmark_model_argv,
    benchmark_model_profile,
    benchmark_model_result,
    native_tool,
    perf_test_argv,
    perf_test_result,
)
from benchharness.runners.native_invoke import Invocation, parse_environment, perf_test_runs
from benchharness.runners.python import RunnerSettings
from benchharness.stats.summary import DEFAULT, QUICK, ToolStats, summarize_tool_stats
from tests.runners.fixtures import fixture_text
from tests.support.native_tools import BM_FAILED

BM8 = "benchmark_model/tflite_benchmark_model_8.txt"
BM2 = "benchmark_model/tflite_benchmark_model_2.txt"
BM10 = "benchmark_model/tflite_benchmark_model_10.txt"
PT1 = "onnxruntime_perf_test/onnxruntime_perf_test_1.txt"
PT3 = "onnxruntime_perf_test/onnxruntime_perf_test_3.txt"
VERSION = "sha256:0123456789abcdef /data/local/tmp/tool"


def profile(**fields: Any) -> DeviceProfile:
    return DeviceProfile(name=fields.pop("name", "phone"), transport="adb", serial="x", **fields)


def inv(text: str, returncode: int = 0) -> Invocation:
    return Invocation(
        argv=["tool"], output=text, returncode=returncode, env_start=None, env_end=None
    )


# ---------------------------------------------------------------- which runner


NATIVE = {"benchmark_model": "/data/local/tmp/bm", "onnxruntime_perf_test": "/data/local/tmp/pt"}


def test_auto_takes_python_when_the_profile_names_it() -> None:
    p = profile(runtimes={"python": "/usr/bin/python3", **NATIVE})
    assert native_tool(p, "tflite") is None and native_tool(p, "onnx") is None


def test_auto_takes_the_formats_tool_without_python() -> None:
    p = profile(runtimes=dict(NATIVE))
    assert native_tool(p, "tflite") is BENCHMARK_MODEL
    assert native_tool(p, "onnx") is PERF_TEST


def test_auto_without_any_runtime_keeps_the_default_python() -> None:
    assert native_tool(profile(), "onnx") is None


def test_a_format_with_no_way_to_run_it_says_what_to_add() -> None:
    p = profile(runtimes={"benchmark_model": "/data/local/tmp/bm"}, path=Path("devices/p.toml"))
    with pytest.raises(DeviceProfileError) as err:
        native_tool(p, "onnx")
    message = str(err.value)
    assert 'onnxruntime_perf_test = "/data/local/tmp/onnxruntime_perf_test"' in message
    assert "python = " in message and "devices/p.toml" in message and "--formats" in message
    with pytest.raises(DeviceProfileError, match="add `python = "):
        native_tool(p, "torch")  # no native tool runs torch models


def test_runner_field_forces_one_runner() -> None:
    both = {"python": "/usr/bin/python3", **NATIVE}
    assert native_tool(profile(runtimes=both, runner="native"), "onnx") is PERF_TEST
    assert native_tool(profile(runtimes=dict(NATIVE), runner="python"), "onnx") is None
    with pytest.raises(DeviceProfileError, match="runner = 'native'"):
        native_tool(profile(runtimes={"python": "/p"}, runner="native"), "tflite")


def test_profile_runner_field_is_validated() -> None:
    base = {"name": "p", "transport": "local"}
    assert parse_profile(base).runner == "auto"
    assert parse_profile({**base, "runner": "native"}).runner == "native"
    with pytest.raises(DeviceProfileError, match="field 'runner': expected one of auto"):
        parse_profile({**base, "runner": "fast"})


# ---------------------------------------------------------------- command lines


def test_benchmark_model_quick_maps_to_the_tools_own_stopping_flags() -> None:
    settings = RunnerSettings(fmt="tflite", method=Method(quick=True), threads=4, affinity="f0")
    argv = benchmark_model_argv("/data/local/tmp/bm", "/data/local/tmp/m.tflite", settings)
    assert argv == [
        "taskset", "f0", "/data/local/tmp/bm", "--graph=/data/local/tmp/m.tflite",
        "--num_threads=4", f"--num_runs={QUICK.min_n}", "--warmup_runs=10", "--min_secs=5",
        "--report_peak_memory_footprint=true", "--max_secs=120", "--warmup_min_secs=1",
    ]  # fmt: skip


def test_benchmark_model_default_and_overrides() -> None:
    argv = benchmark_model_argv("bm", "m.tflite", RunnerSettings(fmt="tflite"))
    assert f"--num_runs={DEFAULT.min_n}" in argv and "--min_secs=0.5" in argv
    assert "--max_secs=10" in argv  # several short invocations, as the python runner's processes
    assert not any(a.startswith("--num_threads") for a in argv)  # the tool's default
    custom = RunnerSettings(fmt="tflite", method=Method(min_n=20, min_s=0.5, max_s=30, warmup_min_s=0.1))
    argv = benchmark_model_argv("bm", "m.tflite", custom)
    assert {"--num_runs=20", "--min_secs=0.5", "--max_secs=30", "--warmup_min_secs=0.1"} <= set(
        argv
    )


def test_benchmark_model_profiling_pass_runs_profile_runs_with_the_profiler() -> None:
    settings = RunnerSettings(fmt="tflite", method=Method(quick=True), profile_runs=50)
    argv = benchmark_model_argv("bm", "m.tflite", settings, op_profiling=True)
    assert "--enable_op_profiling=true" in argv
    assert "--num_runs=50" in argv and "--min_secs=0" in argv
    assert "--report_peak_memory_footprint=true" not in argv  # its memory is never read


def test_perf_test_runs_cover_min_n_and_min_s_within_the_cap() -> None:
    assert perf_test_runs(QUICK, None) == QUICK.min_n  # no estimate: the count alone
    assert perf_test_runs(QUICK, 19.9047) == math.ceil(5000 / 19.9047)  # 252 >= 64
    assert perf_test_runs(QUICK, 1000.0) == QUICK.min_n  # 64 inferences take longer than 5 s
    assert perf_test_runs(DEFAULT, 500.0) == 20  # 10 s cap: 20 of the 50 wanted
    assert perf_test_runs(DEFAULT, 2.0) == 250  # 0.5 s of 2 ms inferences


def test_perf_test_argv_passes_the_execution_provider() -> None:
    settings = RunnerSettings(fmt="onnx", threads=2, affinity="c0",
                              providers=("XnnpackExecutionProvider", "CPUExecutionProvider"))  # fmt: skip
    argv = perf_test_argv("pt", "m.onnx", settings, 100, profile_prefix="/w/p")
    assert argv == ["taskset", "c0", "pt", "-m", "times", "-r", "100", "-I", "-x", "2", "-s",
                    "-p", "/w/p", "-e", "xnnpack", "m.onnx"]  # fmt: skip
    cpu_only = RunnerSettings(fmt="onnx", providers=("CPUExecutionProvider",))
    assert "-e" not in perf_test_argv("pt", "m.onnx", cpu_only, 10)
    with pytest.raises(DeviceProfileError, match="no -e name"):
        perf_test_argv("pt", "m.onnx", RunnerSettings(fmt="onnx", providers=("FooEP",)), 10)


# ---------------------------------------------------------------- output -> result


def test_benchmark_model_newest_log_becomes_the_runner_result() -> None:
    settings = RunnerSettings(fmt="tflite", threads=1)
    r = benchmark_model_result(BENCHMARK_MODEL, inv(fixture_text(BM8)), VERSION, settings)
    assert r.ok and r.samples_ms == [] and r.stats_source == "benchmark_model"
    assert r.runtime == "tflite-benchmark_model" and r.runtime_version == VERSION
    stats = r.tool_stats
    assert stats is not None
    assert stats.n == 50
    assert stats.median == pytest.approx(1239.807)
    assert stats.mean == pytest.approx(1240.27)
    assert stats.min == pytest.approx(1238.588) and stats.max == pytest.approx(1252.566)
    # the tool's population std (2565 us) as a sample std
    assert stats.std == pytest.approx(2.565 * math.sqrt(50 / 49))
    assert stats.p90 is None  # benchmark_model prints p5/p95, never p90
    assert r.load_ms == pytest.approx(5.579) and r.cold_ms == pytest.approx(1357.602)
    assert r.warmup_n == 1
    assert r.threads == 4  # as the captured command line said
    assert r.ops_reference_ms == stats.mean


def test_benchmark_model_old_log_without_a_median_leaves_it_empty() -> None:
    settings = RunnerSettings(fmt="tflite")
    r = benchmark_model_result(BENCHMARK_MODEL, inv(fixture_text(BM2)), VERSION, settings)
    stats = r.tool_stats
    assert stats is not None
    assert stats.n == 50 and stats.median is None and stats.mean == pytest.approx(249.684)
    summary = summarize_tool_stats([stats])
    assert summary.median is None and summary.as_row()["median_ms"] is None


def test_benchmark_model_failure_keeps_the_tools_error() -> None:
    with pytest.raises(RunnerError) as err:
        benchmark_model_result(BENCHMARK_MODEL, inv(BM_FAILED, 1), VERSION, RunnerSettings("t"))
    assert "benchmark_model failed (exit status 1)" in str(err.value)
    assert "Registration failed." in str(err.value) and "Benchmarking failed." in str(err.value)


def test_garbage_is_a_parse_error_and_a_missing_binary_says_so() -> None:
    with pytest.raises(ParseError, match="not TFLite benchmark_model output"):
        benchmark_model_result(
            BENCHMARK_MODEL, inv("hello\nworld\n"), VERSION, RunnerSettings("tflite")
        )
    missing = inv("sh: /data/local/tmp/bm: not found", 127)
    with pytest.raises(RunnerError, match=r"exit status 127.*not found.*bench devices check"):
        benchmark_model_result(BENCHMARK_MODEL, missing, VERSION, RunnerSettings("tflite"))


def test_benchmark_model_operator_table_becomes_profile_rows() -> None:
    prof = benchmark_model_profile(BENCHMARK_MODEL, inv(fixture_text(BM10)))
    assert prof.source == "benchmark_model"
    types = [op.op_type for op in prof.ops]
    assert "Fully Connected (NC, PF32) GEMM" in types
    assert "AllocateTensors" not in types  # a set-up event, zero calls in the regular runs
    assert benchmark_model_profile(BENCHMARK_MODEL, inv(fixture_text(BM8))).source is None


def test_perf_test_log_becomes_the_runner_result() -> None:
    r = perf_test_result(PERF_TEST, inv(fixture_text(PT1)), VERSION, RunnerSettings("onnx"))
    stats = r.tool_stats
    assert stats is not None
    assert stats.n == 100 and stats.mean == pytest.approx(19.918)
    assert stats.median == pytest.approx(19.9047) and stats.p90 == pytest.approx(20.0251)
    assert stats.min == pytest.approx(19.7812) and stats.std is None  # perf_test prints no std
    assert r.load_ms == pytest.approx(50.8382) and r.cold_ms is None
    assert r.warmup_n == 1 and r.threads == 1
    assert r.provider == "CPUExecutionProvider" and r.runtime == "onnxruntime_perf_test"


def test_perf_test_vendor_log_and_its_failure() -> None:
    r = perf_test_result(PERF_TEST, inv(fixture_text(PT3)), VERSION, RunnerSettings("onnx"))
    assert r.provider == "SpaceMITExecutionProvider" and r.cold_ms == 109
    failed = (
        "2024-05-01 10:00:00.123456 [E:onnxruntime:, inference_session.cc:1645 operator()] "
        "Exception during initialization: Invalid model\n"
    )
    with pytest.raises(RunnerError, match="Exception during initialization: Invalid model"):
        perf_test_result(PERF_TEST, inv(failed, 134), VERSION, RunnerSettings("onnx"))


# ---------------------------------------------------------------- statistics from aggregates


def _parts(samples: np.ndarray, splits: int) -> list[ToolStats]:
    return [
        ToolStats(
            n=len(p),
            mean=float(p.mean()),
            std=float(p.std(ddof=1)),
            min=float(p.min()),
            max=float(p.max()),
            median=float(np.median(p)),
        )
        for p in np.array_split(samples, splits)
    ]


def test_pooled_count_mean_std_min_max_are_exact() -> None:
    samples = np.random.default_rng(3).lognormal(2.0, 0.05, 300)
    summary = summarize_tool_stats(_parts(samples, 3))
    assert summary.n == 300 and summary.processes == 3
    assert summary.mean == pytest.approx(samples.mean())
    assert summary.std == pytest.approx(samples.std(ddof=1))
    assert summary.min == samples.min() and summary.max == samples.max()
    medians = [float(np.median(p)) for p in np.array_split(samples, 3)]
    assert summary.median == pytest.approx(float(np.median(medians)))
    assert summary.process_medians == pytest.approx(medians)
    row = summary.as_row()
    # what aggregates cannot give stays empty rather than estimated
    assert row["p90_ms"] is None and row["iqr_ms"] is None
    # the interval is across the invocations, on their medians, and the row says so
    assert row["ci99_low_ms"] < row["ci95_low_ms"] < summary.median < row["ci95_high_ms"]
    assert row["ci95_high_ms"] < row["ci99_high_ms"]
    assert row["ci_method"] == "t over 3 tool medians (log)"
    means_only = [ToolStats(n=p.n, mean=p.mean) for p in _parts(samples, 3)]
    assert summarize_tool_stats(means_only).ci_method == "t over 3 tool means (log)"
    one = summarize_tool_stats(_parts(samples, 1))
    assert one.ci99_low is None and one.ci_method == ""  # one invocation: nothing to say


def test_one_process_keeps_the_tools_own_percentiles_past_the_minimum_counts() -> None:
    one = ToolStats(n=100, mean=10.0, min=9.0, max=12.0, median=10.0, p90=11.0, p99=11.9)
    summary = summarize_tool_stats([one])
    assert summary.median == 10.0 and summary.p90 == 11.0
    assert summary.p99 is None  # 100 < 662
    assert summarize_tool_stats([ToolStats(n=10, median=1.0, p90=2.0)]).p90 is None


def test_flags_that_aggregates_can_show() -> None:
    shaky = ToolStats(n=20, mean=10.0, std=2.0, min=4.0, max=30.0, median=9.0)
    flags = summarize_tool_stats([shaky], governor="schedutil", thermal_rose=True).flags
    assert flags == ["HIGH_CV", "EXTREME", "FEW_SAMPLES", "THROTTLED", "CLOCKS_UNLOCKED"]
    with pytest.raises(UsageError):
        summarize_tool_stats([ToolStats(n=0)])


# ---------------------------------------------------------------- environment probe


PROBE = f"""\
{probe.MARK}cpuinfo
Hardware	: Qualcomm Technologies, Inc SM8150
{probe.MARK}soc
ro.soc.model=SM8150
{probe.MARK}cpus
cpu0 1 schedutil 1785600 1785600
cpu4 1 performance 2419200 2419200
cpu7 1 performance 2841600 2841600
{probe.MARK}thermal
cpu-0 41200
off -273000
cpu-7 43800
{probe.MARK}load
1.25 0.90 0.80 2/812 12345
{probe.MARK}end
"""


def test_environment_probe_reads_the_pinned_cores() -> None:
    env = parse_environment(PROBE.splitlines(), affinity="f0")
    assert env is not None
    expected = {
        "cpu_model": "Qualcomm Technologies, Inc SM8150",
        "governor": "performance",  # cpu0 is not pinned by f0
        "max_freq_mhz": 2841.6,
        "temp_c": 43.8,
        "loadavg": 1.25,
    }
    assert {k: getattr(env, k) for k in expected} == expected
    assert env.pinned == [4, 7] and env.soc == "SM8150"
    unpinned = parse_environment(PROBE.splitlines())
    assert unpinned is not None and unpinned.governor == "schedutil;performance"
    assert parse_environment([]) is None


# ---------------------------------------------------------------- operators joined to cost


def _cost(types: list[str], macs: list[int]) -> Any:
    """Only what the alignment and ``litert_rows`` read of a ``GraphCost``."""
    ops = [
        OpCost(
            op_index=i,
            op_name=f"n{i}",
            op_type=t,
            macs=m,
            flops=0,
            params=0,
            bytes=0,
            output_shape=(),
        )
        for i, (t, m) in enumerate(zip(types, macs, strict=True))
    ]
    return SimpleNamespace(ops=ops)


def test_xnnpack_rows_are_aligned_and_every_macs_lands_once() -> None:
    cost = _cost(["PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"],
                 [0, 1000, 200, 0, 50, 0])  # fmt: skip
    ops = [
        {"op_name": "Delegate/Convolution (NHWC, F32) IGEMM:0", "op_type": "Convolution (NHWC, F32) IGEMM", "per_run_us": 30.0, "calls": 1},
        {"op_name": "Delegate/Convolution (NHWC, F32) DWConv:1", "op_type": "Convolution (NHWC, F32) DWConv", "per_run_us": 10.0, "calls": 1},
        {"op_name": "Delegate/Global Average Pooling (NWC, F32):2", "op_type": "Global Average Pooling (NWC, F32)", "per_run_us": 2.0, "calls": 1},
        {"op_name": "Delegate/Fully Connected (NC, F32) GEMM:3", "op_type": "Fully Connected (NC, F32) GEMM", "per_run_us": 3.0, "calls": 1},
        {"op_name": "[probs]:5", "op_type": "SOFTMAX", "per_run_us": 1.0, "calls": 1, "node_index": 5},
        {"op_name": "LiteRT::Run[Buffer sync]/0", "op_type": "LiteRT::Run[Buffer sync]", "per_run_us": 0.5, "calls": 1},
    ]  # fmt: skip
    aligned = align_benchmark_model_ops(ops, cost)
    assert [r.op_index for r in aligned] == [1, 2, 3, 4, 5, -1]
    assert aligned[0].absorbed_op_indices == [0]  # the PAD folded into the convolution
    rows = litert_rows(aligned, cost)
    assert sum(r["macs"] or 0 for r in rows) == 1250
    assert rows[0]["graph_ops"] == "n1,n0"
    assert rows[-1]["median_us"] == 0.5 and rows[-1]["macs"] is None


def test_one_delegate_partition_carries_every_delegated_node() -> None:
    cost = _cost(["CONV_2D", "RELU", "FULLY_CONNECTED"], [100, 0, 10])
    ops = [
        {"op_name": "[a, b]:3", "op_type": "TfLiteXNNPackDelegate", "per_run_us": 9.0,
         "calls": 1, "node_index": 3},
        {"op_name": "[out]:2", "op_type": "FULLY_CONNECTED", "per_run_us": 1.0, "calls": 1,
         "node_index": 2},
    ]  # fmt: skip
    aligned = align_benchmark_model_ops(ops, cost)
    assert aligned[0].absorbed_op_indices == [0, 1] and aligned[1].op_index == 2
    assert [r["macs"] for r in litert_rows(aligned, cost)] == [100, 10]
    no_cost = align_benchmark_model_ops(ops, None)
    assert all(r.op_index == -1 for r in no_cost)


# ---------------------------------------------------------------- bench devices check


def test_devices_check_shows_the_tools_hash_as_its_version() -> None:
    digest = "ab" * 32
    text = (
        f"{probe.MARK}runtime:benchmark_model\nOK\n{digest}  /data/local/tmp/benchmark_model\n"
        f"{probe.MARK}runtime:onnxruntime_perf_test\nOK\n"
    )
    p = profile(runtimes={"benchmark_model": "/data/local/tmp/benchmark_model",
                          "onnxruntime_perf_test": "/data/local/tmp/onnxruntime_perf_test"})  # fmt: skip
    report = DeviceReport(device="phone", transport="adb", reachable=True)
    parse_probe(text, p, report)
    assert report.runtimes["benchmark_model"].version == f"sha256:{digest[:16]}"
    assert report.runtimes["onnxruntime_perf_test"].present
    assert report.runtimes["onnxruntime_perf_test"].version is None  # no sha256sum there


def test_tool_stats_only_when_every_process_came_from_a_tool() -> None:
    assert tool_stats([RunnerResult(samples_ms=[1.0])]) is None
    assert tool_stats([RunnerResult(tool_stats=ToolStats(n=3, median=1.0))]) == [
        ToolStats(n=3, median=1.0)
    ]
