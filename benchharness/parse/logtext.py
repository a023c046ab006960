"""Pieces shared by the native-tool adapters: number syntax, CPU pinning, "not a log" errors, and
the splitting of a log into runs, each failed one with the error lines that say why."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from benchharness.errors import ParseError, UsageError

#: A number as C++ streams print it: integers, decimals and ``%g`` forms such as ``1.24027e+06``.
NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"

#: taskset takes a bare hexadecimal CPU mask (toybox on Android rejects anything else).
_MASK_RE = re.compile(r"^(?:0[xX])?[0-9a-fA-F]+$")

#: How much of an offending line an error message quotes; enough to recognise it, short to read.
QUOTE_CHARS = 120
#: Error lines kept as a failed run's reason: the root cause is within the last few.
ERROR_CONTEXT_LINES = 3


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
