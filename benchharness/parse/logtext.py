"""Pieces shared by the native-tool adapters: number syntax, CPU pinning, "not a log" errors, the
bounds every log is read within, and the splitting of a log into runs, each failed one with the
error lines that say why.

A log comes from a device or from a user's file: the parsers take nothing on trust. A log past
MAX_LOG_CHARS is refused, a line past MAX_LINE_CHARS is none of a tool's, and every figure read
from a line is finite, non-negative and at most MAX_FIGURE, else a ParseError names the line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from benchharness.errors import ParseError, UsageError

#: A number as C++ streams print it: integers, decimals and ``%g`` forms such as ``1.24027e+06``.
NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
#: Where a count stands: any number, so a count out of range is refused rather than the line left
#: unread, but without NUM's bare trailing dot (``subgraph 0.`` ends a sentence).
COUNT = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"

#: taskset takes a bare hexadecimal CPU mask (toybox on Android rejects anything else).
_MASK_RE = re.compile(r"^(?:0[xX])?[0-9a-fA-F]+$")

#: How much of an offending line an error message quotes; enough to recognise it, short to read.
QUOTE_CHARS = 120
#: Error lines kept as a failed run's reason: the root cause is within the last few.
ERROR_CONTEXT_LINES = 3

#: A longer log is no output of one tool run: the most a transport keeps of a command's output
#: (``transport/base.DEFAULT_MAX_OUTPUT_BYTES``).
MAX_LOG_CHARS = 64 * 2**20
#: A longer line is none a tool prints (its longest are operator names in a profile table): it is
#: not matched against any grammar, so the work per line stays bounded.
MAX_LINE_CHARS = 64 * 2**10
#: The largest figure a tool's line may carry: 1e12 µs is 11 days for one inference and 1e12
#: bytes a terabyte, beyond any real run; sums and unit conversions of such figures stay finite,
#: and 1e12 MB in bytes still fits a 64-bit integer column.
MAX_FIGURE = 1e12
#: Digits of the largest whole number accepted (MAX_FIGURE has 13): checked before int(), which
#: is slow on thousands of digits and refuses more than 4300.
_MAX_DIGITS = len(str(int(MAX_FIGURE)))
#: What a figure and a whole number must be, for messages.
FIGURE_EXPECTED = f"a finite figure >= 0 and at most {MAX_FIGURE:g}"
WHOLE_EXPECTED = f"a whole number of at most {MAX_FIGURE:g}"


def taskset_prefix(affinity: str | None) -> list[str]:
    """``["taskset", MASK]`` to pin a command to the CPUs of ``affinity``; nothing when None."""
    if affinity is None:
        return []
    if not _MASK_RE.match(affinity) or int(affinity, 16) == 0:
        raise UsageError(
            f"affinity {affinity!r} is not a taskset CPU mask; give hexadecimal like 'f0'"
        )
    return ["taskset", affinity]


def require(condition: bool, message: str) -> None:
    """Raise UsageError with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UsageError(message)


def quote(line: str) -> str:
    text = line.strip()
    if len(text) > QUOTE_CHARS:
        text = text[:QUOTE_CHARS] + "..."
    return repr(text)


def line_error(lineno: int, what: str, line: str) -> ParseError:
    """A ParseError that names the 1-based line number and quotes the line."""
    return ParseError(f"line {lineno}: {what}: {quote(line)}")


def log_lines(text: str, tool: str) -> list[str]:
    """The lines of a log of ``tool``; ParseError when the log is longer than any run prints."""
    if len(text) > MAX_LOG_CHARS:
        raise ParseError(
            f"{len(text)} characters are no {tool} log (at most {MAX_LOG_CHARS} are read)"
        )
    return text.splitlines()


def too_long(line: str) -> bool:
    """Whether ``line`` is longer than any line a tool prints (then it is no line of the tool)."""
    return len(line) > MAX_LINE_CHARS


def figure(text: str, lineno: int, line: str, what: str) -> float:
    """The figure ``text`` (``what``) of line ``lineno``: finite, >= 0 and at most MAX_FIGURE;
    otherwise a ParseError naming the line."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= MAX_FIGURE:  # False for NaN too
        raise line_error(lineno, f"{what}: expected {FIGURE_EXPECTED}, got {quote(text)}", line)
    return value


def whole(text: str, lineno: int, line: str, what: str) -> int:
    """The whole number ``text`` (a count or a size) of line ``lineno``: digits only, at most
    MAX_FIGURE; otherwise a ParseError naming the line."""
    digits = text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS
    if not digits or int(text) > MAX_FIGURE:
        raise line_error(lineno, f"{what}: expected {WHOLE_EXPECTED}, got {quote(text)}", line)
    return int(text)


def not_a_log_error(tool: str, lines: Sequence[str]) -> ParseError:
    """The error for text with no line the parser of ``tool`` recognises."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            return line_error(
                number,
                f"not {tool} output (no line of it is recognised; the first unknown one is here)",
                line,
            )
    return ParseError(f"not {tool} output: the log is empty")


class ToolRun(Protocol):
    """What :class:`Runs` sets on a run of a tool's log that failed."""

    failed: bool
    error: str | None


R = TypeVar("R", bound=ToolRun)


@dataclass
class Runs(Generic[R]):
    """The runs of one log in order, the error lines printed since the current one began, and
    whether any line was the tool's. A run that ``succeeded`` does not accept when it ends is
    failed, with the last error lines (or ``silent`` without any) as its error."""

    succeeded: Callable[[R], bool]
    silent: str
    done: list[R] = field(default_factory=list)
    current: R | None = None
    errors: list[str] = field(default_factory=list)
    recognised: bool = False

    def begin(self, run: R, errors: Iterable[str] = ()) -> R:
        """End the current run and make ``run`` the current one, with ``errors`` so far."""
        self.finish()
        self.current, self.errors = run, list(errors)
        return run

    def finish(self) -> None:
        run, self.current = self.current, None
        if run is None:
            return
        if not self.succeeded(run):
            run.failed = True
            run.error = "; ".join(self.errors[-ERROR_CONTEXT_LINES:]) or self.silent
        self.done.append(run)

    def result(self, tool: str, lines: Sequence[str]) -> list[R]:
        """Every run, the last one ended; ParseError when no line was the tool's."""
        self.finish()
        if not self.recognised:
            raise not_a_log_error(tool, lines)
        return self.done
