"""A native tool's output as the runner result: the one path from a log to a row.

``bench run`` on a device without python (``runners/native.py``) and ``bench import`` of a log
captured by hand both turn each tool run into a ``protocol.RunnerResult`` here, and both make
their row from it with ``results/rows.py``; so the same log gives the same row either way,
statistics conventions included (the tools print a population std, rows carry the sample std).

The tools print aggregates, not every inference: a result has no ``samples_ms``,
``stats_source`` names the tool and ``tool_stats`` holds what it printed.
``benchmark_model``'s median is printed by newer builds only; ORT's P50 is its
``sorted[int(n / 2)]``, not an interpolated median.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchharness.errors import ParseError, RunnerError
from benchharness.ondevice import protocol
from benchharness.ondevice.litert_profiler import absorbed_nodes, align_xnnpack_ops
from benchharness.ondevice.method import WARMUP_DEFAULT
from benchharness.ondevice.protocol import Memory, Profile, ProfiledOp, RunnerResult, ToolStats
from benchharness.parse import benchmark_model as bm
from benchharness.parse import executor_runner as er
from benchharness.parse import ort_perf_test as pt

if TYPE_CHECKING:
    from benchharness.cost.records import GraphCost


@dataclass(frozen=True)
class Tool:
    """A native benchmark tool: its ``[runtimes]`` key, the format it runs, its runtime name."""

    key: str
    fmt: str
    runtime: str


BENCHMARK_MODEL = Tool("benchmark_model", "tflite", "tflite-benchmark_model")
PERF_TEST = Tool("onnxruntime_perf_test", "onnx", "onnxruntime_perf_test")
EXECUTOR_RUNNER = Tool("executor_runner", "pte", er.RUNTIME)
TOOLS: dict[str, Tool] = {t.fmt: t for t in (BENCHMARK_MODEL, PERF_TEST, EXECUTOR_RUNNER)}

#: perf_test runs one untimed inference before the timed ones, and ``-p`` profiles it too.
PERF_TEST_WARMUP_RUNS = 1
#: How much of a tool's output a failure message quotes: the cause is in the last lines.
ERROR_TAIL_CHARS = 400
#: benchmark_model names XNNPACK's own operators ``Delegate/<operator>:<k>``.
DELEGATE_OP_PREFIX = "Delegate/"
#: The latencies perf_test prints (``-s``) that a ToolStats holds: (field, perf_test's name).
PERF_TEST_LATENCIES = (("min", "min"), ("max", "max"), ("median", "p50"), ("p90", "p90"),
                       ("p99", "p99"))  # fmt: skip
#: ORT's CPU provider: perf_test's default.
ORT_CPU = "CPUExecutionProvider"

#: benchmark_model's "MB" are its kB figures over 1024 (``mem_footprint_kb / 1024.0``): MiB.
MIB = 1 << 20

#: Decimals kept after a unit conversion: drops binary noise (19.9047000000002), far below
#: the precision any tool prints.
CONVERTED_DECIMALS = 9


@dataclass(frozen=True)
class ToolOutput:
    """What one tool invocation printed (stdout and stderr merged in order)."""

    tool: Tool
    text: str
    returncode: int = 0
    command: str | None = None


def _ms(us: float | None) -> float | None:
    return round(us / 1000.0, CONVERTED_DECIMALS) if us is not None else None


def sample_std(population_std: float | None, n: int) -> float | None:
    """benchmark_model prints the population std; the rows carry the sample one (n - 1)."""
    if population_std is None or n < 2:
        return None
    return population_std * math.sqrt(n / (n - 1))


def _tail(text: str) -> str:
    text = text.strip()
    return ("..." + text[-ERROR_TAIL_CHARS:]) if len(text) > ERROR_TAIL_CHARS else text


def tool_failed(out: ToolOutput, reason: str | None) -> RunnerError:
    status = f"exit status {out.returncode}"
    detail = reason or _tail(out.text) or "no output"
    hint = ""
    if out.returncode in (126, 127):
        hint = (
            f"; is {out.tool.key} pushed to the device and executable? (`bench devices check "
            "DEVICE` lists the runtimes it finds)"
        )
    return RunnerError(f"{out.tool.key} failed ({status}): {detail}{hint}")


def parse_runs(out: ToolOutput) -> list[Any]:
    """Every run in the output, as its tool's parser reads it (ParseError naming the line)."""
    parsers: dict[str, Callable[[str], list[Any]]] = {
        BENCHMARK_MODEL.key: bm.parse_benchmark_model,
        PERF_TEST.key: pt.parse_ort_perf_test,
        EXECUTOR_RUNNER.key: er.parse_executor_runner,
    }
    return parsers[out.tool.key](out.text)


