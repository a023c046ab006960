"""ONNX Runtime's ``onnxruntime_perf_test``: its command line and a parser for its summary.

The tool prints a short summary after each invocation; vendor forks rename a few lines
(``Average inference time cost total:``, ``Total CPU usage:``) and old builds print
``Min Latency is 0.05sec``. Lines the parser does not know are tolerated as long as some line is
perf_test output; a repeated line (a second ``Session creation time cost``) begins the next run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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

TOOL = "onnxruntime_perf_test"

#: Decimals kept when converting seconds to ms: drops binary noise (19.9047000000002).
MS_DECIMALS = 9

#: The percentiles ``-s`` prints, as named on the line, and where they go (seconds to ms).
_PERCENTILES = {
    "Min": "min", "Max": "max", "P50": "p50", "P90": "p90", "P95": "p95", "P99": "p99",
    "P999": "p999",
}  # fmt: skip


def build_command(
    binary: str,
    model: str,
    *,
    threads: int | None,
    affinity: str | None,
    runs: int,
    profile_prefix: str | None,
    extra: Sequence[str] = (),
) -> list[str]:
    """argv timing ``runs`` inferences of ``model`` on generated inputs, with percentiles.

    ``-m times -r N`` fixes the count (the default mode runs for 600 s); ``-I`` generates inputs
    so no test-data folder is needed; ``-s`` prints the latency percentiles; ``-p`` writes a JSON
    profile named ``<prefix>_<timestamp>.json``. ``threads=None`` leaves ORT's default.
    """
    require(threads is None or threads >= 1, f"threads must be at least 1, not {threads}")
    require(runs >= 1, f"runs must be at least 1, not {runs}")
    argv = [*taskset_prefix(affinity), binary, "-m", "times", "-r", str(runs), "-I"]
    if threads is not None:
        argv += ["-x", str(threads)]
    argv.append("-s")
    if profile_prefix is not None:
        require(bool(profile_prefix), "profile_prefix must not be empty")
        argv += ["-p", profile_prefix]
    argv += [*extra, model]
    return argv


@dataclass
class OrtPerfRun:
    """What one ``onnxruntime_perf_test`` invocation printed (units as in the field names)."""

    line: int  # 1-based line where this run's output starts
    provider: str | None = None  # ``using XExecutionProvider``
    intra_op_threads: int | None = None  # ``Setting intra_op_num_threads to N``
    provider_options: dict[str, str] = field(default_factory=dict)  # vendor ``setting K : V``
    session_creation_s: float | None = None
    first_inference_ms: float | None = None
    total_inference_s: float | None = None  # sum of the timed inferences
    requests: int | None = None
    average_ms: float | None = None
    total_run_s: float | None = None  # wall time of the timed loop
    inferences_per_s: float | None = None
    cpu_usage_pct: float | None = None
    peak_working_set_bytes: int | None = None
    runs: int | None = None  # the ``Runs:N`` line
    latencies_s: dict[str, float] = field(default_factory=dict)  # min, max, p50 ... p999
    failed: bool = False
    error: str | None = None

    @property
    def n(self) -> int | None:
        return self.requests if self.requests is not None else self.runs

    def latency_ms(self, key: str) -> float | None:
        """A printed latency percentile (``min``, ``p50``, ... ``p999``) in ms, if printed."""
        value = self.latencies_s.get(key)
        # rounded: seconds-to-ms leaves binary noise far below the printed precision
        return round(value * 1000.0, MS_DECIMALS) if value is not None else None


# Each line kind: regex, run field, setter; "first" lines begin a run when already set. A setter
# gets the match, the line number and the line, to name it when a figure is out of range.
_Setter = Callable[[OrtPerfRun, re.Match[str], int, str], None]
#: Reads one captured value of a line: (text, line number, line, what it is) -> the value.
_Reader = Callable[[str, int, str, str], float | int | str]


def _text(value: str, lineno: int, line: str, what: str) -> str:
    return value


def _setter(attr: str, read: _Reader, what: str) -> _Setter:
    def apply(run: OrtPerfRun, m: re.Match[str], lineno: int, line: str) -> None:
        setattr(run, attr, read(m.group(1), lineno, line, what))

    return apply


def _latency(run: OrtPerfRun, m: re.Match[str], lineno: int, line: str) -> None:
    which = m.group("which")
    run.latencies_s[_PERCENTILES[which]] = figure(m.group("value"), lineno, line, f"{which} (s)")


def _option(run: OrtPerfRun, m: re.Match[str], lineno: int, line: str) -> None:
    run.provider_options[m.group(1)] = m.group(2)


def _nothing(run: OrtPerfRun, m: re.Match[str], lineno: int, line: str) -> None:
    return None


def _field(
    pattern: str, attr: str, read: _Reader, what: str = "", *, once: bool = True
) -> tuple[re.Pattern[str], str, _Setter]:
    """A line that sets ``attr`` (``what`` it is, for messages); when ``once``, a second one in a
    run begins the next run.

    Counts are matched as any number and then checked to be whole, so a count out of range is
    an error rather than a line left unread."""
    return re.compile(pattern), attr if once else "", _setter(attr, read, what or attr)


_LINES: list[tuple[re.Pattern[str], str, _Setter]] = [
    _field(r"^using (\S+)$", "provider", _text, "provider"),
    (re.compile(r"^[Ss]etting (\S+) : (.*)$"), "", _option),
    _field(rf"^Setting intra_op_num_threads to ({COUNT})$", "intra_op_threads", whole, "threads"),
    _field(
        rf"^Session creation time cost: ({NUM}) ?s$",
        "session_creation_s",
        figure,
        "session creation (s)",
    ),
    _field(
        rf"^First inference time cost: ({NUM}) ?ms$",
        "first_inference_ms",
        figure,
        "first inference (ms)",
    ),
    _field(
        rf"^Total (?:inference )?time cost: ({NUM}) ?s$",
        "total_inference_s",
        figure,
        "total inference time (s)",
    ),
    _field(rf"^Total inference requests: ({COUNT})$", "requests", whole, "inference requests"),
    _field(
        rf"^Average (?:inference )?time cost(?: total)?: ({NUM}) ?ms$",
        "average_ms",
        figure,
        "average inference time (ms)",
    ),
    _field(rf"^Total inference run time: ({NUM}) ?s$", "total_run_s", figure, "total run time (s)"),
    _field(
        rf"^Number of inferences per second: ({NUM})$",
        "inferences_per_s",
        figure,
        "inferences per second",
    ),
    # printed twice per run (with and without a space), so it never begins a run
    _field(
        rf"^(?:Avg|Total) CPU usage: ?({NUM})(?: ?%)?$",
        "cpu_usage_pct",
        figure,
        "CPU usage (%)",
        once=False,
    ),
    # printed twice per run, like the CPU usage
    _field(
        rf"^Peak working set size: ?({COUNT})(?: bytes)?$",
        "peak_working_set_bytes",
        whole,
        "peak working set (bytes)",
        once=False,
    ),
    _field(rf"^Runs: ?({COUNT})$", "runs", whole, "runs"),
    (
        re.compile(
            rf"^(?P<which>Min|Max|P50|P90|P95|P99|P999) Latency(?::| is) ?"
            rf"(?P<value>{NUM}) ?s(?:ec)?$"
        ),
        "latency",
        _latency,
    ),
    (re.compile(r"^Disabling intra-op thread spinning between runs$"), "", _nothing),
]

#: ORT's own log lines: ``2024-01-01 10:00:00.123 [E:onnxruntime:, file.cc:12 Fn] message``.
_ORT_LOG_RE = re.compile(r"^\S+ \S+ \[(?P<sev>[VIWEF]):onnxruntime:[^\]]*\]\s*(?P<msg>.*)$")
_ERRORISH_RE = re.compile(r"\b(?:error|failed|exception|terminate called|abort)", re.IGNORECASE)
#: Lines that begin a run: setting up the session comes before everything else it prints.
_START_KINDS = frozenset({"provider", "intra_op_threads", "session_creation_s"})


def _has_timing(run: OrtPerfRun) -> bool:
    return (
        run.requests is not None
        or run.average_ms is not None
        or run.total_inference_s is not None
        or bool(run.latencies_s)
    )


def _is_set(run: OrtPerfRun, kind: str, m: re.Match[str]) -> bool:
    if kind == "latency":
        return _PERCENTILES[m.group("which")] in run.latencies_s
    return bool(kind) and getattr(run, kind) is not None


def parse_ort_perf_test(text: str) -> list[OrtPerfRun]:
    """Every run in a captured ``onnxruntime_perf_test`` log, in order.

    A run without any timing is returned with ``failed=True`` and the last error lines as its
    ``error``. Raises ParseError naming the first line when no line is perf_test output, or the
    line of a figure that is not finite, >= 0 and in range (``logtext.figure``).
    """
    lines = log_lines(text, TOOL)
    runs: Runs[OrtPerfRun] = Runs(
        _has_timing, "the log ends before any timing (the tool may have crashed)"
    )
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or too_long(line):
            continue
        log = _ORT_LOG_RE.match(line)
        if log is not None:
            runs.recognised = True
            if log.group("sev") in "EF":
                runs.errors.append(log.group("msg"))
                if runs.current is None:
                    runs.current = OrtPerfRun(line=lineno)
            continue
        for pattern, kind, apply in _LINES:
            m = pattern.match(line)
            if m is None:
                continue
            runs.recognised = True
            run = runs.current
            begins = kind in _START_KINDS and run is not None and _has_timing(run)
            if run is None or begins or _is_set(run, kind, m):
                run = runs.begin(OrtPerfRun(line=lineno))
            apply(run, m, lineno, raw)
            break
        else:
            if _ERRORISH_RE.search(line) and not line.startswith("#"):
                runs.errors.append(line)
    return runs.result(TOOL, lines)


__all__ = ["OrtPerfRun", "build_command", "parse_ort_perf_test"]
