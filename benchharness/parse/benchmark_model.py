"""TFLite / LiteRT ``benchmark_model``: its command line and a parser for what it prints.

The tool's output changed over the years (``[start]`` column dropped, ``INFO: `` and
``[file:line]`` prefixes added, percentiles added, a LiteRT ms block added) and is often captured
through ``adb logcat``. The parser strips every known prefix, classifies each line, and tolerates
lines it does not know (build chatter, delegate debug prints) as long as *some* line is a
benchmark_model line. Inside a profile table, a row it cannot read is an error, not noise.

Several runs in one log are split where a line belongs to an earlier stage than what the current
run already printed (parameters after results, a second ``Inference timings`` line, ...).

One module of ~900 lines on purpose: it is one grammar (the line patterns, the result types they
fill and the state machine that reads them in order); split, each part would need the others'
private patterns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from benchharness.parse.logtext import (
    COUNT,
    ERROR_CONTEXT_LINES,
    MAX_LINE_CHARS,
    NUM,
    figure,
    line_error,
    log_lines,
    not_a_log_error,
    require,
    taskset_prefix,
    too_long,
    whole,
)
from benchharness.parse.optable import OpTime, with_shares

TOOL = "TFLite benchmark_model"

#: Interpreter set-up events LiteRT lists among the regular runs' rows; they are no operators.
SETUP_EVENT_TYPES = frozenset({"AllocateTensors", "ModifyGraphWithDelegate"})
#: A thread count of more digits is none (no machine has a million cores).
_THREAD_COUNT_RE = re.compile(r"[0-9]{1,6}")

# ---------------------------------------------------------------------------- command line


def build_command(
    binary: str,
    graph: str,
    *,
    threads: int | None,
    affinity: str | None,
    num_runs: int,
    warmup_runs: int,
    min_secs: float,
    op_profiling: bool,
    report_peak_memory: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """argv running ``benchmark_model`` on ``graph``, pinned with taskset when ``affinity`` is set.

    ``threads=None`` leaves the tool's default (-1: the runtime decides). ``report_peak_memory``
    asks for the process's peak (a sampler thread reading ``getrusage`` every 50 ms); builds
    without the flag warn about it and run on.
    """
    require(threads is None or threads >= 1, f"threads must be at least 1, not {threads}")
    require(num_runs >= 1, f"num_runs must be at least 1, not {num_runs}")
    require(warmup_runs >= 0, f"warmup_runs must not be negative, not {warmup_runs}")
    require(min_secs >= 0, f"min_secs must not be negative, not {min_secs}")
    argv = [*taskset_prefix(affinity), binary, f"--graph={graph}"]
    if threads is not None:
        argv.append(f"--num_threads={threads}")
    argv += [
        f"--num_runs={num_runs}",
        f"--warmup_runs={warmup_runs}",
        f"--min_secs={min_secs:g}",
    ]
    if op_profiling:
        argv.append("--enable_op_profiling=true")
    if report_peak_memory:
        argv.append("--report_peak_memory_footprint=true")
    argv += list(extra)
    return argv


# ---------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class TimingStats:
    """One ``count=... first=... curr=...`` line, in microseconds; absent fields are None."""

    count: int
    first_us: float | None = None
    curr_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    avg_us: float | None = None
    std_us: float | None = None  # population standard deviation, as the tool computes it
    p5_us: float | None = None
    median_us: float | None = None
    p95_us: float | None = None
    all_same: bool = False  # the tool printed ``(all same)``: every sample equals curr

    def resolved(self) -> TimingStats:
        """Fill min/max/avg/std/median where the printed values determine them exactly.

        The tool shortens the line to ``count=1 curr=X`` or ``curr=X(all same)`` when every
        sample is X; nothing is estimated here.
        """
        if self.curr_us is None or not (self.all_same or self.count == 1):
            return self
        x = self.curr_us
        return TimingStats(
            count=self.count,
            first_us=self.first_us if self.first_us is not None else x,
            curr_us=x,
            min_us=x,
            max_us=x,
            avg_us=x,
            std_us=0.0,
            p5_us=x,
            median_us=x,
            p95_us=x,
            all_same=self.all_same,
        )


@dataclass(frozen=True)
class InferenceSummary:
    """``Inference timings in us: Init: ..., First inference: ..., ...`` (microseconds)."""

    init_us: float | None = None
    first_inference_us: float | None = None
    warmup_avg_us: float | None = None
    inference_avg_us: float | None = None


@dataclass(frozen=True)
class LiteRTSummary:
    """The ``BENCHMARK RESULTS`` block of the LiteRT CompiledModel tool (ms, rounded to 0.01)."""

    init_ms: float | None = None
    warmup_first_ms: float | None = None
    warmup_avg_ms: float | None = None
    warmup_runs: int | None = None
    inference_avg_ms: float | None = None
    inference_runs: int | None = None
    inference_min_ms: float | None = None
    inference_max_ms: float | None = None
    inference_std_ms: float | None = None
    throughput_mb_s: float | None = None
    init_footprint_mb: float | None = None
    overall_footprint_mb: float | None = None
    peak_memory_mb: float | None = None


@dataclass(frozen=True)
class MemoryFootprint:
    """``Memory footprint delta ... (MB)`` (kind "delta") or legacy ``Peak memory footprint``."""

    kind: Literal["delta", "peak"]
    init_mb: float
    overall_mb: float


@dataclass(frozen=True)
class Delegation:
    """``Replacing N [out of M] node(s) with delegate (D) node, yielding P partitions``."""

    delegate: str
    replaced_nodes: int
    total_nodes: int | None
    partitions: int
    subgraph: int | None = None


@dataclass(frozen=True)
class AppliedDelegate:
    """``Explicitly applied D delegate, and the model graph will be completely|partially ...``."""

    delegate: str
    complete: bool
    kernels: int | None


@dataclass(frozen=True)
class ProfileRow:
    """One row of a Run Order / Top by ... table (times in ms as printed)."""

    op_index: int  # position in its table
    op_type: str
    op_name: str
    start_ms: float | None  # only in the old layout
    first_ms: float
    avg_ms: float  # average per run
    pct: float
    cdf: float
    mem_kb: float
    times_called: int
    node_index: int | None  # the ``:N`` suffix of the name, when present


@dataclass(frozen=True)
class NodeTypeRow:
    """One row of the ``Summary by node type`` table."""

    node_type: str
    count: int
    avg_ms: float
    pct: float
    cdf: float
    mem_kb: float
    times_called: int


@dataclass
class ProfileBlock:
    """The tables of one profiling section (initialisation or regular runs) of one graph."""

    section: Literal["init", "regular"]
    graph: str | None = None  # e.g. ``Primary graph (name: main)``; None when not labelled
    run_order: list[ProfileRow] = field(default_factory=list)
    top_by_time: list[ProfileRow] = field(default_factory=list)
    top_by_memory: list[ProfileRow] = field(default_factory=list)
    by_node_type: list[NodeTypeRow] = field(default_factory=list)
    nodes_executed: int | None = None
    timings: TimingStats | None = None  # the profiler's per-run totals, not end-to-end latency
    nodes_observed: int | None = None


@dataclass
class BenchmarkModelRun:
    """Everything one ``benchmark_model`` invocation printed that the harness can use."""

    line: int  # 1-based line where this run's output starts
    params: dict[str, str] = field(default_factory=dict)  # ``Description: [value]`` echoes
    flags: dict[str, str] = field(default_factory=dict)  # from a captured shell command line
    model_size_mb: float | None = None
    init_ms: float | None = None
    warmup: TimingStats | None = None
    regular: TimingStats | None = None
    summary: InferenceSummary | None = None
    litert: LiteRTSummary | None = None
    memory: MemoryFootprint | None = None
    peak_memory_mb: float | None = None  # ``--report_peak_memory_footprint``
    memory_status: dict[str, str] = field(default_factory=dict)
    delegations: list[Delegation] = field(default_factory=list)
    applied_delegates: list[AppliedDelegate] = field(default_factory=list)
    profiles: list[ProfileBlock] = field(default_factory=list)
    failed: bool = False
    error: str | None = None

    @property
    def regular_profile(self) -> ProfileBlock | None:
        return next((p for p in self.profiles if p.section == "regular"), None)

    @property
    def init_profile(self) -> ProfileBlock | None:
        return next((p for p in self.profiles if p.section == "init"), None)

    @property
    def op_rows(self) -> list[ProfileRow]:
        """Per-operator rows of the regular runs: Run Order, else Top by Computation Time."""
        block = self.regular_profile
        if block is None:
            return []
        return block.run_order or block.top_by_time

    @property
    def node_type_rows(self) -> list[NodeTypeRow]:
        block = self.regular_profile
        return block.by_node_type if block is not None else []

    @property
    def threads(self) -> int | None:
        """Threads as the tool echoed them, else as a captured command line gave them."""
        for value in (
            self.params.get("Num threads"),
            self.params.get("#threads used for CPU inference"),
            self.flags.get("num_threads"),
        ):
            threads = _thread_count(value)
            if threads is not None:
                return threads
        return None

    def op_times(self) -> list[OpTime]:
        """The regular-run operator rows as :class:`OpTime` (``avg`` per run, as printed).

        Set-up events that ran zero times in the regular runs are left out.
        """
        block = self.regular_profile
        # the profiler counts every run it saw (LiteRT's includes the warm-up), so use its count
        count = block.timings.count if block is not None and block.timings is not None else None
        ops = [
            OpTime(
                op_index=i,
                op_name=row.op_name,
                op_type=row.op_type,
                per_run_us=row.avg_ms * 1000.0,
                statistic="avg",
                calls=row.times_called,
                node_index=row.node_index,
                runs=count,
            )
            for i, row in enumerate(
                r
                for r in self.op_rows
                if not (r.op_type in SETUP_EVENT_TYPES and r.times_called == 0)
            )
        ]
        return with_shares(ops)


def _thread_count(value: str | None) -> int | None:
    """A positive thread count, or None (absent, the tool's -1 default, or not a count)."""
    if value is None or not _THREAD_COUNT_RE.fullmatch(value):
        return None
    return int(value) or None


# ---------------------------------------------------------------------------- line grammar

# logcat -v brief/time/threadtime/tag prefixes; the tag decides whether the line is ours
_LOGCAT_RE = re.compile(
    r"^(?:\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+)?"
    r"(?:(?P<lv1>[VDIWEF])/(?P<tag1>[^\s(:]+)\s*(?:\(\s*\d+\s*\))?:"
    r"|\d+\s+\d+\s+(?P<lv2>[VDIWEF])\s+(?P<tag2>\S+)\s*:)"
    r" ?"
)
_LOGCAT_TAG = "tflite"
# TFLITE_LOG level prefix (newer builds) and LiteRT ``[file:line]`` source locations
_LEVEL_RE = re.compile(r"^(?P<level>INFO|WARN|WARNING|ERROR|VERBOSE|DEBUG|FATAL): ")
_SOURCE_RE = re.compile(r"^\[[^\]\s]+:\d+\] ?")
_ERROR_LEVELS = frozenset({"ERROR", "FATAL", "E", "F"})

# fields apart by whitespace (only ``(all same)`` is glued on), so a line reads one way only: a
# glued ``a=1b=2`` would let the regex split its digits every way, which takes quadratic time
_STATS_BODY = rf"count={COUNT}(?:\s+\w+={NUM}|\s*\(all same\))*"
_STATS_RE = re.compile(rf"^{_STATS_BODY}$")
_STATS_COUNT_RE = re.compile(rf"^count=({COUNT})")
_STATS_FIELD_RE = re.compile(rf"(\w+)=({NUM})")
_STATS_KEYS = {
    "first": "first_us",
    "curr": "curr_us",
    "min": "min_us",
    "max": "max_us",
    "avg": "avg_us",
    "std": "std_us",
    "p5": "p5_us",
    "median": "median_us",
    "p95": "p95_us",
}

_STARTING_RE = re.compile(r"^STARTING!$")
_PARAM_RE = re.compile(r"^(?P<desc>[^:\[\]]+): \[(?P<val>.*)\]$")
_SIZE_RE = re.compile(rf"^The input model file size \(MB\): ({NUM})$")
_INIT_RE = re.compile(rf"^Initialized session in ({NUM}) ?ms\.?$")
_PHASE_RE = re.compile(
    rf"^Running benchmark for at least (\d+) iterations and at least ({NUM}) seconds"
    rf"(?: but terminate if exceeding ({NUM}) seconds)?\.?$"
)
_SUMMARY_RE = re.compile(r"^Inference timings in us: (.*)$")
_LEGACY_SUMMARY_RE = re.compile(r"^Average inference timings in us: (.*)$")
_SUMMARY_ITEM_RE = re.compile(rf"^\s*([A-Za-z][A-Za-z ()]*?): ({NUM})\s*$")
_SUMMARY_KEYS = {
    "init": "init_us",
    "first inference": "first_inference_us",
    "warmup (avg)": "warmup_avg_us",
    "warmup": "warmup_avg_us",
    "inference (avg)": "inference_avg_us",
    "inference": "inference_avg_us",
    "no stats": "inference_avg_us",
}
_MEMORY_RE = re.compile(
    rf"^(?P<kind>Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\):"
    rf" init=(?P<init>{NUM}) overall=(?P<overall>{NUM})$"
)
_PEAK_RE = re.compile(rf"^Overall peak memory footprint \(MB\) via periodic monitoring: ({NUM})$")
_MEMORY_STATUS_RE = re.compile(r"^Memory status at the end of exec?ution:$")
# ``- VmRSS : N MB``, then ``+ RssAnnon : N MB`` and ``+ RssFile + RssShmem : N MB`` (its parts)
_MEMORY_STATUS_ITEM_RE = re.compile(r"^[-+] (\w[\w +]*?)\s*:\s*(.*)$")
_FAILED_RE = re.compile(r"^Benchmarking failed\.?$")
_REPLACING_RE = re.compile(
    rf"^Replacing ({COUNT}) (?:out of ({COUNT}) )?node\(s\) with delegate \(([^)]+)\) node, "
    rf"yielding ({COUNT}) partitions?(?: for subgraph ({COUNT}))?\.?$"
)
_DELEGATED_RE = re.compile(
    r"^(\S+) delegate: (\d+) nodes delegated out of (\d+) nodes with (\d+) partitions?\.?$"
)
_APPLIED_RE = re.compile(
    r"^Explicitly applied (\S+) delegate, and the model graph will be (completely|partially) "
    rf"executed by the delegate(?: w/ ({COUNT}) delegate kernels?)?\.?$"
)
# a captured command line: the word naming the tool, then its flags, one word each
_TOOL_WORD = "benchmark_model"
_WORD_RE = re.compile(r"\S+")
_FLAG_RE = re.compile(r"--([\w.-]+)=(\S*)")
_INFO_RE = re.compile(
    r"^(?:Loaded model .*|Initialized TensorFlow Lite runtime\.?|Created TensorFlow Lite .*"
    r"|Note: as the benchmark tool itself affects memory footprint.*|Memory Usage:"
    r"|Peak memory usage not available.*|=+|Memory \(bytes\): count=.*)$"
)
_LITERT_BEGIN_RE = re.compile(r"^=+ BENCHMARK RESULTS =+$")
_LITERT_ITEM_RE = re.compile(
    rf"^(?P<key>Model initialization|Warmup \(first\)|Warmup \(avg\)|Inference \(avg\)"
    rf"|Inference \(min\)|Inference \(max\)|Inference \(std\)|Throughput|Init footprint"
    rf"|Overall footprint|Peak memory(?: usage)?):\s+(?P<value>{NUM})(?:\s*(?:ms|MB/s|MB))?"
    rf"(?:\s*\((?P<runs>{COUNT}) runs\))?$"
)
_LITERT_KEYS = {
    "Model initialization": "init_ms",
    "Warmup (first)": "warmup_first_ms",
    "Warmup (avg)": "warmup_avg_ms",
    "Inference (avg)": "inference_avg_ms",
    "Inference (min)": "inference_min_ms",
    "Inference (max)": "inference_max_ms",
    "Inference (std)": "inference_std_ms",
    "Throughput": "throughput_mb_s",
    "Init footprint": "init_footprint_mb",
    "Overall footprint": "overall_footprint_mb",
    "Peak memory": "peak_memory_mb",
    "Peak memory usage": "peak_memory_mb",
}
_SECTION_RE = re.compile(
    r"^(?P<init>Profiling Info for Benchmark Initialization:)"
    r"|(?P<regular>Operator-wise Profiling Info for Regular Benchmark Runs:)$"
)
_GRAPH_RE = re.compile(r"^(?:(?:Primary graph|Subgraph) \(.*\) profile:|Delegate internal:.*)$")
_TITLE_RE = re.compile(
    r"^=+ (?P<title>Run Order|Top by Computation Time|Top by Memory Use|Summary by node type) =+$"
)
_NODES_EXECUTED_RE = re.compile(rf"^Number of nodes executed: ({COUNT})$")
_NODES_OBSERVED_RE = re.compile(rf"^({COUNT}) nodes observed$")
_TIMINGS_RE = re.compile(rf"^Timings \(microseconds\): ({_STATS_BODY})$")
_NUM_RE = re.compile(NUM)
_DIGITS_RE = re.compile(r"\d+")
# The cells of a profile table row, after its type (which may hold spaces) and before its name:
# a row is read word by word, not by one regex, whose lazy type and runs of spaces made the time
# grow with the square of the line (seconds for one 4 KiB row).
_DETAIL_CELLS = ("first", "avg", "pct", "cdf", "mem", "times")
_SUMMARY_CELLS = ("count", "avg", "pct", "cdf", "mem", "times")
_NODE_INDEX_RE = re.compile(r":(\d+)$")
# which cells a word can be (see _cell_kinds)
_NUMBER = frozenset({"start", "first", "avg", "mem"})
_PERCENT = frozenset({"pct", "cdf"})
_ANY_CELL = _NUMBER | {"count", "times"}
_NO_CELL: frozenset[str] = frozenset()
_TABLE_ATTR = {
    "Run Order": "run_order",
    "Top by Computation Time": "top_by_time",
    "Top by Memory Use": "top_by_memory",
    "Summary by node type": "by_node_type",
}

# Stages of one run's output, in the order the tool prints them; a line of an earlier stage
# than the run has reached begins the next run.
_STAGE_COMMAND, _STAGE_START, _STAGE_PARAMS, _STAGE_LOAD, _STAGE_PHASES, _STAGE_RESULTS = range(6)


def _strip_prefixes(raw: str) -> tuple[str, str | None, bool]:
    """(body, level, ours): the line without logcat/level/source prefixes."""
    line = raw.rstrip("\r\n")
    level: str | None = None
    m = _LOGCAT_RE.match(line)
    if m:
        tag = m.group("tag1") or m.group("tag2")
        level = m.group("lv1") or m.group("lv2")
        if tag.lower() != _LOGCAT_TAG:
            return "", level, False
        line = line[m.end() :]
    m = _LEVEL_RE.match(line)
    if m:
        level = m.group("level")
        line = line[m.end() :]
    m = _SOURCE_RE.match(line)
    if m:
        line = line[m.end() :]
    return line.rstrip(), level, True


def _parse_stats(text: str, lineno: int, line: str) -> TimingStats:
    """A ``count=...`` statistics body (µs), each figure checked."""
    values: dict[str, float] = {}
    for key, value in _STATS_FIELD_RE.findall(text):
        if key in _STATS_KEYS:
            values[_STATS_KEYS[key]] = figure(value, lineno, line, f"{key} (us)")
    m = _STATS_COUNT_RE.match(text)
    count = whole(m.group(1) if m else "", lineno, line, "count")
    return TimingStats(count=count, all_same="(all same)" in text, **values)


def _parse_summary(items: str, lineno: int, line: str) -> InferenceSummary | None:
    values: dict[str, float] = {}
    for item in items.split(","):
        m = _SUMMARY_ITEM_RE.match(item)
        if m is None:
            return None
        key = _SUMMARY_KEYS.get(m.group(1).strip().lower())
        if key is not None:
            values[key] = figure(m.group(2), lineno, line, f"{m.group(1).strip()} (us)")
    return InferenceSummary(**values) if values else None


def _command_flags(text: str) -> list[tuple[str, str]] | None:
    """The ``--flag=value`` words after the word naming the tool, or None when ``text`` is no
    captured command line (no such word followed by a ``--`` word)."""
    words = list(_WORD_RE.finditer(text))
    for k, word in enumerate(words[:-1]):
        if _TOOL_WORD in word.group() and words[k + 1].group().startswith("--"):
            flags = (_FLAG_RE.fullmatch(w.group()) for w in words[k + 1 :])
            return [(f.group(1), f.group(2)) for f in flags if f is not None]
    return None


def _node_index(name: str, lineno: int, line: str) -> int | None:
    m = _NODE_INDEX_RE.search(name)
    return whole(m.group(1), lineno, line, "node index") if m else None


def _cell_kinds(word: str) -> frozenset[str]:
    """The table cells ``word`` can be: a number, a percentage or a count."""
    if word.endswith("%"):
        return _PERCENT if _NUM_RE.fullmatch(word[:-1]) else _NO_CELL
    if _DIGITS_RE.fullmatch(word):
        return _ANY_CELL
    return _NUMBER if _NUM_RE.fullmatch(word) else _NO_CELL


def _tab_cells(body: str, has_start: bool) -> dict[str, str] | None:
    """The cells of a TAB-separated Run Order / Top by ... row, or None."""
    parts = [p.strip() for p in body.split("\t")]
    if len(parts) > 1 and parts[0] == "":
        parts = parts[1:]
    keys = ["type", *(["start"] if has_start else []), *_DETAIL_CELLS]
    if len(parts) <= len(keys):
        return None
    values = dict(zip(keys, parts[: len(keys)], strict=True))
    values["name"] = "\t".join(parts[len(keys) :])
    # the percentages may come without their sign here
    figures = [values[k].removesuffix("%") if k in _PERCENT else values[k] for k in keys[1:-1]]
    if not all(_NUM_RE.fullmatch(f) for f in figures) or not _DIGITS_RE.fullmatch(values["times"]):
        return None
    return values


def _spaced_cells(body: str, has_start: bool) -> dict[str, str] | None:
    """The cells of a space-aligned row: the type is the fewest words after which the cells
    (with a ``[start]`` one when it fits) and a name follow; None when no split fits or the
    ``[start]`` column is not what the header said."""
    text = body.replace("\t", " ")
    words = list(_WORD_RE.finditer(text))
    kinds = [_cell_kinds(w.group()) for w in words]
    for k in range(1, len(words)):
        for start in (True, False):
            cells = (("start",) if start else ()) + _DETAIL_CELLS
            end = k + len(cells)
            if end >= len(words):
                continue
            if all(c in kinds[k + i] for i, c in enumerate(cells)):
                if start != has_start:
                    return None
                values = {c: words[k + i].group() for i, c in enumerate(cells)}
                values["type"] = text[words[0].start() : words[k - 1].end()]
                values["name"] = text[words[end].start() : words[-1].end()]
                return values
    return None


def _detail_row(body: str, index: int, has_start: bool, lineno: int) -> ProfileRow | None:
    values = _tab_cells(body, has_start) or _spaced_cells(body, has_start)
    if values is None or not values["type"] or not values["name"]:
        return None

    def cell(key: str, what: str) -> float:
        return figure(values[key].removesuffix("%"), lineno, body, what)

    return ProfileRow(
        op_index=index,
        op_type=values["type"],
        op_name=values["name"],
        start_ms=cell("start", "[start]") if has_start else None,
        first_ms=cell("first", "[first]"),
        avg_ms=cell("avg", "[avg ms]"),
        pct=cell("pct", "[%]"),
        cdf=cell("cdf", "[cdf%]"),
        mem_kb=cell("mem", "[mem KB]"),
        times_called=whole(values["times"], lineno, body, "[times called]"),
        node_index=_node_index(values["name"], lineno, body),
    )


def _summary_row(body: str, lineno: int) -> NodeTypeRow | None:
    """A ``Summary by node type`` row: its type (words) and the six cells that end it."""
    text = body.replace("\t", " ")
    words = list(_WORD_RE.finditer(text))
    n = len(_SUMMARY_CELLS)
    if len(words) <= n:
        return None
    tail = [w.group() for w in words[-n:]]
    if not all(c in _cell_kinds(w) for w, c in zip(tail, _SUMMARY_CELLS, strict=True)):
        return None
    cells = dict(zip(_SUMMARY_CELLS, tail, strict=True))

    def cell(key: str, what: str) -> float:
        return figure(cells[key].removesuffix("%"), lineno, body, what)

    return NodeTypeRow(
        node_type=text[words[0].start() : words[-n - 1].end()],
        count=whole(cells["count"], lineno, body, "[Number of Nodes]"),
        avg_ms=cell("avg", "[avg ms]"),
        pct=cell("pct", "[avg %]"),
        cdf=cell("cdf", "[cdf %]"),
        mem_kb=cell("mem", "[mem KB]"),
        times_called=whole(cells["times"], lineno, body, "[times called]"),
    )


# ---------------------------------------------------------------------------- the parser


@dataclass
class _Phase:
    header: bool
    stats: TimingStats | None = None


@dataclass
class _RunState:
    run: BenchmarkModelRun
    stage: int = _STAGE_COMMAND
    seen_command: bool = False
    seen_start: bool = False
    phases: list[_Phase] = field(default_factory=list)
    seen_litert: bool = False
    litert: dict[str, float | int] = field(default_factory=dict)


@dataclass
class _Table:
    title: str
    has_start: bool | None = None  # None until the column header row is read
    rows: int = 0


class _Parser:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.runs: list[BenchmarkModelRun] = []
        self.state: _RunState | None = None
        self.block: ProfileBlock | None = None
        self.section: Literal["init", "regular"] | None = None
        self.table: _Table | None = None
        self.in_memory_status = False
        self.recognised = False
        # error lines since the last recognised line: a failure's reason, even before a run began
        self.errors: list[str] = []

    # -- run bookkeeping
    def _new_run(self, lineno: int) -> _RunState:
        self._finish()
        self.state = _RunState(run=BenchmarkModelRun(line=lineno))
        return self.state

    def _run_for(self, lineno: int, stage: int, *, filled: bool = False) -> _RunState:
        """The run a line of ``stage`` belongs to; ``filled``: the current run has it already."""
        state = self.state
        if state is None or state.stage > stage or filled:
            state = self._new_run(lineno)
        state.stage = max(state.stage, stage)
        return state

    def _result_run(self, lineno: int, already: bool) -> _RunState:
        """The run a result line belongs to; ``already``: this run has that result already."""
        state = self.state
        if state is None or already:
            state = self._new_run(lineno)
        state.stage = _STAGE_RESULTS
        return state

    def _finish(self) -> None:
        state = self.state
        self.state = None
        self.block = None
        self.section = None
        if state is None:
            return
        run = state.run
        with_header = [p for p in state.phases if p.header]
        if with_header:
            run.warmup = with_header[0].stats
            run.regular = with_header[1].stats if len(with_header) > 1 else None
        elif state.phases:
            # a log cut before the phase headers: the last stats line is the regular runs'
            run.regular = state.phases[-1].stats
            run.warmup = state.phases[-2].stats if len(state.phases) > 1 else None
        if state.seen_litert:
            run.litert = LiteRTSummary(**state.litert)  # type: ignore[arg-type]
        complete = (
            run.regular is not None
            or run.summary is not None
            or run.litert is not None
            or run.regular_profile is not None
        )
        if not run.failed and not complete:
            run.failed = True
            context = "; ".join(self.errors[-ERROR_CONTEXT_LINES:])
            run.error = "the log ends before any timing of the regular runs" + (
                f" ({context})" if context else " (the tool may have crashed or been killed)"
            )
        self.runs.append(run)

    # -- the loop
    def parse(self) -> list[BenchmarkModelRun]:
        for lineno, raw in enumerate(self.lines, start=1):
            if too_long(raw):
                self._too_long(lineno, raw)
                continue
            body, level, ours = _strip_prefixes(raw)
            if not ours:
                continue
            if self.table is not None and self._table_line(lineno, body):
                self.recognised = True
                continue
            text = body.strip()
            if not text:
                self.in_memory_status = False
                continue
            if self._line(lineno, text):
                self.recognised = True
                self.errors.clear()
            elif self._looks_like_error(text, level):
                self.errors.append(text)
        self._finish()
        if not self.recognised:
            raise not_a_log_error(TOOL, self.lines)
        return self.runs

    def _too_long(self, lineno: int, raw: str) -> None:
        """A line longer than the tool prints: no line of it, and no row of an open table."""
        if self.table is not None:
            raise line_error(
                lineno,
                f"a row of profile table '{self.table.title}' is longer than {MAX_LINE_CHARS} "
                "characters",
                raw,
            )

    @staticmethod
    def _looks_like_error(text: str, level: str | None) -> bool:
        return level in _ERROR_LEVELS or text.startswith(("Failed", "Error", "Didn't find"))

    def _table_line(self, lineno: int, body: str) -> bool:
        """Consume a line of the open table; False when the table has ended."""
        table = self.table
        assert table is not None
        text = body.strip()
        if table.has_start is None:
            if not text:
                return True
            if "[node type]" not in text.lower():
                raise line_error(lineno, f"expected the column header of '{table.title}'", body)
            table.has_start = "[start]" in text
            return True
        if not text:
            self.table = None
            return True
        block = self.block
        assert block is not None
        if table.title == "Summary by node type":
            summary = _summary_row(body, lineno)
            if summary is not None:
                block.by_node_type.append(summary)
                table.rows += 1
                return True
        else:
            row = _detail_row(body, table.rows, table.has_start, lineno)
            if row is not None:
                getattr(block, _TABLE_ATTR[table.title]).append(row)
                table.rows += 1
                return True
        if _TITLE_RE.match(text) or _NODES_EXECUTED_RE.match(text) or _TIMINGS_RE.match(text):
            self.table = None  # a table closed without its blank line
            return False
        raise line_error(lineno, f"malformed row in profile table '{table.title}'", body)

    def _line(self, lineno: int, text: str) -> bool:
        """Read one line outside a profile table; False when it is none of the tool's lines."""
        readers = (
            self._setup_line,
            self._result_line,
            self._delegate_line,
            self._litert_line,
            self._profile_line,
            self._param_line,
        )
        for reader in readers:
            taken = reader(lineno, text)
            if taken is not None:
                return taken
        return False

    # Each reader below returns None for a line that is none of its kinds (the next one then
    # tries it), else whether the line was read. The order of readers and of the patterns in
    # each is the order the patterns are tried in: it decides which pattern takes a line.

    def _setup_line(self, lineno: int, text: str) -> bool | None:
        """The command line, start, model load and the warm-up / regular phase lines."""
        flags = _command_flags(text) if _TOOL_WORD in text else None
        if flags is not None:
            state = self._run_for(lineno, _STAGE_COMMAND, filled=self._seen("seen_command"))
            state.seen_command = True
            state.run.flags.update(flags)
            return True
        if _STARTING_RE.match(text):
            state = self._run_for(lineno, _STAGE_START, filled=self._seen("seen_start"))
            state.seen_start = True
            return True
        if m := _SIZE_RE.match(text):
            state = self._run_for(lineno, _STAGE_LOAD, filled=self._has("model_size_mb"))
            state.run.model_size_mb = figure(m.group(1), lineno, text, "model file size (MB)")
            return True
        if m := _INIT_RE.match(text):
            state = self._run_for(lineno, _STAGE_LOAD, filled=self._has("init_ms"))
            state.run.init_ms = figure(m.group(1), lineno, text, "session initialisation (ms)")
            return True
        if _PHASE_RE.match(text):
            headers = sum(p.header for p in self.state.phases) if self.state else 0
            state = self._run_for(lineno, _STAGE_PHASES, filled=headers >= 2)
            state.phases.append(_Phase(header=True))
            return True
        if _STATS_RE.match(text):
            self._phase_stats(lineno, _parse_stats(text, lineno, text))
            return True
        return None

    def _phase_stats(self, lineno: int, stats: TimingStats) -> None:
        """A ``count=...`` line: the stats of the phase header before it, or a phase of its own."""
        phases = self.state.phases if self.state else []
        headerless = not any(p.header for p in phases)
        state = self._run_for(lineno, _STAGE_PHASES, filled=headerless and len(phases) > 1)
        if state.phases and state.phases[-1].header and state.phases[-1].stats is None:
            state.phases[-1].stats = stats
        else:
            state.phases.append(_Phase(header=False, stats=stats))

    def _result_line(self, lineno: int, text: str) -> bool | None:
        """The end-of-run summaries: timings, memory footprint and status, failure."""
        if (m := _SUMMARY_RE.match(text)) or (m := _LEGACY_SUMMARY_RE.match(text)):
            summary = _parse_summary(m.group(1), lineno, text)
            if summary is None:
                return False
            state = self._result_run(lineno, self._has("summary"))
            state.run.summary = summary
            return True
        if m := _MEMORY_RE.match(text):
            state = self._result_run(lineno, self._has("memory"))
            kind: Literal["delta", "peak"] = (
                "peak" if m.group("kind").startswith("Peak") else "delta"
            )
            state.run.memory = MemoryFootprint(
                kind,
                figure(m.group("init"), lineno, text, "init (MB)"),
                figure(m.group("overall"), lineno, text, "overall (MB)"),
            )
            return True
        if m := _PEAK_RE.match(text):
            state = self._result_run(lineno, self._has("peak_memory_mb"))
            state.run.peak_memory_mb = figure(m.group(1), lineno, text, "peak memory (MB)")
            return True
        if _MEMORY_STATUS_RE.match(text):
            self._result_run(lineno, bool(self.state and self.state.run.memory_status))
            self.in_memory_status = True
            return True
        if self.in_memory_status and (m := _MEMORY_STATUS_ITEM_RE.match(text)):
            assert self.state is not None
            self.state.run.memory_status[m.group(1)] = m.group(2).strip()
            return True
        if _FAILED_RE.match(text):
            state = self._result_run(lineno, self._has("failed"))
            state.run.failed = True
            state.run.error = "; ".join([*self.errors[-ERROR_CONTEXT_LINES:], text])
            return True
        return None

    def _delegate_line(self, lineno: int, text: str) -> bool | None:
        """What a delegate reports while the model loads: nodes replaced, graph applied."""
        if m := _REPLACING_RE.match(text):
            state = self._run_for(lineno, _STAGE_LOAD)
            replaced, total, delegate, parts, subgraph = m.groups()

            def count(value: str, what: str) -> int:
                return whole(value, lineno, text, what)

            state.run.delegations.append(
                Delegation(
                    delegate=delegate,
                    replaced_nodes=count(replaced, "nodes replaced"),
                    total_nodes=count(total, "nodes") if total else None,
                    partitions=count(parts, "partitions"),
                    subgraph=count(subgraph, "subgraph") if subgraph else None,
                )
            )
            return True
        if _DELEGATED_RE.match(text):
            # the Hexagon delegate's own report; the "Replacing ..." line carries the same facts
            self._run_for(lineno, _STAGE_LOAD)
            return True
        if m := _APPLIED_RE.match(text):
            state = self._run_for(lineno, _STAGE_LOAD)
            kernels = m.group(3)
            state.run.applied_delegates.append(
                AppliedDelegate(
                    m.group(1),
                    m.group(2) == "completely",
                    whole(kernels, lineno, text, "delegate kernels") if kernels else None,
                )
            )
            return True
        return None

    def _litert_line(self, lineno: int, text: str) -> bool | None:
        """The LiteRT CompiledModel tool's ``BENCHMARK RESULTS`` block."""
        if _LITERT_BEGIN_RE.match(text):
            state = self._result_run(lineno, bool(self.state and self.state.seen_litert))
            state.seen_litert = True
            return True
        if (m := _LITERT_ITEM_RE.match(text)) and self.state is not None and self.state.seen_litert:
            key = _LITERT_KEYS[m.group("key")]
            self.state.litert[key] = figure(m.group("value"), lineno, text, m.group("key"))
            if m.group("runs"):
                runs_key = "warmup_runs" if key.startswith("warmup") else "inference_runs"
                self.state.litert[runs_key] = whole(m.group("runs"), lineno, text, "runs")
            return True
        return None

    def _profile_line(self, lineno: int, text: str) -> bool | None:
        """The op profiler's section and graph headers, table titles and block totals."""
        if m := _SECTION_RE.match(text):
            self._open_section(lineno, "init" if m.group("init") else "regular")
            return True
        if _GRAPH_RE.match(text):
            state = self._result_run(lineno, False)
            self.block = ProfileBlock(section=self.section or "regular", graph=text)
            state.run.profiles.append(self.block)
            return True
        if m := _TITLE_RE.match(text):
            self._open_table(lineno, m.group("title"))
            return True
        if m := _NODES_EXECUTED_RE.match(text):
            if self.block is not None:
                self.block.nodes_executed = whole(m.group(1), lineno, text, "nodes executed")
            return True
        if m := _TIMINGS_RE.match(text):
            if self.block is not None:
                self.block.timings = _parse_stats(m.group(1), lineno, text)
            return True
        if m := _NODES_OBSERVED_RE.match(text):
            if self.block is not None:
                self.block.nodes_observed = whole(m.group(1), lineno, text, "nodes observed")
                self.block = None  # the block ends here; the next tables are a new one
            return True
        return None

    def _open_section(self, lineno: int, section: Literal["init", "regular"]) -> None:
        """A profiling section header: a second one of a kind (or init after regular) is a new
        run's."""
        has = bool(self.state and any(p.section == section for p in self.state.run.profiles))
        later = bool(
            self.state and section == "init" and self.state.run.regular_profile is not None
        )
        self._result_run(lineno, has or later)
        self.section = section
        self.block = None

    def _open_table(self, lineno: int, title: str) -> None:
        """A table title: the table opens in the current block, or in a new one when the block
        has that table already."""
        block = self.block
        if block is None or getattr(block, _TABLE_ATTR[title]):
            # a table without a section header (LiteRT) opens a regular-runs block
            again = self.section is None and bool(
                self.state and self.state.run.regular_profile is not None
            )
            state = self._result_run(lineno, again)
            graph = block.graph if block is not None else None
            block = ProfileBlock(section=self.section or "regular", graph=graph)
            self.block = block
            state.run.profiles.append(block)
        self.table = _Table(title=title)

    def _param_line(self, lineno: int, text: str) -> bool | None:
        """A ``Description: [value]`` parameter echo, or progress chatter."""
        if m := _PARAM_RE.match(text):
            desc = m.group("desc").strip()
            echoed = bool(self.state and desc in self.state.run.params)
            state = self._run_for(lineno, _STAGE_PARAMS, filled=echoed)
            state.run.params[desc] = m.group("val")
            return True
        if _INFO_RE.match(text):
            # progress chatter: proves the log is ours and that a run began, nothing more
            if self.state is None:
                self._run_for(lineno, _STAGE_LOAD)
            return True
        return None

    def _has(self, attr: str) -> bool:
        if self.state is None:
            return False
        value = getattr(self.state.run, attr)
        return bool(value) if isinstance(value, bool) else value is not None

    def _seen(self, attr: str) -> bool:
        return bool(self.state is not None and getattr(self.state, attr))


def parse_benchmark_model(text: str) -> list[BenchmarkModelRun]:
    """Every run in a captured ``benchmark_model`` log, in order.

    Raises ParseError when no line is a benchmark_model line (naming the first unknown line),
    when a profile table holds a row that cannot be read, or when a figure is not finite, >= 0
    and in range (``logtext.figure``; naming that line).
    """
    return _Parser(log_lines(text, TOOL)).parse()


__all__ = [
    "AppliedDelegate",
    "BenchmarkModelRun",
    "Delegation",
    "InferenceSummary",
    "LiteRTSummary",
    "MemoryFootprint",
    "NodeTypeRow",
    "ProfileBlock",
    "ProfileRow",
    "TimingStats",
    "build_command",
    "parse_benchmark_model",
]
