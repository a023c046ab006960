"""The benchmark_model adapter: command line, and the parser on real captures and variants."""

from __future__ import annotations

import pytest

from benchharness.errors import ParseError, UsageError
from benchharness.parse.benchmark_model import (
    AppliedDelegate,
    BenchmarkModelRun,
    Delegation,
    MemoryFootprint,
    TimingStats,
    build_command,
    parse_benchmark_model,
)
from tests.runners.fixtures import fixture_text

F1 = "benchmark_model/tflite_benchmark_model_1.txt"
F2 = "benchmark_model/tflite_benchmark_model_2.txt"
F4 = "benchmark_model/tflite_benchmark_model_4.txt"
F6 = "benchmark_model/tflite_benchmark_model_6.txt"
F8 = "benchmark_model/tflite_benchmark_model_8.txt"
F10 = "benchmark_model/tflite_benchmark_model_10.txt"
ALL = [F1, F2, F4, F6, F8, F10]

FAILED_LOG = """\
STARTING!
Graph: [/data/local/tmp/bad.tflite]
Num threads: [4]
Loaded model /data/local/tmp/bad.tflite
ERROR: Didn't find op for builtin opcode 'CONV_2D' version '5'
ERROR: Registration failed.
Failed to initialize the interpreter
Benchmarking failed.
"""


def one(relative: str) -> BenchmarkModelRun:
    runs = parse_benchmark_model(fixture_text(relative))
    assert len(runs) == 1
    return runs[0]


# ---------------------------------------------------------------- command line


def test_command_pins_with_taskset_and_passes_every_setting() -> None:
    argv = build_command(
        "/data/local/tmp/benchmark_model",
        "/data/local/tmp/m.tflite",
        threads=4,
        affinity="f0",
        num_runs=100,
        warmup_runs=10,
        min_secs=10.0,
        op_profiling=True,
        extra=["--use_xnnpack=true"],
    )
    assert argv == [
        "taskset",
        "f0",
        "/data/local/tmp/benchmark_model",
        "--graph=/data/local/tmp/m.tflite",
        "--num_threads=4",
        "--num_runs=100",
        "--warmup_runs=10",
        "--min_secs=10",
        "--enable_op_profiling=true",
        "--use_xnnpack=true",
    ]


def test_command_leaves_out_what_was_not_asked() -> None:
    argv = build_command(
        "bm", "m.tflite", threads=None, affinity=None, num_runs=50, warmup_runs=1,
        min_secs=0.5, op_profiling=False,
    )  # fmt: skip
    assert argv == ["bm", "--graph=m.tflite", "--num_runs=50", "--warmup_runs=1", "--min_secs=0.5"]


@pytest.mark.parametrize(
    ("threads", "affinity", "num_runs"),
    [(0, None, 1), (None, "big", 1), (None, "0", 1), (None, None, 0)],
)
def test_command_rejects_bad_settings(
    threads: int | None, affinity: str | None, num_runs: int
) -> None:
    with pytest.raises(UsageError):
        build_command(
            "bm", "m", threads=threads, affinity=affinity, num_runs=num_runs, warmup_runs=1,
            min_secs=1.0, op_profiling=False,
        )  # fmt: skip


# ---------------------------------------------------------------- the captures


def test_fixture_1_old_tab_layout_with_start_column() -> None:
    run = one(F1)
    assert not run.failed and run.regular is None and run.summary is None
    init = run.init_profile
    assert init is not None
    assert [r.op_type for r in init.run_order] == ["ModifyGraphWithDelegate", "AllocateTensors"]
    assert init.run_order[0].first_ms == 413.346 and init.run_order[0].mem_kb == 1748.0
    assert init.run_order[1].start_ms == 255.360 and init.run_order[1].times_called == 2
    assert init.timings == TimingStats(count=1, curr_us=729391)
    block = run.regular_profile
    assert block is not None
    assert len(block.run_order) == 11 and len(block.top_by_time) == 10
    nnapi = block.run_order[6]
    assert nnapi.op_type == "TfLiteNnapiDelegate"
    assert nnapi.op_name == (
        "[model/tf.nn.silu_16/mul, model/tf.nn.silu_26/mul, model/tf.nn.silu_35/mul]:231"
    )
    assert (nnapi.start_ms, nnapi.first_ms, nnapi.avg_ms) == (8.377, 78.701, 79.010)
    assert (nnapi.pct, nnapi.cdf, nnapi.node_index, nnapi.op_index) == (49.781, 55.042, 231, 6)
    assert [(t.node_type, t.count, t.avg_ms) for t in block.by_node_type] == [
        ("TfLiteNnapiDelegate", 3, 149.483),
        ("STRIDED_SLICE", 6, 8.347),
        ("RESIZE_NEAREST_NEIGHBOR", 2, 0.879),
    ]
    assert block.timings == TimingStats(
        count=50, first_us=164033, curr_us=158560, min_us=146535, max_us=166638,
        avg_us=158715, std_us=2931,
    )  # fmt: skip
    assert (block.nodes_executed, block.nodes_observed) == (11, 11)


