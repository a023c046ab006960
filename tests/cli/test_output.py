"""What a reader of ``bench run`` and ``bench results`` gets outside a terminal: whole tables,
intervals beside medians, one diagnosis per cause, and one progress line per finished job.

Synthetic rows throughout (``RunRow.from_values``), so nothing here depends on the machine's
speed; one tiny real run checks that the progress lines reach a pipe while the run goes on."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from benchharness.cli import common
from benchharness.cli.display import LineReporter, RichReporter, reporter_for
from benchharness.cli.rowtext import fmt_interval, fmt_processes, interval_pct, job_line
from benchharness.cli.run import show_results
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
#: Names longer than an 80-column table leaves them: what the zoo's own names do to it.
LONG_NAMES = ("mobilenet_v3_large_100_224_wide", "efficientnet_b0_with_a_long_suffix")
#: The variance flags a busy machine raises on every row.
NOISY = "HIGH_IQR;VERY_HIGH_IQR;HIGH_CV;EXTREME;PROCESS_VARIANCE"
#: Environment variables that make rich treat a pipe as a terminal: a test of a pipe drops them.
TERMINAL_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS")


def _row(model: str, fmt: str = "onnx", **kw: Any) -> RunRow:
    """A measured row: 4.38 ms with a 95 % interval of ±14 %, on 5 processes, quiet machine."""
    base: dict[str, Any] = {
        "run_id": "r1", "job_id": f"{model}-{fmt}", "device": "local", "model": model,
        "format": fmt, "precision": "fp32", "status": "ok", "threads": 2, "cpus": 2, "n": 500,
        "median_ms": 4.38, "p90_ms": 5.0, "ci95_low_ms": 3.7668, "ci95_high_ms": 4.9932,
        "ci99_low_ms": 3.5, "ci99_high_ms": 5.3, "processes": 5, "process_stop": "ci",
        "macs": 220_000_000, "gmacs_per_s": 50.2, "wall_s": 12.34,
        "loadavg_start": 2.0, "loadavg_end": 2.1, "loadavg_max": 2.2, "steal_pct": 0.0,
        "process_medians_ms": [4.3, 4.38, 4.4],
    }  # fmt: skip
    return RunRow.from_values({**base, **kw})


def _log_console() -> Console:
    """What stdout is in a CI log: 80 columns, no terminal."""
    return Console(file=io.StringIO(), width=80, force_terminal=False, highlight=False)


def _shown(rows: list[RunRow], **kw: Any) -> str:
    out = _log_console()
    show_results(rows, "r1", False, Path("results/r1"), out=out, **kw)
    assert isinstance(out.file, io.StringIO)
    return out.file.getvalue()


# ------------------------------------------------------------------ the interval and processes


def test_interval_is_half_the_95_interval_relative_to_the_median() -> None:
    row = _row("m")
    assert interval_pct(row) == pytest.approx(14.0)
    assert fmt_interval(row) == "±14 %"
    assert fmt_interval(row.replace(ci95_low_ms=4.3, ci95_high_ms=4.46)) == "±1.8 %"


def test_interval_falls_back_to_99_and_is_empty_without_one() -> None:
    only99 = _row("m", ci95_low_ms=None, ci95_high_ms=None)
    assert interval_pct(only99) == pytest.approx(0.9 / 4.38 * 100)
    neither = only99.replace(ci99_low_ms=None, ci99_high_ms=None)
    assert interval_pct(neither) is None and fmt_interval(neither) == ""
    assert fmt_interval(_row("m", status="failed", median_ms=None)) == ""


def test_processes_say_when_the_cap_ended_them() -> None:
    assert fmt_processes(_row("m")) == "5"
    assert fmt_processes(_row("m", processes=10, process_stop="max_processes")) == "10 (max)"
    assert fmt_processes(_row("m", processes=None)) == ""


# ------------------------------------------------------------------ the table in a log


def test_a_log_gets_whole_names_intervals_and_process_counts() -> None:
    rows = [_row(name, fmt) for name in LONG_NAMES for fmt in ("onnx", "tflite")]
    rows.append(_row("squeezenet1_1", processes=10, process_stop="max_processes"))
    text = _shown(rows)
    assert "…" not in text
    for name in LONG_NAMES:
        assert name in text
    for header in ("median ms", "±", "p90 ms", "processes", "GMACs", "GMAC/s", "status"):
        assert header in text
    assert text.count("±14 %") == len(rows)
    assert "10 (max)" in text and "--max-processes" in text  # the mark and what it means
    table_lines = [line for line in text.splitlines() if LONG_NAMES[0] in line]
    assert all("5" in line.split() for line in table_lines)  # the process count


def test_a_terminal_keeps_the_fitted_table() -> None:
    out = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    rows = [_row(name, fmt) for name in LONG_NAMES for fmt in ("onnx", "tflite")]
    show_results(rows, "r1", False, Path("results/r1"), out=out)
    assert isinstance(out.file, io.StringIO)
    assert max(len(line) for line in out.file.getvalue().splitlines()) <= 80


def test_a_long_error_is_printed_whole_under_the_table() -> None:
    error = "RunnerError: the runner exited with status 139 " + "while loading the model " * 5
    rows = [_row("ok_model"), _row("broken", status="failed", error=error, median_ms=None)]
    text = _shown(rows)
    assert f"local broken onnx: failed: {error}" in text.splitlines()
    header = next(line for line in text.splitlines() if "median ms" in line)
    assert len(header) < len(error)  # the table stays as wide as its numbers


def test_a_precision_column_only_when_a_run_has_more_than_fp32() -> None:
    assert "precision" not in _shown([_row("m")])
    assert "int8-dynamic" in _shown([_row("m"), _row("m", precision="int8-dynamic")])


# ------------------------------------------------------------------ one diagnosis per cause


def _busy(model: str) -> RunRow:
    return _row(model, flags=NOISY, loadavg_start=3.3, loadavg_end=4.1, loadavg_max=4.1,
                process_medians_ms=[4.0, 5.4, 4.3])  # fmt: skip


def test_a_busy_machine_is_one_block_naming_the_load() -> None:
    rows = [_busy(f"model_{i}") for i in range(34)]
    text = _shown(rows)
    blocks = [line for line in text.splitlines() if line.startswith("! ")]
    assert blocks == [
        "! busy machine: 34 of 34 rows (HIGH_IQR, VERY_HIGH_IQR, HIGH_CV, EXTREME, "
        "PROCESS_VARIANCE)"
    ]
    assert "load average was 3.3-4.1 on 2 cores" in " ".join(text.split())
    assert "--affinity" in text
    assert "bench results r1 --flags" in text
    # the old wall: no row's flags, no per-flag advice
    assert "model_7 onnx: HIGH_IQR" not in text and "outliers dominate the mean" not in text


def test_a_throttled_device_is_said_with_its_evidence() -> None:
    rows = [
        _row("hot", flags="THROTTLED", throttle_ratio=1.25, temp_start_c=40.0, temp_end_c=52.5),
        _row("cool"),
    ]
    text = " ".join(_shown(rows).split())
    assert "! throttled device: 1 of 2 rows (THROTTLED)" in text
    assert "25 % slower" in text and "12.5 °C" in text
    assert "rows: local hot onnx" in text


def test_a_quiet_run_raises_nothing() -> None:
    text = _shown([_row(f"m{i}") for i in range(5)])
    assert "!" not in text and "--flags" not in text


def test_the_flags_option_lists_every_row_and_what_each_flag_means() -> None:
    rows = [_busy("a"), _row("b", flags="FEW_SAMPLES", n=40), _row("c")]
    text = " ".join(_shown(rows, flags=True).split())
    assert "local a onnx: HIGH_IQR, VERY_HIGH_IQR, HIGH_CV, EXTREME, PROCESS_VARIANCE" in text
    assert "local b onnx: FEW_SAMPLES" in text and "local c onnx:" not in text
    assert "FEW_SAMPLES: under 64 samples" in text and "HIGH_CV: outliers dominate" in text
    assert "busy machine" not in text


# ------------------------------------------------------------------ bench results, as run


@pytest.fixture()
def log_console(monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """The CLI's console as a log: the command's output lands in it."""
    out = _log_console()
    monkeypatch.setattr(common, "console", out)
    yield out


def test_bench_results_in_a_log_and_with_flags(tmp_path: Path, log_console: Console) -> None:
    from benchharness.cli import cli

    store = RunStore.create(tmp_path)
    for name in LONG_NAMES:
        store.add_job(_busy(name).replace(run_id=store.run_id))
    result = CliRunner().invoke(cli, ["results", store.run_id, "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert isinstance(log_console.file, io.StringIO)
    text = log_console.file.getvalue()
    assert all(name in text for name in LONG_NAMES) and "…" not in text
    assert "±14 %" in text and "! busy machine: 2 of 2 rows" in text
    assert f"bench results {store.run_id} --flags --results-dir {tmp_path}" in text

    log_console.file.seek(0)
    log_console.file.truncate()
    result = CliRunner().invoke(
        cli, ["results", store.run_id, "--results-dir", str(tmp_path), "--flags"]
    )
    assert result.exit_code == 0, result.output
    text = log_console.file.getvalue()
    assert f"local {LONG_NAMES[0]} onnx: HIGH_IQR" in text and "busy machine" not in text


# ------------------------------------------------------------------ progress in a log


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_one_line_per_finished_job() -> None:
    out, clock = _log_console(), _Clock()
    reporter = LineReporter(out, clock=clock)
    model = LONG_NAMES[0]
    with reporter:
        reporter.stage("local", f"{model} onnx process 1/5-10")  # nothing: a stage is live-only
        clock.now += 30
        reporter.job_done("local", _row(model, status="partial", error="1 of 5 processes"))
        clock.now += 42
        reporter.job_done("local", _row(model))
        clock.now += 3
        reporter.job_done("local", _row("broken", status="failed", error="RunnerError: boom",
                                        median_ms=None, processes=None, wall_s=0.5))  # fmt: skip
        reporter.stage("phone", "failed: DeviceError: unreachable")
    assert isinstance(out.file, io.StringIO)
    assert out.file.getvalue().splitlines() == [
        f"[1:12] local {model} onnx fp32: 4.38 ms ±14 %, 5 processes in 12.3 s",
        "[1:15] local broken onnx fp32: failed: RunnerError: boom in 0.5 s",
        "[1:15] phone: failed: DeviceError: unreachable",
    ]


def test_a_capped_job_says_so_in_its_line() -> None:
    line = job_line("local", _row("m", processes=10, process_stop="max_processes"))
    assert line == "local m onnx fp32: 4.38 ms ±14 %, 10 processes (max) in 12.3 s"


def test_the_live_display_is_for_terminals_only() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(reporter_for(terminal), RichReporter)
    assert isinstance(reporter_for(_log_console()), LineReporter)


def test_a_real_run_into_a_pipe_prints_its_job_before_the_summary(results_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in TERMINAL_ENV}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "benchharness.cli", "run", "--device", "local", "--quick",
         "--formats", "onnx", "--input-shape", "1x3x32x32", "--models", "student_net",
         "--no-ops", "--results-dir", str(results_dir)],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,  # stdout: a pipe
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    progress = [i for i, line in enumerate(lines) if "local student_net onnx fp32: " in line]
    title = next(i for i, line in enumerate(lines) if line.strip().startswith("Run "))
    assert len(progress) == 1 and progress[0] < title, proc.stdout
    assert " ms ±" in lines[progress[0]] and "1 process in " in lines[progress[0]]
    assert "…" not in proc.stdout


def test_the_summary_shows_each_multimodal_rows_modes_under_the_table() -> None:
    modal = _row("mobilenet_v2", flags="PROCESS_VARIANCE;MULTIMODAL", modes="4.03:0.3;6.71:0.7")
    shown = " ".join(_shown([modal, _row("resnet18")]).split())
    assert "local mobilenet_v2 onnx: modes 4.03 ms (30 %), 6.71 ms (70 %)" in shown
    assert "resnet18 onnx: modes" not in shown
    # and the diagnosis names the modes as what the processes did
    assert "fall into modes (mobilenet_v2: 4.03 ms 30 %, 6.71 ms 70 %)" in shown
