"""A job's ``runs.csv`` and ``samples.csv`` rows, from its runner results.

The one row builder: ``bench run`` (``dispatch``) and ``bench import`` (``results/importer.py``)
both hand it typed ``RunnerResult``s, so a native tool's log gives the same row however it
reached the harness.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from benchharness import __version__
from benchharness.ondevice import probe
from benchharness.ondevice.protocol import WARMUP_MODES, RunnerResult, ToolStats
from benchharness.plan.artifacts import Artifact
from benchharness.results.memory_columns import memory_columns
from benchharness.results.schema import OpRow, RunRow, SampleRow
from benchharness.stats.summary import (
    FLAGS,
    Summary,
    ToolSummary,
    summarize,
    summarize_tool_stats,
)

#: A rise of the hottest thermal zone during a model beyond this is thermal throttling territory.
THERMAL_RISE_C = 5.0
#: The artifact's cost figures a row keeps, each in the column of the same name.
COST_COLUMNS = ("macs", "flops", "params", "model_bytes", "activation_bytes", "source_macs",
                "source_params", "init", "folded")
#: Row columns read from the artifact's cost under another name: (column, cost key).
RENAMED_COST_COLUMNS = (("source_compute_ops", "source_ops"), ("compute_ops", "graph_ops"))
#: Digits of ``warmup_settle_s`` kept: 0.1 ms, far below a window of any model's inferences.
SETTLE_S_DIGITS = 4
#: The summed operator times are held within 15 % of the end-to-end median (issue 14's bound);
#: outside it the row carries ``OPS_SUM_OFF``: its operator table is shares, not milliseconds.
OPS_SUM_BOUNDS = (0.85, 1.15)


def tool_stats(results: Sequence[RunnerResult]) -> list[ToolStats] | None:
    """The tool statistics of a job's processes when a native tool measured them all."""
    stats = [r.tool_stats for r in results]
    if not stats or any(s is None for s in stats):
        return None
    return [s for s in stats if s is not None]


def _thermal_rose(results: Sequence[RunnerResult]) -> bool:
    for r in results:
        start = r.env_start.temp_c if r.env_start else None
        end = r.env_end.temp_c if r.env_end else None
        if start is not None and end is not None and end - start > THERMAL_RISE_C:
            return True
    return False


def process_values(results: Sequence[RunnerResult]) -> list[float]:
    """One figure per finished process, the unit the interval and the process rule work on: the
    median of its samples, or a native tool's printed median (its mean where it prints none)."""
    values: list[float] = []
    for r in results:
        if r.samples_ms:
            values.append(statistics.median(r.samples_ms))
        elif r.tool_stats is not None:
            figure = r.tool_stats.median if r.tool_stats.median is not None else r.tool_stats.mean
            if figure is not None:
                values.append(figure)
    return values


def throttle_ratio(results: Sequence[RunnerResult]) -> float | None:
    """The median over processes of the throttle probe's after/before ratio.

    The median, not the largest: a throttled device slows the probe in most processes of a
    model, while one disturbed probe among ten processes is a neighbour, and the largest of ten
    ratios would make that neighbour a flag."""
    ratios = [
        r.probe_after_ms / r.probe_before_ms
        for r in results
        if r.probe_before_ms and r.probe_after_ms
    ]
    return statistics.median(ratios) if ratios else None


def summary_of(results: Sequence[RunnerResult], governor: str | None) -> Summary | ToolSummary:
    """The statistics and flags of a job's finished processes (at least one)."""
    first = results[0]
    warmup_n = sum(r.warmup_n or 0 for r in results)
    tools = tool_stats(results)
    if tools is not None:
        # a native tool printed aggregates, not samples: summarised as printed, nothing invented
        return summarize_tool_stats(
            tools,
            warmup_n=warmup_n,
            cold_ms=first.cold_ms,
            governor=governor,
            thermal_rose=_thermal_rose(results),
        )
    samples = [s for r in results for s in r.samples_ms]
    proc_medians = [statistics.median(r.samples_ms) for r in results if r.samples_ms]
    return summarize(
        samples,
        process_medians_ms=proc_medians if len(proc_medians) > 1 else (),
        warmup_n=warmup_n,
        cold_ms=first.cold_ms,
        governor=governor,
        throttle_ratio=throttle_ratio(results),
        thermal_rose=_thermal_rose(results),
        process_sizes=[len(r.samples_ms) for r in results],
    )