def test_fixture_2_log_tail_with_legacy_peak_memory() -> None:
    run = one(F2)
    assert run.regular == TimingStats(
        count=50, first_us=249042, curr_us=250889, min_us=247067, max_us=254474,
        avg_us=249684, std_us=1442,
    )  # fmt: skip
    assert run.warmup is None
    assert run.summary is not None
    assert run.summary.init_us == 16242 and run.summary.first_inference_us == 360262
    assert run.summary.warmup_avg_us == 304586 and run.summary.inference_avg_us == 249684
    assert run.memory == MemoryFootprint("peak", 4.92969, 138.809)


def test_fixture_4_delegate_rows_and_node_type_summary() -> None:
    run = one(F4)
    block = run.regular_profile
    assert block is not None and len(block.run_order) == 14
    last = block.run_order[-1]
    assert (last.op_type, last.op_name, last.avg_ms, last.node_index) == (
        "TRANSPOSE", "[Identity_1]:269", 0.146, 269,
    )  # fmt: skip
    assert ("TRANSPOSE", 3, 3.148) in [(t.node_type, t.count, t.avg_ms) for t in block.by_node_type]
    assert run.init_profile is not None and run.init_profile.run_order[0].mem_kb == 3716.0
    assert block.timings is not None and block.timings.std_us == 5818


def test_fixture_6_noisy_log_with_space_aligned_tables() -> None:
    run = one(F6)
    assert not run.failed
    assert run.params["Num threads"] == "4" and run.params["Input shapes"] == "1,224,224,3"
    assert run.params["DG Graph"] == "" and run.threads == 4
    assert run.model_size_mb == 14.6334 and run.init_ms == 1475.81
    assert run.warmup == TimingStats(count=1, curr_us=29456)
    assert run.regular is not None
    assert (run.regular.count, run.regular.avg_us, run.regular.std_us) == (2, 22509, 1262)
    assert run.memory == MemoryFootprint("delta", 78.5078, 78.5078)
    assert run.delegations == [
        Delegation("TfLiteHexagonDelegate", 49, None, 9),
        Delegation("TfLiteGpuDelegateV2", 37, None, 9),
    ]
    assert run.applied_delegates == [
        AppliedDelegate("Hexagon", False, 4),
        AppliedDelegate("GPU", False, 4),
    ]
    block = run.regular_profile
    assert block is not None and len(block.run_order) == 18
    conv = block.run_order[1]
    assert conv.op_type == "CONV_2D" and conv.op_name.endswith("anynet/st_cpu_conv/Conv2D]:1")
    assert (conv.start_ms, conv.first_ms, conv.avg_ms, conv.pct) == (0.117, 3.730, 3.640, 16.512)
    assert block.by_node_type[0].node_type == "CONCATENATION"
    assert (block.by_node_type[0].count, block.by_node_type[0].avg_ms) == (4, 12.994)
    assert run.init_profile is not None
    assert run.init_profile.by_node_type[0].avg_ms == 1394.340


def test_fixture_8_newest_format_with_percentiles_and_scientific_notation() -> None:
    run = one(F8)
    assert run.regular == TimingStats(
        count=50, first_us=1249964, curr_us=1240143, min_us=1238588, max_us=1252566,
        avg_us=1.24027e06, std_us=2565, p5_us=1238753, median_us=1239807, p95_us=1247415,
    )  # fmt: skip
    assert run.warmup is not None and run.warmup.median_us == 1357602
    assert run.summary is not None and run.summary.warmup_avg_us == 1.3576e06
    assert run.summary.inference_avg_us == 1.24027e06 and run.summary.init_us == 5579
    assert run.model_size_mb == 67.3128 and run.init_ms == 5.579
    assert run.memory == MemoryFootprint("delta", 6.36328, 109.832)
    assert run.params["Use xnnpack"] == "0"
    # the echoed shell command line is the only place the thread count appears
    assert run.flags["num_threads"] == "4" and run.threads == 4


