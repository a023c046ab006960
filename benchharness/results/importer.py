"""``bench import``: turn a log captured by hand with a native tool into a results folder.

Only what the tool printed is stored; a statistic it did not print stays empty. Each run in the
log becomes one ``runs.csv`` row (and its operators ``ops.csv`` rows) of a new run folder. The
runs become runner results and rows by the same code that ``bench run`` uses on a device with the
tool (``parse/native_result.py``, ``results/rows.py``), so the same log gives the same row.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from benchharness import __version__
from benchharness.errors import ParseError, UsageError
from benchharness.ondevice.protocol import RunnerResult
from benchharness.parse import native_result as nr
from benchharness.parse.logtext import MAX_LOG_CHARS
from benchharness.parse.op_join import litert_rows, ort_rows
from benchharness.parse.ort_profile import (
    MAX_PROFILE_CHARS,
    load_profile_events,
    model_run_durations_us,
)
from benchharness.plan.artifacts import Artifact
from benchharness.results.rows import build_row, op_rows
from benchharness.results.store import RunStore

Kind = Literal["benchmark-model", "ort-perf-test", "executor-runner"]
KINDS: tuple[str, ...] = get_args(Kind)

#: The tool each kind of log comes from.
TOOLS: dict[str, nr.Tool] = {
    "benchmark-model": nr.BENCHMARK_MODEL,
    "ort-perf-test": nr.PERF_TEST,
    "executor-runner": nr.EXECUTOR_RUNNER,
}
#: How the measurement reached the harness: by hand, not over a transport of ours.
TRANSPORT = "import"
#: One tool invocation is one process; the tools cannot say more.
PROCESSES_PER_RUN = 1
#: The tools print no version, and a captured log does not say which binary printed it.
UNKNOWN_VERSION = "unknown (imported log)"

#: An operator joined to its cost (``parse/op_join``), before ``rows.op_rows`` makes it an OpRow.
JoinedOp = dict[str, Any]


def _input_shape(params: dict[str, str]) -> str:
    shapes = params.get("Input shapes", "")
    if not shapes or ":" in shapes:  # several inputs: no single shape to report
        return ""
    return "x".join(s.strip() for s in shapes.split(","))


def _read(path: Path, what: str, limit: int) -> str:
    """The file as text, reading at most ``limit`` characters' worth: a larger one is refused
    before it fills memory."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise ParseError(f"{path}: over {limit // 2**20} MiB is no {what} a tool writes")
    return data.decode("utf-8", errors="replace")


def _ort_profile(path: Path) -> tuple[list[JoinedOp], float | None]:
    """Operator rows of an ORT profile and the median of its own timed runs (µs)."""
    text = _read(path, "profile", MAX_PROFILE_CHARS)
    durations = model_run_durations_us(load_profile_events(text, source=str(path)))
    skip = nr.PERF_TEST_WARMUP_RUNS if len(durations) > nr.PERF_TEST_WARMUP_RUNS else 0
    rows = ort_rows(text, skip, None)
    if not rows:
        raise ParseError(f"{path}: the profile holds no node kernel events")
    timed = durations[skip:]
    return rows, statistics.median(timed) if timed else None


def _benchmark_model_result(run: Any) -> tuple[RunnerResult, list[JoinedOp]]:
    """A benchmark_model run's result and its operators; a capture of only the operator table
    (no timing count) keeps its operators and invents no latency."""
    ops_profile = nr.benchmark_model_ops_profile(run, None)
    ops = litert_rows(ops_profile.ops, None) if ops_profile.source else []
    try:
        result = nr.benchmark_model_result(run, version=UNKNOWN_VERSION, command=None)
    except ParseError:
        if not ops:
            raise
        result = RunnerResult(runtime=nr.BENCHMARK_MODEL.runtime, stats_source="benchmark_model")
    result.threads = run.threads
    return result, ops


def parse_log_rows(
    kind: Kind, log: Path, *, profile_json: Path | None = None
) -> list[tuple[Artifact, RunnerResult, list[JoinedOp]]]:
    """(what the log measured, its result, its operator rows) for every run in ``log``."""
    if kind not in KINDS:
        raise UsageError(f"unknown log kind {kind!r}; choose from {', '.join(KINDS)}")
    tool = TOOLS[kind]
    if profile_json is not None and tool is not nr.PERF_TEST:
        raise UsageError("--profile-json is an ONNX Runtime profile; use it with ort-perf-test")
    out = nr.ToolOutput(tool, _read(log, "log", MAX_LOG_CHARS))
    try:
        runs = nr.parse_runs(out)
        parsed = []
        for run in runs:
            artifact = Artifact(
                model="", source=TRANSPORT, format=tool.fmt, precision="", path=None,
                input_shape=_input_shape(getattr(run, "params", {})),
            )  # fmt: skip
            graph = (
                getattr(run, "params", {}).get("Graph")
                or getattr(run, "flags", {}).get("graph")
                or getattr(run, "model_path", None)
            )
            if graph:
                artifact.path = Path(graph)
            ops: list[JoinedOp] = []
            if run.failed:
                result = RunnerResult(ok=False, error=run.error or "the tool failed")
            elif tool is nr.BENCHMARK_MODEL:
                result, ops = _benchmark_model_result(run)
            elif tool is nr.EXECUTOR_RUNNER:
                result = nr.executor_runner_log_result(run, version=UNKNOWN_VERSION)
            else:
                result = nr.perf_test_result(run, version=UNKNOWN_VERSION, command=None)
            parsed.append((artifact, result, ops))
        if profile_json is not None:
            if len(parsed) != 1:
                raise UsageError(
                    f"{log} holds {len(parsed)} runs; a profile can be matched to one only: "
                    "split the log"
                )
            ops, e2e_us = _ort_profile(profile_json)
            artifact, result, _ = parsed[0]
            # the op medians are set against the profile's own runs: the same inferences
            if e2e_us is not None:
                result.ops_reference_ms = e2e_us / 1000.0
            parsed[0] = (artifact, result, ops)
        return parsed
    except ParseError as exc:
        if str(log) in str(exc):
            raise
        raise ParseError(f"{log}: {exc}") from exc


def import_log(
    kind: Kind,
    log: Path,
    *,
    device: str,
    model: str,
    results_dir: Path,
    run_id: str | None = None,
    profile_json: Path | None = None,
    precision: str = "fp32",
) -> RunStore:
    """Parse ``log`` (and ``profile_json``) and write them as a new run folder; return it.

    The log is parsed before the folder is created, so a bad log leaves nothing behind.
    """
    parsed = parse_log_rows(kind, log, profile_json=profile_json)
    tool = TOOLS[kind]
    store = RunStore.create(results_dir, run_id)
    store.meta = {
        "kind": "import",
        "tool": tool.runtime,
        "log": str(log),
        "device": device,
        "model": model,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "harness_version": __version__,
    }
    if profile_json is not None:
        store.meta["profile_json"] = str(profile_json)
    store.write_meta()
    ident = {"device": device, "model": model, "format": tool.fmt, "precision": precision}
    for i, (artifact, result, ops) in enumerate(parsed):
        job_id = f"{device}|{model}|{tool.fmt}|{precision}|{TRANSPORT}|{i}"
        artifact.model, artifact.precision = model, precision
        ops_rows = op_rows(ops, {**ident, "runtime": tool.runtime})
        row = build_row(
            run_id=store.run_id,
            job_id=job_id,
            device=device,
            transport=TRANSPORT,
            affinity="",
            artifact=artifact,
            results=[result] if result.ok else [],
            processes_wanted=PROCESSES_PER_RUN,
            error=None if result.ok else result.error,
            ops_rows=ops_rows,
        )
        row = row.replace(
            runtime=tool.runtime,
            processes=PROCESSES_PER_RUN,
            # what a log cannot say stays empty rather than made up
            runtime_version=None,
            finished_at=None,
            wall_s=None,
            started_at=None,
        )
        store.add_job(row, ops_rows)
    return store


def summary_line(store: RunStore) -> str:
    """One line per import for the CLI: where it went and the headline numbers."""
    parts = []
    for row in store.runs:
        if not row.ok:
            parts.append(f"failed: {row.error}")
            continue
        headline, label = row.median_ms, "median"
        if headline is None:
            headline, label = row.mean_ms, "mean"
        text = f"{label} {headline:.3f} ms" if headline is not None else "no e2e time"
        parts.append(f"{text} (n={row.n or '?'})")
    ops = len(store.ops)
    return f"{store.run_id}: {len(store.runs)} run(s): " + "; ".join(parts) + f"; {ops} op rows"


__all__ = ["KINDS", "TOOLS", "import_log", "parse_log_rows", "summary_line"]
