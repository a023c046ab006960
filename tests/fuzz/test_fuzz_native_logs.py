"""Fuzzing the native tools' log readers, as ``bench import`` reads a log: every input becomes
rows or is refused as the harness's own error, never another exception, within the deadline.

Inputs are the real captures of ``tests/fixtures/native`` (and the executor_runner logs of its
parser's tests) mutated line by line (a figure made hostile, lines dropped, repeated, swapped,
cut, grown past any line a tool prints, noise put between), the same captures damaged byte by
byte, and random logs made of the captures' line shapes in any order with any figures. A log
that is read must give finite figures >= 0 everywhere: in every parsed run and in every result.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchharness.errors import HarnessError
from benchharness.parse import native_result as nr
from benchharness.parse.logtext import MAX_LINE_CHARS
from benchharness.results.importer import TOOLS, Kind, parse_log_rows
from tests.fuzz.budget import ci_share
from tests.fuzz.mutations import mutated_bytes, record
from tests.fuzz.refusals import record_refusal
from tests.parse import test_executor_runner as er_logs
from tests.runners.fixtures import FIXTURES

#: Inputs per test under the ci profile (tests/fuzz/budget.py).
EXAMPLES = 50

#: ``bench import`` kind -> (reader name for the outcome counts, the captures it is seeded with).
KINDS: dict[Kind, tuple[str, str | None]] = {
    "benchmark-model": ("benchmark_model log", "benchmark_model/*.txt"),
    "ort-perf-test": ("onnxruntime_perf_test log", "onnxruntime_perf_test/*.txt"),
    "executor-runner": ("executor_runner log", None),
}
#: executor_runner captures are not published as files: its parser's tests hold them.
EXECUTOR_RUNNER_LOGS = (er_logs.ISSUE_1231, er_logs.NEWEST, er_logs.SUMMED, er_logs.FAILED)

#: A figure as the tools print them (and as a mutation finds them in a line).
FIGURE_RE = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
#: Figures no tool prints, each a classic way to break a reader of numbers.
HOSTILE_FIGURES = [
    "1e999", "-1e999", "-7.5", "-0", "-1", "nan", "inf", "1e-999", "+1", ".5", "1.", "0x10",
    "9" * 30, "9" * 5000, "0", "1e15", "1,000", "\u0661\u0662",
]  # fmt: skip
#: Prefixes a captured line may carry (logcat, the tools' levels and source locations).
PREFIXES = ["I/tflite  ( 5395): ", "INFO: ", "ERROR: ", "[file.cc:12] ", "\t", "  "]

figures = st.one_of(
    st.sampled_from(HOSTILE_FIGURES),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
)


@functools.cache
def seeds(kind: Kind) -> tuple[str, ...]:
    pattern = KINDS[kind][1]
    if pattern is None:
        return EXECUTOR_RUNNER_LOGS
    return tuple(p.read_text(encoding="utf-8") for p in sorted(FIXTURES.glob(pattern)))


@functools.cache
def shapes() -> tuple[tuple[str, ...], ...]:
    """Every line of every capture, split around its figures: the line shapes of all tools."""
    lines = {line for kind in KINDS for text in seeds(kind) for line in text.splitlines()}
    return tuple(tuple(FIGURE_RE.split(line)) for line in sorted(lines))


@st.composite
def shaped_line(draw: st.DrawFn) -> str:
    """A captured line's shape with new figures in it."""
    parts = draw(st.sampled_from(shapes()))
    out = [parts[0]]
    for literal in parts[1:]:
        out += [draw(figures), literal]
    return "".join(out)