def test_fixture_10_litert_block_and_new_table_layout() -> None:
    run = one(F10)
    assert run.litert is not None
    lt = run.litert
    assert (lt.init_ms, lt.warmup_first_ms, lt.warmup_avg_ms, lt.warmup_runs) == (
        4.48, 1.03, 0.47, 1055,
    )  # fmt: skip
    assert (lt.inference_avg_ms, lt.inference_runs, lt.inference_min_ms) == (0.46, 2112, 0.44)
    assert (lt.inference_max_ms, lt.inference_std_ms, lt.throughput_mb_s) == (0.98, 0.01, 525.55)
    assert (lt.init_footprint_mb, lt.overall_footprint_mb, lt.peak_memory_mb) == (8.94, 11.51, None)
    assert run.regular is not None and run.regular.median_us == 462
    assert run.regular.avg_us == 464.545 and run.regular.count == 2112
    assert run.warmup is not None and run.warmup.count == 1055
    assert run.delegations == [Delegation("TfLiteXNNPackDelegate", 1, 1, 1, subgraph=0)]
    rows = run.op_rows
    assert len(rows) == 5 and all(r.start_ms is None for r in rows)
    gemm = rows[3]
    assert gemm.op_type == "Fully Connected (NC, PF32) GEMM"
    assert gemm.op_name == "Delegate/Fully Connected (NC, PF32) GEMM:1"
    assert (gemm.avg_ms, gemm.pct, gemm.node_index) == (0.382, 92.948, 1)
    ops = run.op_times()
    # AllocateTensors ran zero times in the timed runs: set-up, not an operator
    assert [o.op_type for o in ops] == [
        "LiteRT::Run[buffer registration]",
        "Static Reshape (NC)",
        "Fully Connected (NC, PF32) GEMM",
        "LiteRT::Run[Buffer sync]",
    ]
    assert ops[2].per_run_us == 382.0 and ops[2].runs == 3166 and ops[2].statistic == "avg"
    assert sum(o.share or 0 for o in ops) == pytest.approx(1.0)


def test_op_times_keep_run_order_and_compute_shares() -> None:
    ops = one(F4).op_times()
    assert [o.op_index for o in ops] == list(range(14))
    assert ops[6].op_type == "TfLiteNnapiDelegate" and ops[6].per_run_us == 83750.0
    assert ops[6].share == pytest.approx(83.750 / sum(o.per_run_us / 1000 for o in ops))
    assert ops[0].runs == 50 and ops[0].calls == 1


# ---------------------------------------------------------------- variants of the captures


@pytest.mark.parametrize("relative", ALL)
def test_tabs_expanded_to_spaces_parse_the_same(relative: str) -> None:
    text = fixture_text(relative)
    assert parse_benchmark_model(text.expandtabs(8)) == parse_benchmark_model(text)


@pytest.mark.parametrize(
    "prefix",
    [
        "I/tflite  ( 5395): ",
        "05-13 10:12:01.123 I/tflite  ( 5395): ",
        "05-13 10:12:01.123  5395  5401 I tflite  : ",
    ],
)
@pytest.mark.parametrize("relative", [F1, F6, F8, F10])
def test_logcat_prefixed_copies_parse_the_same(relative: str, prefix: str) -> None:
    text = fixture_text(relative)
    prefixed = "".join(prefix + line for line in text.splitlines(keepends=True))
    assert parse_benchmark_model(prefixed) == parse_benchmark_model(text)


def test_other_logcat_tags_inside_a_table_are_skipped() -> None:
    lines = fixture_text(F1).splitlines(keepends=True)
    prefixed = ["I/tflite  ( 5395): " + line for line in lines]
    prefixed.insert(30, "D/ActivityManager(  812): Start proc 5395\n")
    assert parse_benchmark_model("".join(prefixed)) == parse_benchmark_model("".join(lines))


@pytest.mark.parametrize("relative", ALL)
def test_two_runs_in_one_log_give_two_results(relative: str) -> None:
    text = fixture_text(relative)
    single = parse_benchmark_model(text)[0]
    runs = parse_benchmark_model(text + "\n" + text)
    assert len(runs) == 2
    assert runs[0] == single
    assert runs[1].line > runs[0].line
    second = runs[1]
    assert (second.regular, second.summary, second.litert) == (
        single.regular, single.summary, single.litert,
    )  # fmt: skip
    assert second.op_rows == single.op_rows


