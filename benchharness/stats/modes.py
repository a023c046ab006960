"""Modes among a row's process medians: two or three levels rather than one level with a spread.

The interval of ``stats/intervals`` models every process as one level plus a spread. Some rows
break that: on this project's 2-core VM, ten processes of mobilenet_v2 (ONNX Runtime, 2 threads)
gave 3.84-4.04 ms three times and 6.40-6.81 ms seven times (docs/method.md, "Processes that fall
into modes"). A median between such modes describes nothing that runs, and two runs differ by
their mixture alone.

The rule, on the logarithms of the process medians (a disturbance scales latency):

1. At least ``MIN_PROCESSES_FOR_MODES`` processes, all finite and positive.
2. For k = 2 and 3 (``MAX_MODES``), the best split of the sorted values into k runs of
   consecutive values, each of at least ``MIN_MODE_PROCESSES``: the one with the least
   within-mode sum of squares, i.e. the largest between/within variance (Fisher's 1958 optimal
   grouping, exhaustive here: at most a few thousand candidate splits).
3. A split stands when every gap between neighbouring modes (the lowest process of the upper
   mode over the highest of the lower: the empty stretch between them) is at least
   ``MIN_GAP_REL`` **and** at least ``SEPARATION`` times the within-mode standard deviation
   (pooled over the modes, n - k degrees of freedom).
4. The most modes whose split stands win; none standing is one level.

Measured on seeded one-level data (``tests/stats/test_modes.py``: log-normal process medians,
sd 1-5 %, 6-10 processes, 10 000 runs): no run split (false-positive rate 0, asserted <= 1 %);
at 6, 8 and 10 % sd, 0.05 %, 0.65 % and 2.1 % did. Two levels 25 % apart (2 % spread inside,
3 + 7 processes) are found in 97 % of runs, 30 % apart or more in all.
Pure Python: the ``modes`` cell is read by tables that load no numpy.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

#: Below six processes a 2 + 2 split leaves too little to tell two levels from one spread, and
#: the process rule runs a one-level row at its minimum of five: no mode talk for those.
MIN_PROCESSES_FOR_MODES = 6
#: A mode holds at least two processes: one process off the rest is an outlier, not a level.
MIN_MODE_PROCESSES = 2
#: At most three modes: ten processes cannot show more with two in each and gaps between.
MAX_MODES = 3
#: The empty gap between neighbouring modes is at least 15 %. A quiet row's processes spread by
#: 1-5 % (sd); among ten of them at 5 % a 15 % gap is a 2.8-sd hole, which one level
#: practically never leaves (the tests measure it). Modes closer than this are a spread, which
#: PROCESS_VARIANCE already reports; run 2 of the issue's data keeps its 4.74-4.89 ms processes,
#: 11.5 % above the fast mode's top, in that mode.
MIN_GAP_REL = 0.15
#: ... and at least three within-mode standard deviations: one wide level (8-10 % sd) cut in
#: two has gaps of one or two of its halves' sds, so the relative gap alone would split it.
SEPARATION = 3.0

#: The ``modes`` cell: ``median_ms:share`` per mode, ascending, ``;``-separated.
MODE_SEPARATOR = ";"
#: Between a mode's median and its share within a cell entry.
FIELD_SEPARATOR = ":"


@dataclass(frozen=True)
class Mode:
    """One level the processes fell into: the median of its processes (ms), how many, and
    their share of the row's processes."""

    median_ms: float
    count: int
    share: float


def _loggable(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)


def _sum_squares(prefix: Sequence[float], prefix_sq: Sequence[float], lo: int, hi: int) -> float:
    """Sum of squared deviations from their mean of ``x[lo:hi]``, from prefix sums."""
    total, total_sq, n = prefix[hi] - prefix[lo], prefix_sq[hi] - prefix_sq[lo], hi - lo
    return max(0.0, total_sq - total * total / n)