def ops_sum_ratio(
    ops_rows: Sequence[OpRow], median_ms: float | None, fallback: float | None = None
) -> float | None:
    """Summed per-operator medians over the row's median: against all processes, not only the
    one the profiled pass followed, so one disturbed process does not skew it."""
    known = [r.median_us for r in ops_rows if r.median_us is not None]
    if not known or not median_ms or median_ms <= 0:
        return fallback
    return sum(known) / 1e3 / median_ms


def build_row(
    *,
    run_id: str,
    job_id: str,
    device: str,
    transport: str,
    affinity: str,
    artifact: Artifact,
    results: Sequence[RunnerResult],
    processes_wanted: int,
    error: str | None = None,
    ops_rows: Sequence[OpRow] = (),
    ops_ratio: float | None = None,
    ops_error: str | None = None,
    started_at: str = "",
    wall_s: float = 0.0,
) -> RunRow:
    """The ``runs.csv`` row of one job: identity, environment, statistics, status.

    ``ops_ratio`` is the summed operator time over end-to-end when it was taken apart from the
    processes (a resumed job, a native tool's reference figure); ``ops_error`` why the job has
    no operator rows when its per-operator pass failed.
    """
    row: dict[str, Any] = {
        "run_id": run_id,
        "job_id": job_id,
        "device": device,
        "transport": transport,
        "affinity": affinity,
        **_artifact_columns(artifact),
        "harness_version": __version__,
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 3),
        "ops_error": ops_error,
        **_cost_columns(artifact),
        **memory_columns(results, artifact.cost),
    }
    if results:
        row.update(_environment_columns(results))
        row.update(warmup_columns(results))
    if error or not results:
        row.update(status="failed", error=error or "no runner process finished")
        return RunRow.from_values(row)
    row.update(_measured_columns(results, artifact, ops_rows, ops_ratio))
    row.update(_outcome_columns(results, artifact, processes_wanted))
    return RunRow.from_values(row)


def _artifact_columns(a: Artifact) -> dict[str, Any]:
    """What was measured: the artifact's model, format, origin and its export's accuracy."""
    return {
        "format": a.format,
        "precision": a.precision,
        "model": a.model,
        "source": a.source,
        "input_shape": a.input_shape,
        "artifact_sha256": a.sha256,
        "artifact": str(a.path) if a.path else "",
        "max_abs_err": a.max_abs_err,
        "tolerance": a.tolerance,
    }


def _cost_columns(a: Artifact) -> dict[str, Any]:
    """The artifact's static cost (``cost/artifact_cost.py``)."""
    columns = {k: a.cost.get(k) for k in COST_COLUMNS}
    columns.update({column: a.cost.get(key) for column, key in RENAMED_COST_COLUMNS})
    if a.cost.get("folded"):
        columns["flags"] = "GRAPH_FOLDED"  # on failed rows too; measured ones add their own
    return columns


def _environment_columns(results: Sequence[RunnerResult]) -> dict[str, Any]:
    """How the processes ran: the first one's runtime, the environment at the start of the first
    and the temperature at the end of the last."""
    first, last = results[0], results[-1]
    env_s, env_e = first.env_start, last.env_end
    return {
        "runtime": first.runtime,
        "runtime_version": first.runtime_version,
        "provider": first.provider,
        "threads": first.threads,
        "load_ms": first.load_ms,
        "cpu_model": env_s.cpu_model if env_s else None,
        "governor": env_s.governor if env_s else None,
        "max_freq_mhz": env_s.max_freq_mhz if env_s else None,
        "temp_start_c": env_s.temp_c if env_s else None,
        "temp_end_c": env_e.temp_c if env_e else None,
        "loadavg_start": env_s.loadavg if env_s else None,
        "cpus": env_s.cpus if env_s else None,
        "arch": next((e.arch for e in (env_s, env_e) if e is not None and e.arch), None),
        "emulated": emulated_by(results),
        **load_columns(results),
    }


