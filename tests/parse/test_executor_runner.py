"""ExecuTorch's executor_runner: its command line, the parser of every generation of its log, and
the runner result made of a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.errors import ParseError, UsageError
from benchharness.ondevice.method import WarmupRule
from benchharness.parse.executor_runner import (
    build_command,
    executor_runner_result,
    parse_executor_runner,
    warmup_end,
)

#: A published run of an early release: pytorch/executorch issue #1231 ("Benchmark for inference
#: speed"), resnet18 on x86-64 Ubuntu under VMware, portable kernels. Verbatim from the issue.
ISSUE_1231 = """\
I 00:00:00.382397 executorch:executor_runner.cpp:133] Model file ./resnet18.pte is loaded.
I 00:00:00.382473 executorch:executor_runner.cpp:142] Using method forward
I 00:00:00.382480 executorch:executor_runner.cpp:190] Setting up planned buffer 0, size 64346944.
I 00:00:00.437272 executorch:executor_runner.cpp:213] Method loaded.
I 00:00:00.437405 executorch:executor_runner.cpp:219] Inputs prepared.
I 00:02:23.767346 executorch:executor_runner.cpp:228] Model executed successfully.
I 00:02:23.767409 executorch:executor_runner.cpp:232] 1 outputs:\x20
Output 0: tensor(sizes=[1, 1000], [
.
.
])
"""

#: The newest form, built from the format strings of executor_runner.cpp (a capture of a build
#: this recent is not published): per-execution times and the summed one.
NEWEST = """\
I 00:00:00.000101 executorch:executor_runner.cpp:388] Resetting threadpool with num threads = 4
I 00:00:00.003400 executorch:executor_runner.cpp:468] Model file /data/local/tmp/m.pte is loaded.
I 00:00:00.003420 executorch:executor_runner.cpp:477] Using method forward
I 00:00:00.003500 executorch:executor_runner.cpp:560] Setting up CPU planned buffer 0, size 2408448.
I 00:00:00.021000 executorch:executor_runner.cpp:601] Model loaded in 17.512000 ms.
I 00:00:00.040000 executorch:executor_runner.cpp:742] Iteration 1 of 4: 9.000000 ms
I 00:00:00.050000 executorch:executor_runner.cpp:742] Iteration 2 of 4: 5.500000 ms
I 00:00:00.060000 executorch:executor_runner.cpp:742] Iteration 3 of 4: 5.000000 ms
I 00:00:00.070000 executorch:executor_runner.cpp:742] Iteration 4 of 4: 5.250000 ms
I 00:00:00.070100 executorch:executor_runner.cpp:752] Model executed successfully 4 time(s) in 24.750000 ms.
I 00:00:00.070200 executorch:executor_runner.cpp:758] 1 outputs:\x20
OutputX 0: tensor(sizes=[1, 1000], [-0.0297435, -0.116339, 0.234517])
I 00:00:00.071000 executorch:executor_runner.cpp:260] ETDump written to file '/data/local/tmp/e.etdp'.
"""

#: 0.6 to 1.x: the summed time only.
SUMMED = """\
I 00:00:00.001 executorch:executor_runner.cpp:111] Model file mv2.pte is loaded.
I 00:00:00.001 executorch:executor_runner.cpp:120] Using method forward
I 00:00:00.002 executorch:executor_runner.cpp:167] Setting up planned buffer 0, size 3211264.
I 00:00:00.030 executorch:executor_runner.cpp:190] Method loaded.
I 00:00:00.530 executorch:executor_runner.cpp:217] Model executed successfully 50 time(s) in 500.5 ms.
"""

#: A failing execution: ``ET_CHECK_MSG`` logs and aborts.
FAILED = """\
I 00:00:00.001 executorch:executor_runner.cpp:111] Model file q.pte is loaded.
I 00:00:00.001 executorch:executor_runner.cpp:120] Using method forward
E 00:00:00.004 executorch:operator_registry.cpp:190] kernel 'quantized_decomposed::add.out' not found.
E 00:00:00.004 executorch:method.cpp:736] Missing operator: [2] quantized_decomposed::add.out
E 00:00:00.004 executorch:executor_runner.cpp:188] Loading of method forward failed with status 0x14
"""


def test_the_command_line_uses_gflags_syntax_and_the_tools_flags() -> None:
    argv = build_command("/data/local/tmp/er", "/data/local/tmp/m.pte", threads=4,
                         affinity="f0", executions=120, etdump_path="/data/local/tmp/e.etdp")  # fmt: skip
    assert argv == [
        "taskset", "f0", "/data/local/tmp/er", "--model_path=/data/local/tmp/m.pte",
        "--num_executions=120", "--cpu_threads=4", "--etdump_path=/data/local/tmp/e.etdp",
    ]  # fmt: skip
    plain = build_command("er", "m.pte", threads=None, affinity=None, executions=1)
    assert plain == ["er", "--model_path=m.pte", "--num_executions=1"]
    with pytest.raises(UsageError):
        build_command("er", "m.pte", threads=0, affinity=None, executions=1)
    with pytest.raises(UsageError):
        build_command("er", "m.pte", threads=None, affinity=None, executions=0)


def test_an_early_release_log_is_one_execution_without_a_time() -> None:
    (run,) = parse_executor_runner(ISSUE_1231)
    assert (run.model_path, run.method, run.outputs) == ("./resnet18.pte", "forward", 1)
    assert (run.executions, run.total_ms, run.iterations_ms) == (1, None, [])
    assert run.succeeded and not run.failed


def test_the_newest_log_gives_every_execution_and_the_load() -> None:
    (run,) = parse_executor_runner(NEWEST)
    assert run.iterations_ms == [9.0, 5.5, 5.0, 5.25]
    assert (run.executions, run.total_ms) == (4, 24.75)
    assert (run.load_ms, run.threads) == (17.512, 4)
    assert run.etdump_path == "/data/local/tmp/e.etdp"


def test_several_runs_and_a_failure_in_one_log() -> None:
    runs = parse_executor_runner(SUMMED + FAILED + NEWEST)
    assert [r.failed for r in runs] == [False, True, False]
    assert (runs[0].executions, runs[0].total_ms) == (50, 500.5)
    assert "Loading of method forward failed with status 0x14" in (runs[1].error or "")
    assert "Missing operator" in (runs[1].error or "")


def test_text_that_is_not_the_tools_is_refused_naming_its_first_line() -> None:
    with pytest.raises(ParseError, match="line 1: not executor_runner output"):
        parse_executor_runner("STARTING!\nGraph: [m.tflite]\n")


def test_per_execution_lines_become_cold_warmup_and_samples() -> None:
    warm = WarmupRule(min_n=1, min_s=0.0, window=1, tol=0.2)
    (run,) = parse_executor_runner(NEWEST)
    result = executor_runner_result(run, version="v", threads=2, provider="XNNPACK", warm=warm,
                                    planned_warmup=3, command="er ...")  # fmt: skip
    assert result.cold_ms == 9.0
    # windows of one: 5.5 then 5.0 are within 20 %, so warm-up ends after two executions
    assert (result.warmup_n, result.samples_ms) == (2, [5.25])
    assert (result.threads, result.provider, result.load_ms) == (4, "XNNPACK", 17.512)
    assert result.tool_stats is None and result.stats_source == "executor_runner"


def test_a_summed_time_only_is_the_tools_mean_over_all_executions() -> None:
    (run,) = parse_executor_runner(SUMMED)
    result = executor_runner_result(run, version="v", threads=1, provider="XNNPACK",
                                    warm=WarmupRule(), planned_warmup=10, command=None)  # fmt: skip
    assert result.samples_ms == [] and result.tool_stats is not None
    assert (result.tool_stats.n, result.tool_stats.mean) == (50, 500.5 / 50)
    assert result.ops_reference_ms == 500.5 / 50 and result.warmup_n == 0


def test_warmup_never_takes_every_execution() -> None:
    never = WarmupRule(min_n=100, min_s=0.0)
    assert warmup_end([1.0, 1.0, 1.0], never, planned=10) == 2
    assert warmup_end([1.0, 1.0, 1.0], never, planned=1) == 1


# ---------------------------------------------------------------- hostile numbers

#: Log lines printed by the newest builds, with their times left to fill in.
ITERATION = "I 00:00:00.040000 executorch:executor_runner.cpp:742] Iteration {i} of 3: {ms} ms\n"
EXECUTED = (
    "I 00:00:00.070100 executorch:executor_runner.cpp:752] Model executed successfully "
    "3 time(s) in {ms} ms.\n"
)
LOADED = "I 00:00:00.003400 executorch:executor_runner.cpp:468] Model file m.pte is loaded.\n"


def _timed_log(ms: str, *, at: int = 2, total_ms: str = "15.0") -> str:
    """Three executions, the one ``at`` (1-based) taking ``ms``."""
    times = ["5.0", "5.0", "5.0"]
    times[at - 1] = ms
    lines = [ITERATION.format(i=i, ms=t) for i, t in enumerate(times, start=1)]
    return LOADED + "".join(lines) + EXECUTED.format(ms=total_ms)


@pytest.mark.parametrize("ms", ["1e999", "-7.5", "-0.5e3", "1e300"])
def test_a_time_that_is_not_a_finite_non_negative_figure_is_refused_naming_its_line(
    ms: str,
) -> None:
    with pytest.raises(ParseError, match=r"line 3: .*(finite|>= 0|at most)"):
        parse_executor_runner(_timed_log(ms))
    with pytest.raises(ParseError, match=r"line 5: "):
        parse_executor_runner(_timed_log("5.0", total_ms=ms))


def test_a_count_too_long_to_be_a_number_is_refused_naming_its_line() -> None:
    digits = "9" * 5000  # int() of more than 4300 digits raises ValueError
    log = LOADED + EXECUTED.replace("3 time(s)", f"{digits} time(s)").format(ms="1.0")
    with pytest.raises(ParseError, match=r"line 2: "):
        parse_executor_runner(log)


@pytest.mark.parametrize("ms", ["1e999", "-7.5"])
def test_bench_import_of_such_a_log_names_the_file_and_line(tmp_path: Path, ms: str) -> None:
    """1e999 was an OverflowError (warm-up detection took int() of infinity); -7.5 a run stored
    as ok with a negative median."""
    from benchharness.results.importer import parse_log_rows

    log = tmp_path / "er.log"
    log.write_text(_timed_log(ms), encoding="utf-8")
    with pytest.raises(ParseError, match=rf"{log}: .*line 3"):
        parse_log_rows("executor-runner", log)
