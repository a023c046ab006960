"""Two runs whose processes fall into modes (``stats/modes``): the mixture is no change, the modes
are (docs/method.md, "Comparing two runs").

A configuration whose runner processes land in one of two levels gives medians that differ
between runs by where its processes happened to land: issue 29's two runs of one configuration
had medians 46 % apart. So where a side's process medians form modes, the comparison is made
between modes, each side's found on its own by the rule of ``stats/modes``:

- **same**: both sides have the same number of modes and each pair (in order) has medians within
  the change threshold (``--threshold``, 5 %): a mode that moved less than that did not change by
  compare's own definition. The difference of the medians is a different mixture of the same
  modes: the verdict is ``same modes``, never slower or faster, and no gate fails on it.
- **moved**: the same number of modes, some pair past the threshold. The change is measured
  within modes (``mode_shift``): ``log m = mode level + beta [side B] + error``, fitted by least
  squares, whose ``beta`` weighs each mode's difference of mean log process medians by
  ``n_a n_b / (n_a + n_b)``; Student's t on it (N - k - 1 degrees of freedom, the misfit of modes
  that moved unequally in the error) gives the ratio ``exp(beta)``, its 95 % interval and p,
  which the verdict reads as it reads Welch's (slower/faster at p < 0.01 and the threshold).
- **partial**: the sides have different numbers of modes (one side's one level counts as one)
  and every mode of the side with fewer matches a distinct mode of the other: one side's
  processes landed in only some of the modes. Whether that is chance or a change needs more
  processes; the verdict is ``unreliable``, which fails no gate.
- **different**: anything else: the usual verdict stands, with each side's modes noted.

Two one-level sides are left to the usual test (``compare_modes`` returns None).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as sps

from benchharness.stats.modes import Mode, split_modes

#: The verdict on a difference of medians that comes from a different mixture of the same modes.
MIXTURE_VERDICT = "same modes"
#: The level of the interval of the within-modes ratio: compare's 95 %, as for Welch's.
SHIFT_CONFIDENCE = 0.95
#: ``ModeComparison.kind`` values (see the module docstring).
SAME, MOVED, PARTIAL, DIFFERENT = "same", "moved", "partial", "different"
#: Verdicts ``partial`` overturns: a change, or a move past the threshold without significance.
CALLED = ("slower", "faster", "unreliable")

#: One side's modes as process values: a tuple of values per mode, ascending.
Groups = Sequence[Sequence[float]]


@dataclass(frozen=True)
class ModeShift:
    """The ratio B/A within modes, its interval, and the p of "no shift"."""

    ratio: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class ModeComparison:
    """How the two sides' modes correspond (``kind``), and what to say about it."""

    kind: str
    modes_a: tuple[Mode, ...]
    modes_b: tuple[Mode, ...]
    note: str
    shift: ModeShift | None = None  # for ``moved``: the change within modes


def _level(values: Sequence[float]) -> tuple[tuple[float, ...], ...]:
    """A side's modes as groups of process values; one level is one group of them all."""
    return split_modes(values) or (tuple(values),)


def _modes(groups: Groups) -> tuple[Mode, ...]:
    """Each group as a ``Mode``: its median, count and share of the side's processes."""
    total = sum(len(g) for g in groups)
    return tuple(
        Mode(median_ms=float(statistics.median(g)), count=len(g), share=len(g) / total)
        for g in groups
    )


def _matches(a: Mode, b: Mode, tolerance: float) -> bool:
    """Whether two modes are one level: medians within ``tolerance`` of each other."""
    return abs(b.median_ms / a.median_ms - 1.0) < tolerance


def _describe(side: str, modes: Sequence[Mode]) -> str:
    if len(modes) == 1:
        return f"{side} one level {modes[0].median_ms:.3g} ms"
    shares = ", ".join(f"{m.median_ms:.3g} ms ({m.share * 100:.0f} %)" for m in modes)
    return f"{side} {shares}"


def _sum_squares(logs: Sequence[float]) -> float:
    mean = sum(logs) / len(logs)
    return sum((v - mean) ** 2 for v in logs)


