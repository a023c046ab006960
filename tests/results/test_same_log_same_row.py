"""One path from a native tool's output to a row: the same captured log gives the same statistics
whether ``bench import`` reads it or ``bench run`` gets it from the tool on a device.

The dispatch side is the code ``runners/native.py`` runs on each invocation (the tool's output
and exit status in, a runner result out, the row from ``results/rows.py``); the import side is
``bench import`` writing a results folder and reading it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchharness.dispatch.state import JobState, job_row
from benchharness.errors import ParseError
from benchharness.parse.native_result import BENCHMARK_MODEL, PERF_TEST, Tool
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import RunOptions
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.importer import import_log
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from benchharness.runners.native import Invocation, benchmark_model_result, perf_test_result
from benchharness.runners.python import RunnerSettings
from tests.runners.fixtures import FIXTURES

#: The columns a log determines; identity, timestamps and environment differ by nature.
STAT_COLUMNS = (
    "n", "warmup_n", "processes", "load_ms", "cold_ms", "median_ms", "mean_ms", "std_ms",
    "min_ms", "max_ms", "p10_ms", "p90_ms", "p99_ms", "iqr_ms", "mad_ms", "cv", "ci99_low_ms",
    "ci99_high_ms", "process_medians_ms", "flags", "provider", "threads", "stats_source",
    "status", "runtime",
)  # fmt: skip

LOGS = sorted((FIXTURES / "benchmark_model").glob("*.txt")) + sorted(
    (FIXTURES / "onnxruntime_perf_test").glob("*.txt")
)


def tool_of(log: Path) -> tuple[Tool, str]:
    if log.parent.name == "benchmark_model":
        return BENCHMARK_MODEL, "benchmark-model"
    return PERF_TEST, "ort-perf-test"


def stats(row: RunRow) -> dict[str, Any]:
    """The row's ``STAT_COLUMNS`` (a misspelt one is a KeyError)."""
    values = row.as_dict()
    return {c: values[c] for c in STAT_COLUMNS}


def dispatched_row(tool: Tool, text: str, tmp: Path) -> RunRow:
    """The row ``bench run`` stores for one invocation that printed ``text``."""
    inv = Invocation(argv=[tool.key], output=text, returncode=0, env_start=None, env_end=None)
    build = benchmark_model_result if tool is BENCHMARK_MODEL else perf_test_result
    result = build(tool, inv, "sha256:0 /data/local/tmp/tool", RunnerSettings(fmt=tool.fmt))
    artifact = Artifact(
        model="m", source="zoo", input_shape="", format=tool.fmt, precision="fp32", path=None
    )
    state = JobState(artifact=artifact, job_id="j", results=[result])
    profile = DeviceProfile(name="phone", transport="adb", serial="x")
    row = job_row(profile, state, RunOptions(processes=1), "r", 1)
    store = RunStore.create(tmp / "dispatched")
    store.add_job(row)
    return RunStore.open(store.path.parent, store.run_id).runs[0]


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_the_same_log_gives_the_same_row(log: Path, tmp_path: Path) -> None:
    tool, kind = tool_of(log)
    imported = import_log(kind, log, device="phone", model="m", results_dir=tmp_path / "imp")
    rows = RunStore.open(imported.path.parent, imported.run_id).runs
    timed = [r for r in rows if r.status == "ok" and r.n is not None]
    text = log.read_text(encoding="utf-8")
    if len(rows) != 1 or not timed:
        # a capture of several runs, or of the operator table alone, is no single timing
        # invocation: dispatch refuses it with the reason, import keeps what it printed
        with pytest.raises(ParseError, match="printed no count"):
            dispatched_row(tool, text, tmp_path)
        return
    dispatched = dispatched_row(tool, text, tmp_path)
    (row,) = timed
    assert stats(dispatched) == stats(row)