def test_different_runs_concatenated_keep_their_own_numbers() -> None:
    runs = parse_benchmark_model(fixture_text(F6) + fixture_text(F8))
    assert [r.regular.count if r.regular else None for r in runs] == [2, 50]
    assert runs[0].model_size_mb == 14.6334 and runs[1].model_size_mb == 67.3128
    assert len(runs[0].op_rows) == 18 and runs[1].op_rows == []


def test_failed_run_carries_the_error_text() -> None:
    (run,) = parse_benchmark_model(FAILED_LOG)
    assert run.failed
    assert run.error is not None
    assert "Registration failed." in run.error
    assert "Failed to initialize the interpreter" in run.error
    assert run.error.endswith("Benchmarking failed.")
    assert run.params["Graph"] == "/data/local/tmp/bad.tflite" and run.threads == 4


def test_failed_run_then_good_run() -> None:
    runs = parse_benchmark_model(FAILED_LOG + fixture_text(F8))
    assert [r.failed for r in runs] == [True, False]
    assert runs[1].regular is not None and runs[1].regular.median_us == 1239807


def test_failed_run_through_logcat_with_level_letters() -> None:
    text = "E/tflite  ( 77): Failed to allocate tensors!\nE/tflite  ( 77): Benchmarking failed.\n"
    (run,) = parse_benchmark_model(text)
    assert run.failed and run.error == "Failed to allocate tensors!; Benchmarking failed."


def test_log_cut_before_timings_is_a_failed_run() -> None:
    text = "STARTING!\nGraph: [m.tflite]\nInitialized session in 3.2ms.\n"
    (run,) = parse_benchmark_model(text)
    assert run.failed and run.init_ms == 3.2
    assert run.error is not None and "ends before" in run.error


def test_short_stats_forms_resolve_exactly() -> None:
    text = (
        "Running benchmark for at least 1 iterations and at least 0.5 seconds\n"
        "count=3 curr=250(all same)\n"
        "Running benchmark for at least 50 iterations and at least 1 seconds\n"
        "count=1 curr=300\n"
    )
    (run,) = parse_benchmark_model(text)
    assert run.warmup == TimingStats(count=3, curr_us=250, all_same=True)
    assert run.warmup.resolved().max_us == 250 and run.warmup.resolved().std_us == 0
    assert run.regular is not None and run.regular.resolved().median_us == 300


def test_legacy_summary_and_peak_memory_monitoring() -> None:
    text = (
        "count=20 first=10 curr=11 min=9 max=12 avg=10.5 std=1\n"
        "Average inference timings in us: Warmup: 12.5, Init: 800, Inference: 10.5\n"
        "Overall peak memory footprint (MB) via periodic monitoring: 42.5\n"
        "Memory status at the end of exeution:\n"
        "- VmRSS              : 40 MB\n"
    )
    (run,) = parse_benchmark_model(text)
    assert run.summary is not None
    assert (run.summary.warmup_avg_us, run.summary.init_us) == (12.5, 800)
    assert run.summary.inference_avg_us == 10.5
    assert run.peak_memory_mb == 42.5 and run.memory_status == {"VmRSS": "40 MB"}


# ---------------------------------------------------------------- not a log, broken tables


def test_garbage_raises_parse_error_naming_the_first_line() -> None:
    with pytest.raises(ParseError, match=r"line 3: .*'hello world'"):
        parse_benchmark_model("\n\nhello world\nthis is not a benchmark\n")


def test_onnxruntime_output_is_not_a_benchmark_model_log() -> None:
    with pytest.raises(ParseError, match="line 1"):
        parse_benchmark_model(fixture_text("onnxruntime_perf_test/onnxruntime_perf_test_1.txt"))


def test_empty_log_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="empty"):
        parse_benchmark_model("   \n")


def test_malformed_table_row_names_its_line() -> None:
    lines = fixture_text(F1).splitlines()
    target = next(i for i, line in enumerate(lines) if "[model/lambda/resize" in line)
    lines[target] = lines[target].replace("0.253", "zero")
    with pytest.raises(ParseError, match=rf"line {target + 1}: malformed row"):
        parse_benchmark_model("\n".join(lines))