def single_run(out: ToolOutput) -> Any:
    """The one run of one invocation; RunnerError with the tool's own error if it failed.

    Output the parser cannot read is the tool's failure when it exited non-zero.
    """
    try:
        runs = parse_runs(out)
    except ParseError as exc:
        if out.returncode != 0:
            raise tool_failed(out, None) from exc
        raise ParseError(f"{out.tool.key}'s output cannot be read: {exc}") from exc
    failed = next((r for r in runs if r.failed), None)
    # one invocation, one run: an earlier failed part is the cause
    run = failed or runs[-1]
    if run.failed or out.returncode != 0:
        raise tool_failed(out, run.error)
    return run


# ------------------------------------------------------------------------------- benchmark_model


def _mib(value: float | None) -> int | None:
    return round(value * MIB) if value is not None else None


def benchmark_model_memory(run: bm.BenchmarkModelRun) -> Memory | None:
    """What benchmark_model printed of memory, in bytes; None where it printed nothing.

    ``init=``/``overall=`` (either wording) and LiteRT's ``Init footprint``/``Overall footprint``
    are the rise of the process's max RSS from the tool's start to the end of init and to the
    end of the runs: init and peak above the tool's start. ``Overall peak memory footprint ...
    via periodic monitoring`` (``--report_peak_memory_footprint``; LiteRT's ``Peak memory``) is
    the whole process's peak: less the overall rise, it gives the start, the baseline.
    """
    init_mb = overall_mb = None
    if run.memory is not None:
        init_mb, overall_mb = run.memory.init_mb, run.memory.overall_mb
    elif run.litert is not None:
        init_mb, overall_mb = run.litert.init_footprint_mb, run.litert.overall_footprint_mb
    absolute_mb = run.peak_memory_mb
    if absolute_mb is None and run.litert is not None:
        absolute_mb = run.litert.peak_memory_mb
    if init_mb is None and overall_mb is None and absolute_mb is None:
        return None
    peak, absolute = _mib(overall_mb), _mib(absolute_mb)
    baseline = absolute - peak if absolute is not None and peak is not None else None
    return Memory(
        source=protocol.MEM_BENCHMARK_MODEL,
        init_bytes=_mib(init_mb),
        # only the whole process's peak printed: that is the peak, as perf_test's
        peak_bytes=peak if peak is not None else absolute,
        baseline_bytes=baseline if baseline is not None and baseline >= 0 else None,
    )


def benchmark_model_stats(run: bm.BenchmarkModelRun) -> ToolStats:
    """The regular runs' statistics as printed (µs -> ms), or ParseError if no count was."""
    stats = run.regular.resolved() if run.regular is not None else None
    if stats is not None and stats.count > 0:
        return ToolStats(
            n=stats.count,
            mean=_ms(stats.avg_us),
            std=_ms(sample_std(stats.std_us, stats.count)),
            min=_ms(stats.min_us),
            max=_ms(stats.max_us),
            median=_ms(stats.median_us),
        )
    litert = run.litert
    if litert is not None and litert.inference_runs:
        return ToolStats(
            n=litert.inference_runs,
            mean=litert.inference_avg_ms,
            std=sample_std(litert.inference_std_ms, litert.inference_runs),
            min=litert.inference_min_ms,
            max=litert.inference_max_ms,
        )
    raise ParseError(
        "benchmark_model printed no count of its regular runs (no `count=...` line after the "
        "second `Running benchmark for at least ...`)"
    )


