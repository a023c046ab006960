"""Every memory figure the captured native-tool logs print, read into the runner result.

The captures are ``tests/fixtures/native`` (see SOURCES.md there). None of them holds the peak lines
that ``--report_peak_memory_footprint`` adds or LiteRT's ``Peak memory:``; those tests build the
lines from the strings of the tools' source (benchmark_model.cc, benchmark_litert_model.h), as
the failure logs of the other parser tests do.
"""

from __future__ import annotations

from typing import Literal

import pytest

from benchharness.ondevice import protocol
from benchharness.parse import native_result as nr
from benchharness.parse.benchmark_model import (
    BenchmarkModelRun,
    MemoryFootprint,
    parse_benchmark_model,
)
from benchharness.parse.ort_perf_test import parse_ort_perf_test
from tests.runners.fixtures import fixture_text

MIB = 2**20
BM = "benchmark_model/tflite_benchmark_model_{}.txt"
PT = "onnxruntime_perf_test/onnxruntime_perf_test_{}.txt"
#: logcat prefixes of the two layouts adb prints (``-v brief`` and ``-v threadtime``).
LOGCAT = ("I/tflite  ( 5395): ", "11-23 13:56:50.123  5395  5395 I tflite  : ")


def _memory_run(text: str) -> tuple[BenchmarkModelRun, protocol.Memory | None]:
    runs = [r for r in parse_benchmark_model(text) if r.memory or r.litert or r.peak_memory_mb]
    assert len(runs) == 1, runs
    return runs[0], nr.benchmark_model_memory(runs[0])


@pytest.mark.parametrize(
    ("number", "kind", "init_mb", "overall_mb"),
    [
        (2, "peak", 4.92969, 138.809),  # "Peak memory footprint (MB): init=... overall=..."
        (6, "delta", 78.5078, 78.5078),  # "Memory footprint delta from the start of the tool"
        (8, "delta", 6.36328, 109.832),  # the same with "INFO: "
    ],
)
def test_init_overall_lines_of_every_capture(
    number: int, kind: Literal["delta", "peak"], init_mb: float, overall_mb: float
) -> None:
    run, memory = _memory_run(fixture_text(BM.format(number)))
    assert run.memory == MemoryFootprint(kind, init_mb, overall_mb)
    assert memory is not None and memory.source == protocol.MEM_BENCHMARK_MODEL
    assert memory.init_bytes == round(init_mb * MIB)
    assert memory.peak_bytes == round(overall_mb * MIB)
    assert memory.baseline_bytes is None  # no periodic monitoring: the start is not printed


@pytest.mark.parametrize("prefix", LOGCAT)
@pytest.mark.parametrize("number", [6, 8])
def test_the_same_lines_through_logcat(number: int, prefix: str) -> None:
    text = "".join(prefix + line for line in fixture_text(BM.format(number)).splitlines(True))
    _, memory = _memory_run(text)
    _, plain = _memory_run(fixture_text(BM.format(number)))
    assert memory == plain and memory is not None and memory.peak_bytes


def test_litert_tool_footprints_and_peak_not_available() -> None:
    run, memory = _memory_run(fixture_text(BM.format(10)))
    litert = run.litert
    assert litert is not None
    assert (litert.init_footprint_mb, litert.overall_footprint_mb) == (8.94, 11.51)
    assert litert.peak_memory_mb is None  # "Peak memory usage not available. (peak_mem_mb <= 0)"
    assert memory is not None
    assert memory.init_bytes == round(8.94 * MIB) and memory.peak_bytes == round(11.51 * MIB)


def test_periodic_monitoring_gives_the_baseline() -> None:
    text = fixture_text(BM.format(8)) + (
        "INFO: Overall peak memory footprint (MB) via periodic monitoring: 115.5\n"
        "INFO: Memory status at the end of exeution:\n"
        "INFO: - VmRSS              : 112 MB\n"
        "INFO: + RssAnnon           : 100 MB\n"
        "INFO: + RssFile + RssShmem : 12 MB\n"
    )
    run, memory = _memory_run(text)
    assert run.peak_memory_mb == 115.5
    assert run.memory_status == {
        "VmRSS": "112 MB", "RssAnnon": "100 MB", "RssFile + RssShmem": "12 MB",
    }  # fmt: skip
    assert memory is not None and memory.peak_bytes == round(109.832 * MIB)
    assert memory.baseline_bytes == round(115.5 * MIB) - round(109.832 * MIB)


def test_litert_peak_memory_line() -> None:
    text = fixture_text(BM.format(10)).replace(
        "Peak memory usage not available. (peak_mem_mb <= 0)", "Peak memory:          20.25 MB"
    )
    _, memory = _memory_run(text)
    assert memory is not None and memory.peak_bytes == round(11.51 * MIB)
    assert memory.baseline_bytes == round(20.25 * MIB) - round(11.51 * MIB)


@pytest.mark.parametrize("number", [1, 4])
def test_captures_without_memory_lines_give_none(number: int) -> None:
    runs = parse_benchmark_model(fixture_text(BM.format(number)))
    assert all(nr.benchmark_model_memory(r) is None for r in runs)


@pytest.mark.parametrize(
    ("number", "table_kb"),
    [(1, 1748.0), (4, 3716.0), (6, 45992.0), (10, 452.0)],
)
def test_mem_kb_column_of_the_operator_tables(number: int, table_kb: float) -> None:
    """The one non-zero ``[mem KB]`` of each capture: the interpreter's set-up event."""
    runs = parse_benchmark_model(fixture_text(BM.format(number)))
    rows = [row for r in runs for p in r.profiles for row in p.run_order if row.mem_kb]
    assert rows and {row.mem_kb for row in rows} == {table_kb}
    assert {row.op_type for row in rows} <= {"ModifyGraphWithDelegate", "AllocateTensors"}


@pytest.mark.parametrize(("number", "peak"), [(1, 109531136), (3, 91336704)])
def test_perf_test_peak_working_set(number: int, peak: int) -> None:
    (run,) = parse_ort_perf_test(fixture_text(PT.format(number)))  # printed twice, one run
    assert run.peak_working_set_bytes == peak
    memory = nr.perf_test_memory(run)
    assert memory == protocol.Memory(source=protocol.MEM_PERF_TEST, peak_bytes=peak)