def test_malformed_space_aligned_row_names_its_line() -> None:
    lines = fixture_text(F6).splitlines()
    target = next(i for i, line in enumerate(lines) if "[anynet/head_cpu_gap/Mean]:93" in line)
    lines[target] = lines[target].replace("2.232%", "2.232")
    with pytest.raises(ParseError, match=rf"line {target + 1}: .*MEAN"):
        parse_benchmark_model("\n".join(lines))


def test_table_without_column_header_is_an_error() -> None:
    text = "============================== Run Order ==============================\nrubbish\n"
    with pytest.raises(ParseError, match="line 2: expected the column header"):
        parse_benchmark_model(text)


def test_subgraph_profiles_are_separate_blocks_and_ops_come_from_the_primary_graph() -> None:
    header = "\t[node type]\t[first]\t[avg ms]\t[%]\t[cdf%]\t[mem KB]\t[times called]\t[Name]"
    text = "\n".join(
        [
            "Operator-wise Profiling Info for Regular Benchmark Runs:",
            "Primary graph (name: main) profile:",
            "============================== Run Order ==============================",
            header,
            "\t WHILE\t 2.000\t 1.900\t 95.000%\t 95.000%\t 0.000\t 1\t[out]:0",
            "\t ADD\t 0.100\t 0.100\t 5.000%\t 100.000%\t 0.000\t 1\t[y]:1",
            "",
            "2 nodes observed",
            "Subgraph (index: 1, name: body) profile:",
            "============================== Run Order ==============================",
            header,
            "\t MUL\t 0.050\t 0.040\t 100.000%\t 100.000%\t 0.000\t 8\t[z]:0",
            "",
        ]
    )
    (run,) = parse_benchmark_model(text)
    assert [(b.section, b.graph) for b in run.profiles] == [
        ("regular", "Primary graph (name: main) profile:"),
        ("regular", "Subgraph (index: 1, name: body) profile:"),
    ]
    assert [r.op_type for r in run.op_rows] == ["WHILE", "ADD"]
    assert run.profiles[1].run_order[0].times_called == 8


# ---------------------------------------------------------------- hostile numbers

#: A figure no tool prints: beyond float (read as infinity), negative, or digits past int().
BAD_FIGURES = ["1e999", "-7.5", "9" * 5000]


@pytest.mark.parametrize("bad", BAD_FIGURES)
@pytest.mark.parametrize(
    ("relative", "line", "good"),
    [
        (F8, "INFO: count=50 first=1249964", "1249964"),  # a timing statistic
        (F8, "INFO: count=50 first=1249964", "count=50"),  # the count of runs
        (F8, "INFO: Inference timings in us: Init: 5579,", "5579"),
        (F8, "INFO: Initialized session in 5.579ms.", "5.579"),
        (F8, "INFO: The input model file size (MB): 67.3128", "67.3128"),
        (F8, "INFO: Memory footprint delta from the start of the tool (MB): init=", "6.36328"),
        (F10, "Inference (avg):      0.46 ms (2112 runs)", "0.46"),
        (F10, "Inference (avg):      0.46 ms (2112 runs)", "2112"),
        (F10, "Init footprint:       8.94 MB", "8.94"),
        (F10, "Static Reshape (NC)\t    0.085", "0.085"),  # a profile table cell
        (F10, "Static Reshape (NC)\t    0.085", ":0"),  # the node index in a row's name
    ],
)
def test_a_figure_that_is_not_finite_non_negative_and_in_range_is_refused_naming_its_line(
    relative: str, line: str, good: str, bad: str
) -> None:
    lines = fixture_text(relative).splitlines()
    k = next(i for i, text in enumerate(lines) if line in text)
    replacement = {"count=50": f"count={bad}", ":0": f":{bad}"}.get(good, bad)
    if good == ":0" and not bad.isdigit():
        pytest.skip("a name ending in anything but digits names no node: it is just a name")
    lines[k] = lines[k].replace(good, replacement, 1)
    with pytest.raises(ParseError, match=rf"line {k + 1}: "):
        parse_benchmark_model("\n".join(lines) + "\n")


def test_threads_echoed_with_absurd_digits_are_no_thread_count() -> None:
    run = BenchmarkModelRun(line=1, params={"Num threads": "9" * 5000})
    assert run.threads is None
    run = BenchmarkModelRun(line=1, flags={"num_threads": "9" * 5000})
    assert run.threads is None
