"""The onnxruntime_perf_test adapter: command line, and the parser on captures and variants."""

from __future__ import annotations

import pytest

from benchharness.errors import ParseError, UsageError
from benchharness.parse.ort_perf_test import build_command, parse_ort_perf_test
from tests.runners.fixtures import fixture_text

F1 = "onnxruntime_perf_test/onnxruntime_perf_test_1.txt"
F3 = "onnxruntime_perf_test/onnxruntime_perf_test_3.txt"


def test_command_times_a_fixed_count_with_percentiles_and_profile() -> None:
    argv = build_command(
        "./onnxruntime_perf_test", "m.onnx", threads=4, affinity="c0", runs=200,
        profile_prefix="/data/local/tmp/prof", extra=["-e", "xnnpack"],
    )  # fmt: skip
    assert argv == [
        "taskset", "c0", "./onnxruntime_perf_test", "-m", "times", "-r", "200", "-I",
        "-x", "4", "-s", "-p", "/data/local/tmp/prof", "-e", "xnnpack", "m.onnx",
    ]  # fmt: skip


def test_command_without_threads_affinity_or_profile() -> None:
    argv = build_command("pt", "m.onnx", threads=None, affinity=None, runs=10, profile_prefix=None)
    assert argv == ["pt", "-m", "times", "-r", "10", "-I", "-s", "m.onnx"]


@pytest.mark.parametrize(("threads", "runs", "affinity"), [(0, 1, None), (1, 0, None), (1, 1, "x")])
def test_command_rejects_bad_settings(threads: int, runs: int, affinity: str | None) -> None:
    with pytest.raises(UsageError):
        build_command("pt", "m", threads=threads, affinity=affinity, runs=runs, profile_prefix=None)


def test_fixture_1_pixel6_summary() -> None:
    (run,) = parse_ort_perf_test(fixture_text(F1))
    assert not run.failed
    assert run.line == 2  # "Setting intra_op_num_threads to 1"; line 1 is the script's own
    assert run.intra_op_threads == 1 and run.provider is None
    assert run.session_creation_s == 0.0508382 and run.first_inference_ms is None
    assert (run.total_inference_s, run.requests, run.average_ms) == (1.9918, 100, 19.918)
    assert (run.total_run_s, run.inferences_per_s) == (1.99202, 50.2002)
    assert (run.cpu_usage_pct, run.peak_working_set_bytes, run.runs) == (12, 109531136, 100)
    assert run.latencies_s == {
        "min": 0.0197812, "max": 0.0202704, "p50": 0.0199047, "p90": 0.0200251,
        "p95": 0.0201534, "p99": 0.0202704, "p999": 0.0202704,
    }  # fmt: skip
    assert run.latency_ms("p50") == 19.9047 and run.latency_ms("p99") == 20.2704
    assert run.n == 100


def test_fixture_3_vendor_variant_with_comments() -> None:
    (run,) = parse_ort_perf_test(fixture_text(F3))
    assert run.line == 9  # "using SpaceMITExecutionProvider"
    assert run.provider == "SpaceMITExecutionProvider"
    assert run.provider_options == {"SPACEMIT_EP_INTRA_THREAD_NUM": "4"}
    assert run.first_inference_ms == 109 and run.session_creation_s == 0.169475
    assert run.average_ms == 7.270205  # "Average inference time cost total:"
    assert (run.requests, run.runs, run.cpu_usage_pct) == (10, 10, 62)
    assert run.peak_working_set_bytes == 91336704
    assert run.latencies_s["p50"] == 0.00727787 and run.latencies_s["min"] == 0.00720383
    assert run.latency_ms("max") == 7.30163


def test_older_and_vendor_line_forms_and_scientific_notation() -> None:
    text = (
        "Session creation time cost: 0.25 s\n"
        "Total time cost: 5.5 s\n"
        "Total inference requests: 100\n"
        "Average time cost: 55.5 ms\n"
        "Total CPU usage: 97 %\n"
        "Min Latency is 0.0559777sec\n"
        "P50 Latency: 9.9e-05 s\n"
    )
    (run,) = parse_ort_perf_test(text)
    assert (run.total_inference_s, run.average_ms, run.cpu_usage_pct) == (5.5, 55.5, 97)
    assert run.latencies_s == {"min": 0.0559777, "p50": 9.9e-05}
    assert run.latency_ms("p50") == 0.099


def test_two_runs_concatenated_give_two_results() -> None:
    runs = parse_ort_perf_test(fixture_text(F1) + fixture_text(F3))
    assert [r.requests for r in runs] == [100, 10]
    assert [r.provider for r in runs] == [None, "SpaceMITExecutionProvider"]
    assert runs[1].intra_op_threads == 1 and runs[1].first_inference_ms == 109


def test_same_capture_twice_splits_on_the_repeated_session_line() -> None:
    text = fixture_text(F1)
    runs = parse_ort_perf_test(text + text)
    assert len(runs) == 2 and runs[0].average_ms == runs[1].average_ms == 19.918


def test_failed_run_keeps_the_error_lines() -> None:
    text = (
        "Setting intra_op_num_threads to 4\n"
        "2024-05-01 10:00:00.123456 [E:onnxruntime:, inference_session.cc:1645 operator()] "
        "Exception during initialization: Invalid model\n"
        "terminate called after throwing an instance of 'Ort::Exception'\n"
    )
    (run,) = parse_ort_perf_test(text)
    assert run.failed and run.intra_op_threads == 4
    assert run.error is not None
    assert "Exception during initialization: Invalid model" in run.error
    assert "terminate called" in run.error


def test_garbage_raises_parse_error_naming_the_line() -> None:
    with pytest.raises(ParseError, match=r"line 2: .*'some text'"):
        parse_ort_perf_test("\nsome text\nmore\n")


def test_benchmark_model_log_is_not_perf_test_output() -> None:
    with pytest.raises(ParseError, match="line 1"):
        parse_ort_perf_test(fixture_text("benchmark_model/tflite_benchmark_model_2.txt"))


# ---------------------------------------------------------------- hostile numbers


@pytest.mark.parametrize("bad", ["1e999", "-7.5", "9" * 5000])
@pytest.mark.parametrize(
    ("line", "good"),
    [
        ("Session creation time cost: 0.0508382 s", "0.0508382"),
        ("Total inference time cost: 1.9918 s", "1.9918"),
        ("Total inference requests: 100", "100"),
        ("Average inference time cost: 19.918 ms", "19.918"),
        ("Number of inferences per second: 50.2002", "50.2002"),
        ("Avg CPU usage: 12 %", "12"),
        ("Peak working set size: 109531136 bytes", "109531136"),
        ("Runs:100", "100"),
        ("P50 Latency: 0.0199047 s", "0.0199047"),
        ("Setting intra_op_num_threads to 1", "1"),
    ],
)
def test_a_figure_that_is_not_finite_non_negative_and_in_range_is_refused_naming_its_line(
    line: str, good: str, bad: str
) -> None:
    lines = fixture_text(F1).splitlines()
    (k,) = [i for i, text in enumerate(lines) if text.strip() == line]
    lines[k] = lines[k].replace(good, bad, 1)
    with pytest.raises(ParseError, match=rf"line {k + 1}: "):
        parse_ort_perf_test("\n".join(lines) + "\n")
