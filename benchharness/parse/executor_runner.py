"""ExecuTorch's ``executor_runner``: its command line and a parser for what it prints.

The tool (``examples/portable/executor_runner`` in ExecuTorch, built with the XNNPACK backend
linked in) loads a ``.pte``, runs its first method ``--num_executions`` times on inputs of ones
and logs through ``ET_LOG``: ``I 00:00:00.382397 executorch:executor_runner.cpp:133] <message>``.
What it prints grew over releases; the parser takes every generation:

* every release: ``Model file X is loaded.``, ``Using method forward``, ``Setting up planned
  buffer 0, size N.`` and ``N outputs:``; errors as ``E ...] message`` lines;
* before 0.6: ``Model executed successfully.`` (one execution, no time);
* since 0.6: ``Model executed successfully N time(s) in T ms.`` (the summed time of the
  executions, inputs prepared outside it);
* newer builds: ``Model loaded in T ms.``, ``Iteration i of N: T ms`` per execution, and
  ``Resetting threadpool with num threads = K``.

A build with the event tracer takes ``--etdump_path`` and writes an ETDump there
(``ETDump written to file 'X'.``); one without rejects the flag.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchharness.ondevice.method import WarmupRule
from benchharness.ondevice.protocol import RunnerResult, ToolStats
from benchharness.parse.logtext import (
    COUNT,
    NUM,
    Runs,
    figure,
    log_lines,
    require,
    taskset_prefix,
    too_long,
    whole,
)

TOOL = "executor_runner"

#: An ``ET_LOG`` line: level, time since start, source file and line, message.
_LOG_RE = re.compile(
    r"^(?P<level>[DIEF]) \d+:\d\d:\d\d\.\d+ executorch:(?P<file>[^:\]]+):\d+\] ?(?P<msg>.*)$"
)
_LOADED_FILE_RE = re.compile(r"^Model file (?P<path>.+) is loaded\.$")
_METHOD_RE = re.compile(r"^Using method (?P<name>\S+)$")
_LOAD_MS_RE = re.compile(rf"^Model loaded in (?P<ms>{NUM}) ms\.$")
_ITERATION_RE = re.compile(rf"^Iteration (?P<i>\d+) of (?P<n>\d+): (?P<ms>{NUM}) ms$")
_EXECUTED_RE = re.compile(
    rf"^Model executed successfully(?: (?P<n>{COUNT}) time\(s\) in (?P<ms>{NUM}) ms)?\.$"
)
_THREADS_RE = re.compile(r"^Resetting threadpool with num threads = (?P<k>-?\d+)$")
_ETDUMP_RE = re.compile(r"^ETDump written to file '(?P<path>.+)'\.$")
_OUTPUTS_RE = re.compile(r"^(?P<k>\d+) outputs: ?$")


def build_command(
    binary: str,
    model: str,
    *,
    threads: int | None,
    affinity: str | None,
    executions: int,
    etdump_path: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """argv running ``model`` ``executions`` times; ``threads`` None leaves the tool's heuristic
    (its performant-core count); ``etdump_path`` asks an event-tracer build for an ETDump."""
    require(threads is None or threads >= 1, f"threads must be at least 1, not {threads}")
    require(executions >= 1, f"executions must be at least 1, not {executions}")
    argv = [*taskset_prefix(affinity), binary, f"--model_path={model}"]
    argv.append(f"--num_executions={executions}")
    if threads is not None:
        argv.append(f"--cpu_threads={threads}")
    if etdump_path is not None:
        require(bool(etdump_path), "etdump_path must not be empty")
        argv.append(f"--etdump_path={etdump_path}")
    return [*argv, *extra]


@dataclass
class ExecutorRunnerRun:
    """What one ``executor_runner`` invocation printed (times in ms)."""

    line: int  # 1-based line where this run's output starts
    model_path: str | None = None
    method: str | None = None
    threads: int | None = None
    load_ms: float | None = None
    iterations_ms: list[float] = field(default_factory=list)
    executions: int | None = None
    total_ms: float | None = None
    outputs: int | None = None
    etdump_path: str | None = None
    failed: bool = False
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.executions is not None


def parse_executor_runner(text: str) -> list[ExecutorRunnerRun]:
    """Every run in a captured ``executor_runner`` log, in order.

    A run that never reached ``Model executed successfully`` is returned with ``failed=True`` and
    the last error lines as its ``error``. A second ``Model file ... is loaded.`` begins the next
    run. Raises ParseError naming the first line when no line is the tool's, or the line of a
    figure that is not finite, >= 0 and in range (``logtext.figure``).
    """
    lines = log_lines(text, TOOL)
    runs: Runs[ExecutorRunnerRun] = Runs(
        lambda run: run.succeeded, "the log ends before the model ran (the tool may have crashed)"
    )
    for lineno, raw in enumerate(lines, start=1):
        m = None if too_long(raw) else _LOG_RE.match(raw.strip())
        if m is None:
            continue  # printed outputs, backend chatter, gflags' own messages
        runs.recognised = True
        msg = m.group("msg").strip()
        error = [msg] if m.group("level") in "EF" else []
        runs.errors += error
        loaded = _LOADED_FILE_RE.match(msg)
        run = runs.current
        if run is None or (loaded and (run.model_path is not None or run.succeeded)):
            run = runs.begin(ExecutorRunnerRun(line=lineno), error)
        if loaded:
            run.model_path = loaded.group("path")
        else:
            _read_message(run, msg, lineno, raw)
    return runs.result(TOOL, lines)


def _read_message(run: ExecutorRunnerRun, msg: str, lineno: int, raw: str) -> None:
    """Set what the message ``msg`` of line ``lineno`` says on ``run``; every figure is checked
    (ParseError naming the line)."""
    if mm := _METHOD_RE.match(msg):
        run.method = mm.group("name")
    elif mm := _LOAD_MS_RE.match(msg):
        run.load_ms = figure(mm.group("ms"), lineno, raw, "load time (ms)")
    elif mm := _ITERATION_RE.match(msg):
        run.iterations_ms.append(figure(mm.group("ms"), lineno, raw, "execution time (ms)"))
    elif mm := _EXECUTED_RE.match(msg):
        n, ms = mm.group("n"), mm.group("ms")
        run.executions = whole(n, lineno, raw, "executions") if n else 1
        run.total_ms = figure(ms, lineno, raw, "summed execution time (ms)") if ms else None
    elif mm := _THREADS_RE.match(msg):
        k = mm.group("k")
        # -1 (or any k < 1) leaves the tool's heuristic: no count of its own
        run.threads = None if k.startswith("-") else whole(k, lineno, raw, "threads") or None
    elif mm := _ETDUMP_RE.match(msg):
        run.etdump_path = mm.group("path")
    elif mm := _OUTPUTS_RE.match(msg):
        run.outputs = whole(mm.group("k"), lineno, raw, "outputs")


#: The runner result's name of the tool's runtime (the python runner's is ``executorch``).
RUNTIME = "executorch-executor_runner"
#: How the samples' count was decided: the tool runs a fixed number of executions.
FIXED_COUNT = "fixed count"


def warmup_end(samples_ms: Sequence[float], warm: WarmupRule, planned: int) -> int:
    """How many of ``samples_ms`` (the executions after the cold one) were warm-up: where
    ``warm`` would have stopped a live warm-up, at most ``planned`` and never all of them."""
    ns: list[int] = []
    elapsed = 0.0
    limit = min(planned, len(samples_ms) - 1)
    for k, ms in enumerate(samples_ms[:limit], start=1):
        ns.append(int(ms * 1e6))
        elapsed += ms / 1e3
        if warm.done(ns, elapsed):
            return k
    return max(limit, 0)


def executor_runner_result(
    run: ExecutorRunnerRun,
    *,
    version: str,
    threads: int | None,
    provider: str,
    warm: WarmupRule,
    planned_warmup: int,
    command: str | None,
) -> RunnerResult:
    """One successful run as a runner result.

    With per-execution lines the first execution is the cold one, the next ones are warm-up
    until ``warm`` holds (at most ``planned_warmup``), and the rest are the samples. A build that
    prints only the summed time gives the mean of all its executions (cold one included) as the
    tool's statistics.
    """
    base = RunnerResult(
        runtime=RUNTIME,
        runtime_version=version,
        provider=provider,
        threads=run.threads or threads,
        load_ms=run.load_ms,
        stats_source=TOOL,
        command=command,
    )
    n = run.executions or 0
    if run.iterations_ms and len(run.iterations_ms) == n and n >= 2:
        rest = run.iterations_ms[1:]
        k = warmup_end(rest, warm, planned_warmup)
        base.cold_ms = run.iterations_ms[0]
        base.warmup_n = k
        base.warmup_s = sum(rest[:k]) / 1e3
        base.samples_ms = rest[k:]
        base.measure_s = sum(base.samples_ms) / 1e3
        base.stop_reason = FIXED_COUNT
        return base
    mean = run.total_ms / n if run.total_ms is not None and n else None
    base.cold_ms = run.total_ms if n == 1 else None
    base.warmup_n = 0
    base.tool_stats = ToolStats(n=n, mean=mean)
    base.ops_reference_ms = mean
    return base


__all__ = [
    "ExecutorRunnerRun",
    "build_command",
    "executor_runner_result",
    "parse_executor_runner",
    "warmup_end",
]