def benchmark_model_result(
    run: bm.BenchmarkModelRun, *, version: str, threads: int | None = None, command: str | None
) -> RunnerResult:
    """One successful benchmark_model run as a runner result (``samples_ms`` empty)."""
    stats = benchmark_model_stats(run)
    summary = run.summary
    warmup = run.warmup.resolved() if run.warmup is not None else None
    litert = run.litert
    load_ms = run.init_ms
    if load_ms is None and summary is not None:
        load_ms = _ms(summary.init_us)
    if load_ms is None and litert is not None:
        load_ms = litert.init_ms
    cold_ms = _ms(summary.first_inference_us) if summary is not None else None
    if cold_ms is None and warmup is not None:
        cold_ms = _ms(warmup.first_us)
    if cold_ms is None and litert is not None:
        cold_ms = litert.warmup_first_ms
    delegates = dict.fromkeys(d.delegate for d in run.delegations)
    return _result(
        BENCHMARK_MODEL,
        version,
        stats,
        provider="+".join(delegates),
        threads=run.threads or threads,
        load_ms=load_ms,
        cold_ms=cold_ms,
        warmup_n=warmup.count if warmup is not None else None,
        # op rows are averages per run: set against the mean
        ops_reference_ms=stats.mean,
        command=command,
        memory=benchmark_model_memory(run),
    )


def benchmark_model_profile(out: ToolOutput, cost: GraphCost | None = None) -> Profile:
    """The per-operator invocation's operators, aligned to the graph (``source`` None on
    failure)."""
    try:
        run = single_run(out)
    except (RunnerError, ParseError) as exc:
        return Profile(error=f"{type(exc).__name__}: {exc}")
    return benchmark_model_ops_profile(run, cost)


def benchmark_model_ops_profile(run: bm.BenchmarkModelRun, cost: GraphCost | None) -> Profile:
    ops = run.op_times()
    if not ops:
        return Profile(error="benchmark_model printed no operator table")
    block = run.regular_profile
    runs = block.timings.count if block is not None and block.timings is not None else None
    aligned = align_benchmark_model_ops(
        [
            {"op_name": o.op_name, "op_type": o.op_type, "calls": o.calls,
             "per_run_us": o.per_run_us, "node_index": o.node_index}
            for o in ops
        ],
        cost,
    )  # fmt: skip
    return Profile(source=protocol.BENCHMARK_MODEL_PROFILE, runs=runs, ops=aligned)


def align_benchmark_model_ops(
    ops: Sequence[Mapping[str, Any]], cost: GraphCost | None
) -> list[ProfiledOp]:
    """benchmark_model's operator rows aligned to the TFLite graph.

    Rows of TFLite kernels name their node (``[tensor]:N`` with the graph's op type at N): exact.
    XNNPACK's own operators (``Delegate/<op>:<k>``, ``k`` its index inside the delegate) are
    aligned to the delegated nodes (those no kernel row claimed) by ``litert_profiler``'s
    monotone alignment; nodes it folded away are absorbed into a neighbour. A single delegate
    partition row (older builds, GPU/NNAPI delegates) absorbs every delegated node; with several
    partitions nothing can be told apart and their cost stays in rows of its own. Runtime rows
    (``LiteRT::Run[...]``) carry time and no cost. ``median_us`` holds the tool's per-run average.
    """
    types = {op.op_index: op.op_type for op in cost.ops} if cost is not None else {}
    kinds: list[str] = []
    exact: set[int] = set()
    for op in ops:
        name, node = str(op.get("op_name", "")), op.get("node_index")
        if name.startswith(DELEGATE_OP_PREFIX):
            kinds.append("xnnpack")
        elif node is not None and types.get(node) == op.get("op_type") and node not in exact:
            kinds.append("node")
            exact.add(node)
        elif "Delegate" in str(op.get("op_type", "")):
            kinds.append("partition")
        else:
            kinds.append("other")
    delegated = [i for i in sorted(types) if i not in exact]
    xnn = [k for k, kind in enumerate(kinds) if kind == "xnnpack"]
    partitions = [k for k, kind in enumerate(kinds) if kind == "partition"]
    assignment: list[int] | None = None
    absorbed: dict[int, list[int]] = {}
    if xnn and delegated:
        delegated_types = [types[i] for i in delegated]
        assignment = align_xnnpack_ops([str(ops[k]["op_type"]) for k in xnn], delegated_types)
        absorbed = absorbed_nodes(assignment, delegated_types) if assignment else {}
    rank = {k: r for r, k in enumerate(xnn)}
    rows: list[ProfiledOp] = []
    for k, op in enumerate(ops):
        row = ProfiledOp(
            op_name=str(op.get("op_name", "")),
            op_type=str(op.get("op_type", "")),
            calls=op.get("calls"),
            median_us=op.get("per_run_us"),
        )
        if kinds[k] == "node":
            row.op_index = int(op["node_index"])
        elif kinds[k] == "xnnpack" and assignment is not None:
            r = rank[k]
            row.op_index = delegated[assignment[r]]
            row.absorbed_op_indices = [delegated[p] for p in absorbed.get(r, [])]
        elif kinds[k] == "partition" and len(partitions) == 1 and not xnn:
            row.absorbed_op_indices = list(delegated)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------- perf_test