def warmup_columns(results: Sequence[RunnerResult]) -> dict[str, Any]:
    """What each process's warm-up was, counted; where the job's latency settled (the first
    process that saw it settle under the full rule); the calibrated count its later processes
    ran. Empty where the processes do not say (a native tool, a runner before issue 29)."""
    settled = next((r for r in results if r.warmup_settle_n is not None), None)
    settle_s = settled.warmup_settle_s if settled is not None else None
    targets = [r.rule.warmup_target_n for r in results if r.rule is not None]
    return {
        "warmup_mode": mode_counts([r.warmup_mode for r in results]),
        "warmup_settle_n": settled.warmup_settle_n if settled is not None else None,
        "warmup_settle_s": round(settle_s, SETTLE_S_DIGITS) if settle_s is not None else None,
        "warmup_target_n": next((t for t in targets if t is not None), None),
    }


def mode_counts(modes: Sequence[str | None]) -> str | None:
    """``warmup_mode``'s cell: ``mode:count`` in ``WARMUP_MODES`` order; None when no process
    said."""
    counts = {m: sum(1 for x in modes if x == m) for m in WARMUP_MODES}
    return ";".join(f"{m}:{c}" for m, c in counts.items() if c) or None


def warmup_modes(cell: str | None) -> list[str]:
    """``warmup_mode``'s cell back as one mode per process (in ``WARMUP_MODES`` order: the
    order the processes ran in is not kept); [] for an empty or damaged cell, which then says
    nothing rather than something wrong."""
    out: list[str] = []
    for part in (cell or "").split(";"):
        mode, _, count = part.partition(":")
        if mode not in WARMUP_MODES or not count.isdigit():
            return []
        out += [mode] * int(count)
    return out


def emulated_by(results: Sequence[RunnerResult]) -> str | None:
    """The CPU translation any process ran under (``qemu-user``, ``rosetta``), or None."""
    for r in results:
        for env in (r.env_start, r.env_end):
            if env is not None and env.emulated:
                return env.emulated
    return None


def with_flags(flags: str, extra: Sequence[str]) -> str:
    """``flags`` (``;``-separated) with ``extra`` added, in ``FLAGS`` order."""
    have = {f for f in flags.split(";") if f} | set(extra)
    known = [f for f in FLAGS if f in have]
    return ";".join(known + sorted(have - set(FLAGS)))


def load_columns(results: Sequence[RunnerResult]) -> dict[str, Any]:
    """How busy the machine was across the job: the closing load average, the highest any
    probe read, and the largest steal share of one process (``probe.steal_share``), in %."""
    envs = [e for r in results for e in (r.env_start, r.env_end) if e is not None]
    loads = [e.loadavg for e in envs if e.loadavg is not None]
    steal = [
        share
        for r in results
        if r.env_start is not None and r.env_end is not None
        if (share := probe.steal_share(vars(r.env_start), vars(r.env_end))) is not None
    ]
    last = results[-1].env_end
    return {
        "loadavg_end": last.loadavg if last else None,
        "loadavg_max": max(loads) if loads else None,
        "steal_pct": round(max(steal) * 100.0, 2) if steal else None,
    }