def _mutate(lines: list[str], how: str, draw: st.DrawFn) -> None:
    """One line mutation of ``how``, in place."""
    k = draw(st.integers(0, max(len(lines) - 1, 0)))
    if not lines:
        lines.append(draw(shaped_line()))
    elif how == "figure" and FIGURE_RE.search(lines[k]):
        found = list(FIGURE_RE.finditer(lines[k]))
        m = found[draw(st.integers(0, len(found) - 1))]
        lines[k] = lines[k][: m.start()] + draw(figures) + lines[k][m.end() :]
    elif how == "drop":
        del lines[k]
    elif how == "repeat":
        lines[k:k] = [lines[k]] * draw(st.integers(1, 50))
    elif how == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[k], lines[j] = lines[j], lines[k]
    elif how == "shape":
        lines.insert(k, draw(shaped_line()))
    elif how == "cut":
        del lines[k + 1 :]
        lines[k] = lines[k][: draw(st.integers(0, len(lines[k])))]
    elif how == "long":
        # around the bound: the longest line read, and one past it
        target = MAX_LINE_CHARS + draw(st.sampled_from([-1, 1, 100]))
        lines[k] = (lines[k] or "1 ") * (target // max(len(lines[k]), 2) + 1)
    elif how == "noise":
        lines.insert(k, draw(st.text(max_size=80)))
    elif how == "prefix":
        lines[k] = draw(st.sampled_from(PREFIXES)) + lines[k]


MUTATIONS = ["figure", "drop", "repeat", "swap", "shape", "cut", "long", "noise", "prefix"]


@st.composite
def mutated_log(draw: st.DrawFn, kind: Kind) -> str:
    lines = draw(st.sampled_from(seeds(kind))).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        _mutate(lines, draw(st.sampled_from(MUTATIONS)), draw)
    return "\n".join(lines) + "\n"


def _numbers(value: Any, where: str = "") -> list[tuple[str, float]]:
    """Every number in a parsed run or a result, with where it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(v, f"{where}.{k}")]
    if isinstance(value, (list, tuple)):
        return [n for i, v in enumerate(value) for n in _numbers(v, f"{where}[{i}]")]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(where, float(value))]
    return []


def assert_in_range(value: Any) -> None:
    """Every figure is finite and >= 0 (``op_index`` -1 marks an operator without a node)."""
    for where, number in _numbers(value):
        if where.endswith("op_index") and number == -1:
            continue
        assert math.isfinite(number) and number >= 0, f"{where} = {number}"


def read_or_refuse(kind: Kind, text: str, folder: Path) -> None:
    """Parse ``text`` as ``bench import`` does: a harness error is a refusal, anything else
    fails the test; what is read must be in range."""
    reader = KINDS[kind][0]
    log = folder / "log.txt"
    log.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        parsed = parse_log_rows(kind, log)
    except HarnessError as exc:
        record_refusal(reader, exc, str(log))
        return
    record(reader, None)
    as_read = log.read_text(encoding="utf-8", errors="replace")
    for run in nr.parse_runs(nr.ToolOutput(TOOLS[kind], as_read)):
        assert_in_range(run)
    for _, result, ops in parsed:
        result.to_json()  # JSON without NaN: every figure finite
        assert_in_range(result)
        assert all(math.isfinite(n) for _, n in _numbers(ops))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("native-log-fuzz")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_seeds_are_read(kind: Kind, folder: Path) -> None:
    for text in seeds(kind):
        read_or_refuse(kind, text, folder)


@st.composite
def damaged_log(draw: st.DrawFn, kind: Kind) -> str:
    """A capture damaged byte by byte, read as ``bench import`` reads it."""
    raw = draw(mutated_bytes(draw(st.sampled_from(seeds(kind))).encode("utf-8")))
    return raw.decode("utf-8", errors="replace")


@pytest.mark.parametrize("kind", sorted(KINDS))
@ci_share(EXAMPLES)
@given(data=st.data())
def test_mutated_captures(kind: Kind, folder: Path, data: st.DataObject) -> None:
    text = data.draw(st.one_of(mutated_log(kind), damaged_log(kind)))
    read_or_refuse(kind, text, folder)


@pytest.mark.parametrize("kind", sorted(KINDS))
@ci_share(EXAMPLES)
@given(lines=st.lists(shaped_line(), max_size=25))
def test_random_logs_of_captured_line_shapes(kind: Kind, folder: Path, lines: list[str]) -> None:
    read_or_refuse(kind, "\n".join(lines) + "\n", folder)