def perf_test_memory(run: pt.OrtPerfRun) -> Memory | None:
    """``Peak working set size``: the whole process's max RSS (``getrusage``), in bytes."""
    if run.peak_working_set_bytes is None:
        return None
    return Memory(source=protocol.MEM_PERF_TEST, peak_bytes=run.peak_working_set_bytes)


def perf_test_stats(run: pt.OrtPerfRun) -> ToolStats:
    n = run.n
    if n is None or n < 1:
        raise ParseError(
            "onnxruntime_perf_test printed no count of its runs (no `Total inference requests`)"
        )
    mean = run.average_ms
    if mean is None and run.total_inference_s is not None:
        mean = run.total_inference_s * 1000.0 / n
    return ToolStats(n=n, mean=mean, **{f: run.latency_ms(k) for f, k in PERF_TEST_LATENCIES})


def perf_test_result(
    run: pt.OrtPerfRun,
    *,
    version: str,
    threads: int | None = None,
    providers: Sequence[str] = (),
    command: str | None,
) -> RunnerResult:
    stats = perf_test_stats(run)
    asked = [p for p in providers if p != ORT_CPU]
    return _result(
        PERF_TEST,
        version,
        stats,
        provider=run.provider or (asked[0] if asked else ORT_CPU),
        threads=run.intra_op_threads or threads,
        load_ms=run.session_creation_s * 1000.0 if run.session_creation_s is not None else None,
        cold_ms=run.first_inference_ms,
        warmup_n=PERF_TEST_WARMUP_RUNS,
        # the profile's op medians are set against the timed median
        ops_reference_ms=stats.median if stats.median is not None else stats.mean,
        command=command,
        memory=perf_test_memory(run),
    )


def _result(tool: Tool, version: str, stats: ToolStats, **fields: Any) -> RunnerResult:
    """A tool's result: what it printed as its statistics, ``fields`` as the runner's."""
    return RunnerResult(
        runtime=tool.runtime,
        runtime_version=version,
        stats_source=tool.key,
        tool_stats=stats,
        **fields,
    )


# ------------------------------------------------------------------------------- executor_runner


def executor_runner_log_result(run: er.ExecutorRunnerRun, *, version: str) -> RunnerResult:
    """A captured log's run: warm-up found where docs/method.md's rule would have ended it (the
    log does not say how many executions were meant as warm-up)."""
    return er.executor_runner_result(
        run, version=version, threads=None, provider="", warm=WARMUP_DEFAULT,
        planned_warmup=len(run.iterations_ms), command=None,
    )  # fmt: skip


# ------------------------------------------------------------------------------- a whole log


def log_results(out: ToolOutput, version: str) -> list[tuple[Any, RunnerResult]]:
    """Every run in a captured log as ``(parsed run, result)``; a failed run is a result with
    ``ok`` False and the tool's error, a run without a count a ParseError."""
    pairs = []
    for run in parse_runs(out):
        if run.failed:
            pairs.append((run, RunnerResult(ok=False, error=run.error or "the tool failed")))
        elif out.tool is BENCHMARK_MODEL:
            pairs.append((run, benchmark_model_result(run, version=version, command=None)))
        elif out.tool is EXECUTOR_RUNNER:
            pairs.append((run, executor_runner_log_result(run, version=version)))
        else:
            pairs.append((run, perf_test_result(run, version=version, command=None)))
    return pairs