def mode_shift(groups_a: Groups, groups_b: Groups) -> ModeShift:
    """The common ratio B/A of paired modes (same count, in order, values on both sides of
    each): least squares on ``log m = mode level + beta [B]``. ValueError when the values leave
    no degree of freedom for the error."""
    weights, diffs, within, n = [], [], 0.0, 0
    for ga, gb in zip(groups_a, groups_b, strict=True):
        la, lb = [math.log(v) for v in ga], [math.log(v) for v in gb]
        weights.append(len(la) * len(lb) / (len(la) + len(lb)))
        diffs.append(sum(lb) / len(lb) - sum(la) / len(la))
        within += _sum_squares(la) + _sum_squares(lb)
        n += len(la) + len(lb)
    total_weight = sum(weights)
    beta = sum(w * d for w, d in zip(weights, diffs, strict=True)) / total_weight
    misfit = sum(w * (d - beta) ** 2 for w, d in zip(weights, diffs, strict=True))
    df = n - len(weights) - 1
    if df < 1:
        raise ValueError(f"{n} values in {len(weights)} modes leave no degree of freedom")
    se = math.sqrt((within + misfit) / df / total_weight)
    if se == 0.0:  # no spread at all: the t statistic is undefined
        ratio = math.exp(beta)
        return ModeShift(ratio, ratio, ratio, 0.0 if beta != 0.0 else 1.0)
    p_value = float(2.0 * sps.t.sf(abs(beta) / se, df))
    half = float(sps.t.ppf(0.5 + SHIFT_CONFIDENCE / 2.0, df)) * se
    return ModeShift(math.exp(beta), math.exp(beta - half), math.exp(beta + half), p_value)


def _same_or_moved(
    groups_a: Groups, groups_b: Groups, modes_a: tuple[Mode, ...], modes_b: tuple[Mode, ...],
    tolerance: float,
) -> ModeComparison:  # fmt: skip
    """Sides with the same number of modes: the same modes, or modes that moved."""
    sides = f"{_describe('A', modes_a)}; {_describe('B', modes_b)}"
    if all(_matches(a, b, tolerance) for a, b in zip(modes_a, modes_b, strict=True)):
        note = (
            f"same modes, different mixture ({sides}): modes within {tolerance * 100:.0f} %, "
            "so the medians differ by the share of processes in each, not a change"
        )
        return ModeComparison(SAME, modes_a, modes_b, note)
    moves = ", ".join(
        f"{a.median_ms:.3g} -> {b.median_ms:.3g} ms" for a, b in zip(modes_a, modes_b, strict=True)
    )
    note = f"modes moved: {moves}; ratio, interval and p within modes, whatever their mixture"
    return ModeComparison(MOVED, modes_a, modes_b, note, mode_shift(groups_a, groups_b))


def _nested(fewer: Sequence[Mode], more: Sequence[Mode], tolerance: float) -> bool:
    """Whether every mode of ``fewer`` matches a distinct mode of ``more``."""
    free = list(more)
    for mode in fewer:
        partner = next((m for m in free if _matches(m, mode, tolerance)), None)
        if partner is None:
            return False
        free.remove(partner)
    return True


def compare_modes(
    process_medians_a: Sequence[float], process_medians_b: Sequence[float], tolerance: float
) -> ModeComparison | None:
    """How the modes of A's and B's process medians correspond (module docstring); None when
    neither side falls into modes, or a side has no process medians (or one that is not
    positive: no ratio)."""
    both = [*process_medians_a, *process_medians_b]
    if not process_medians_a or not process_medians_b or min(both) <= 0:
        return None
    groups_a, groups_b = _level(process_medians_a), _level(process_medians_b)
    if len(groups_a) == 1 and len(groups_b) == 1:
        return None
    modes_a, modes_b = _modes(groups_a), _modes(groups_b)
    if len(groups_a) == len(groups_b):
        return _same_or_moved(groups_a, groups_b, modes_a, modes_b, tolerance)
    sides = f"{_describe('A', modes_a)}; {_describe('B', modes_b)}"
    fewer, more = sorted((("A", modes_a), ("B", modes_b)), key=lambda s: len(s[1]))
    if _nested(fewer[1], more[1], tolerance):
        note = (
            f"{fewer[0]}'s processes fall into {len(fewer[1])} of {more[0]}'s {len(more[1])} "
            f"modes ({sides}): a mixture that more processes (--max-processes) would tell from "
            "a change"
        )
        return ModeComparison(PARTIAL, modes_a, modes_b, note)
    return ModeComparison(DIFFERENT, modes_a, modes_b, f"modes: {sides}")


def mode_verdict(found: ModeComparison, verdict: str) -> str:
    """The verdict once the modes are known: ``same modes`` for the same ones, ``unreliable``
    for a change only part of the modes could show; else ``verdict`` (``moved`` was already
    tested within modes)."""
    if found.kind == SAME:
        return MIXTURE_VERDICT
    if found.kind == PARTIAL and verdict in CALLED:
        return "unreliable"
    return verdict