def _splits(n: int, k: int) -> Iterator[tuple[int, ...]]:
    """Boundaries ``(0, c1, ..., n)`` of every split of n sorted values into k runs of at least
    ``MIN_MODE_PROCESSES``."""
    inner = range(MIN_MODE_PROCESSES, n - MIN_MODE_PROCESSES + 1)
    for cuts in itertools.combinations(inner, k - 1):
        bounds = (0, *cuts, n)
        if all(b - a >= MIN_MODE_PROCESSES for a, b in itertools.pairwise(bounds)):
            yield bounds


def _best_split(x: Sequence[float], k: int) -> tuple[float, tuple[int, ...]] | None:
    """The split of sorted ``x`` into k modes with the least within-mode sum of squares, and
    that sum; None when x is too short for k modes."""
    prefix, prefix_sq = [0.0], [0.0]
    for v in x:
        prefix.append(prefix[-1] + v)
        prefix_sq.append(prefix_sq[-1] + v * v)
    best: tuple[float, tuple[int, ...]] | None = None
    for bounds in _splits(len(x), k):
        within = sum(_sum_squares(prefix, prefix_sq, a, b) for a, b in itertools.pairwise(bounds))
        if best is None or within < best[0]:
            best = (within, bounds)
    return best


def _stands(x: Sequence[float], within: float, bounds: tuple[int, ...]) -> bool:
    """Every gap between neighbouring modes clears both ``MIN_GAP_REL`` and ``SEPARATION``
    within-mode sds."""
    k = len(bounds) - 1
    within_sd = math.sqrt(within / (len(x) - k))
    min_gap = math.log1p(MIN_GAP_REL)
    gaps = [x[b] - x[b - 1] for b in bounds[1:-1]]
    return all(gap >= min_gap and gap >= SEPARATION * within_sd for gap in gaps)


def split_modes(values: Sequence[float]) -> tuple[tuple[float, ...], ...]:
    """The process values of each mode, ascending (see the module docstring for the rule);
    ``()`` when they form one level or are too few to tell."""
    if len(values) < MIN_PROCESSES_FOR_MODES or not _loggable(values):
        return ()
    ordered = sorted(values)
    x = [math.log(v) for v in ordered]
    for k in range(MAX_MODES, 1, -1):
        found = _best_split(x, k)
        if found is not None and _stands(x, *found):
            return tuple(tuple(ordered[a:b]) for a, b in itertools.pairwise(found[1]))
    return ()


def find_modes(values: Sequence[float]) -> tuple[Mode, ...]:
    """The modes of a row's process medians (ms), ascending; ``()`` for one level."""
    groups = split_modes(values)
    total = sum(len(g) for g in groups)
    return tuple(
        Mode(median_ms=float(statistics.median(g)), count=len(g), share=len(g) / total)
        for g in groups
    )


def format_modes(found: Sequence[Mode]) -> str:
    """The ``modes`` cell: ``4.03:0.3;6.71:0.7`` (median ms, share of processes); "" for none."""
    return MODE_SEPARATOR.join(f"{m.median_ms:.6g}{FIELD_SEPARATOR}{m.share:.4g}" for m in found)


def _parse_entry(entry: str, processes: int) -> Mode:
    median_text, sep, share_text = entry.partition(FIELD_SEPARATOR)
    if not sep or FIELD_SEPARATOR in share_text:
        raise ValueError(f"modes entry {entry!r} is not MEDIAN:SHARE")
    try:
        median, share = float(median_text), float(share_text)
    except ValueError:
        raise ValueError(f"modes entry {entry!r} holds no numbers") from None
    if not (math.isfinite(median) and median > 0 and 0.0 < share <= 1.0):
        raise ValueError(f"modes entry {entry!r}: a median > 0 and a share in (0, 1] expected")
    return Mode(median_ms=median, count=round(share * processes), share=share)


def parse_modes(text: str | None, processes: int) -> tuple[Mode, ...]:
    """The modes a ``modes`` cell holds; each count is its share of ``processes`` (the row's).
    ValueError names a damaged cell."""
    if not text:
        return ()
    return tuple(_parse_entry(e.strip(), processes) for e in text.split(MODE_SEPARATOR))