def _measured_columns(
    results: Sequence[RunnerResult],
    a: Artifact,
    ops_rows: Sequence[OpRow],
    ops_ratio: float | None,
) -> dict[str, Any]:
    """The statistics of the finished processes (at least one), their throughput and the summed
    operator time over end-to-end."""
    env = results[0].env_start  # the governor the row names (``_environment_columns``)
    governor = env.governor if env else None
    node_costs = [r.profile.node_cost_us for r in results if r.profile is not None]
    row: dict[str, Any] = {
        "stats_source": results[0].stats_source,
        "throttle_ratio": throttle_ratio(results),
        "ops_node_cost_us": next((c for c in node_costs if c is not None), None),
    }
    reference = results[0].ops_reference_ms
    if any(r.samples_ms for r in results) or tool_stats(results) is not None:
        summary = summary_of(results, governor)
        row.update(summary.as_row())
        extra = ["EMULATED"] if emulated_by(results) else []
        if a.cost.get("folded"):
            extra.append("GRAPH_FOLDED")
        if extra:
            row["flags"] = with_flags(row.get("flags") or "", extra)
        macs = a.cost.get("macs")
        if macs and summary.median is not None and summary.median > 0:
            row["gmacs_per_s"] = round(macs / (summary.median / 1e3) / 1e9, 3)
        if summary.median is not None:
            reference = summary.median
    # else: an operator table without timings (a capture of the profile alone), nothing to sum up
    if tool_stats(results) is not None:
        # a tool's operator times are set against the figure the tool names (its mean for
        # benchmark_model's per-run averages)
        reference = results[0].ops_reference_ms
    ratio = row["ops_sum_ratio"] = ops_sum_ratio(ops_rows, reference, ops_ratio)
    if ratio is not None and not OPS_SUM_BOUNDS[0] <= ratio <= OPS_SUM_BOUNDS[1]:
        row["flags"] = with_flags(row.get("flags") or "", ["OPS_SUM_OFF"])
    row.update(_profile_columns(results))
    return row


def _profile_columns(results: Sequence[RunnerResult]) -> dict[str, Any]:
    """The kept profiled pass's run median and how many passes it took (the first process that
    ran one: the job's operator rows are its)."""
    for r in results:
        p = r.profile
        pass_ms = p.pass_ms() if p is not None and p.source else None
        if p is not None and pass_ms is not None:
            return {"ops_run_ms": round(pass_ms, 6), "ops_attempts": p.attempts}
    return {}


def _outcome_columns(
    results: Sequence[RunnerResult], a: Artifact, processes_wanted: int
) -> dict[str, str]:
    """``status`` and ``error`` of a job with finished processes: ``partial`` until it has the
    processes it wants, ``failed`` when the export or the outputs are wrong, else ``ok``."""
    problems = []
    if a.max_abs_err is not None and a.tolerance is not None and a.max_abs_err > a.tolerance:
        problems.append(
            f"export disagrees with PyTorch: max_abs_err {a.max_abs_err:.3g} > tolerance "
            f"{a.tolerance:.3g}"
        )
    if not all(r.outputs_finite for r in results):
        problems.append("the runtime produced non-finite outputs")
    if len(results) < processes_wanted:
        return {"status": "partial", "error": f"{len(results)} of {processes_wanted} processes"}
    if problems:
        return {"status": "failed", "error": "; ".join(problems)}
    return {"status": "ok", "error": ""}


def sample_rows(
    device: str, artifact: Artifact, results: Sequence[RunnerResult]
) -> list[SampleRow]:
    """``samples.csv`` rows: every inference of every process, in order."""
    a = artifact
    return [
        SampleRow(device=device, model=a.model, format=a.format, precision=a.precision,
                  process=p, index=i, latency_ms=ms)
        for p, result in enumerate(results)
        for i, ms in enumerate(result.samples_ms)
    ]  # fmt: skip


def op_rows(rows: Sequence[Mapping[str, Any]], base: Mapping[str, Any]) -> list[OpRow]:
    """A job's ``ops.csv`` rows from its joined operators (``parse/op_join``): numbered, with
    the job's identity and each operator's share of the summed time."""
    total = sum(r["median_us"] or 0.0 for r in rows)
    out = []
    for i, r in enumerate(rows):
        share = (r["median_us"] / total) if total > 0 and r["median_us"] is not None else None
        out.append(OpRow.from_values({**base, "op_index": i, **r, "share": share}))
    return out
