"""``bench compare`` on runs whose processes fall into modes (issue 29): a different mixture of
the same modes is no change; modes that moved are one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchharness.analysis.comparison import (
    MIXTURE_VERDICT,
    VERDICTS,
    Comparison,
    Match,
    compare_runs,
    gate,
)
from benchharness.analysis.gates import FailOn, apply_gates
from benchharness.analysis.mode_compare import compare_modes, mode_shift
from benchharness.results.schema import RunRow, SampleRow
from benchharness.stats.summary import summarize
from tests.analysis.test_comparison import BASE_ROW

#: Issue 29: process medians (ms) of two runs of one configuration, mobilenet_v2 on ONNX Runtime
#: with 2 threads, this 2-core VM. Their medians differ by 46 %.
RUN_1 = [6.81, 6.69, 3.84, 6.40, 6.49, 6.73, 6.71, 6.75, 4.04, 4.03]
RUN_2 = [4.16, 4.14, 4.14, 4.25, 4.80, 4.03, 4.74, 4.89, 6.61, 6.77]
#: A real change: every process 30 % slower, both modes with it.
SLOWER = 1.3


def scaled(levels: list[float], by: float) -> list[float]:
    return [v * by for v in levels]


def measured(levels: list[float], seed: int = 0) -> tuple[RunRow, list[SampleRow]]:
    """A row and its samples: one process per level, 101 samples 1 % around it."""
    rng = np.random.default_rng(seed)
    parts = [rng.lognormal(math.log(v), 0.01, 101) for v in levels]
    summary = summarize(
        np.concatenate(parts).tolist(),
        process_medians_ms=[float(np.median(p)) for p in parts],
        process_sizes=[p.size for p in parts],
    )
    row = RunRow.from_values(
        {**BASE_ROW, "model": "mobilenet_v2", "job_id": "j", **summary.as_row()}
    )
    samples = [
        SampleRow(job_id="j", device="local", model="mobilenet_v2", format="onnx",
                  precision="fp32", process=p, index=i, latency_ms=float(v))
        for p, part in enumerate(parts)
        for i, v in enumerate(part)
    ]  # fmt: skip
    return row, samples


def compare(a: list[float], b: list[float]) -> tuple[Comparison, Match]:
    row_a, samples_a = measured(a, seed=1)
    row_b, samples_b = measured(b, seed=2)
    result = compare_runs([row_a], samples_a, [row_b], samples_b)
    (match,) = result.matches
    return result, match


def failing(result: Comparison) -> list[str]:
    gated = apply_gates(result, [], FailOn(latency_spec="median:5%", latency=0.05))
    assert gated.latency_gate is not None
    return gated.latency_gate.failing


@pytest.mark.parametrize(("a", "b"), [(RUN_1, RUN_2), (RUN_2, RUN_1)])
def test_the_real_runs_are_the_same_modes_in_another_mixture(
    a: list[float], b: list[float]
) -> None:
    result, m = compare(a, b)
    assert m.ratio is not None and abs(m.ratio - 1.0) > 0.3  # the medians differ by 46 %
    assert m.verdict == MIXTURE_VERDICT and MIXTURE_VERDICT in VERDICTS
    note = next(n for n in m.notes if n.startswith("same modes"))
    assert "different mixture" in note and "not a change" in note
    assert "30 %" in note and "80 %" in note
    assert not m.significant_slowdown(0.05)
    assert not m.significant_slowdown(0.05, include_unreliable=True)
    assert not gate(result, 0.05, include_unreliable=True)
    assert failing(result) == []


@pytest.mark.parametrize(
    ("a", "b"), [(RUN_1, scaled(RUN_2, SLOWER)), (RUN_2, scaled(RUN_1, SLOWER)),
                 (RUN_1, scaled(RUN_1, SLOWER))],
)  # fmt: skip
def test_modes_that_all_moved_30_percent_are_a_slowdown(a: list[float], b: list[float]) -> None:
    result, m = compare(a, b)
    assert m.verdict == "slower" and m.test == "processes-modes"
    assert m.ratio == pytest.approx(SLOWER, rel=0.08)  # within modes, whatever the mixture
    assert m.p_value is not None and m.p_value < 1e-4
    assert m.ci_low is not None and m.ci_high is not None and m.ci_low < m.ratio < m.ci_high
    assert any(n.startswith("modes moved") for n in m.notes)
    assert gate(result, 0.05)
    assert failing(result) == ["mobilenet_v2 [onnx/fp32]"]


def test_modes_that_moved_faster_are_an_improvement() -> None:
    _, m = compare(scaled(RUN_1, SLOWER), RUN_2)
    assert m.verdict == "faster" and m.ratio == pytest.approx(1 / SLOWER, rel=0.08)


def test_one_side_in_one_of_the_other_side_s_modes_is_unreliable_not_a_change() -> None:
    # every process of B landed in A's fast mode: a mixture more processes would tell apart
    fast = [4.02, 4.05, 3.98, 4.01, 4.03, 4.0, 4.04, 3.99, 4.02, 4.01]
    for a, b in ((RUN_1, fast), (fast, RUN_1)):
        result, m = compare(a, b)
        assert m.verdict == "unreliable"
        assert any("--max-processes" in n and "1 of" in n for n in m.notes)
        assert failing(result) == []


def test_one_level_against_modes_it_does_not_share_is_judged_as_usual() -> None:
    between = [5.2, 5.25, 5.18, 5.22, 5.21, 5.19, 5.23, 5.2, 5.24, 5.2]
    _, m = compare(RUN_1, between)
    assert m.verdict not in (MIXTURE_VERDICT,) and m.test == "processes-welch"
    assert any(n.startswith("modes: A") for n in m.notes)


def test_one_level_on_both_sides_is_untouched() -> None:
    rng = np.random.default_rng(3)
    a = [float(v) for v in rng.lognormal(math.log(5.0), 0.02, 10)]
    b = [float(v) for v in rng.lognormal(math.log(5.0 * 1.08), 0.02, 10)]
    _, m = compare(a, b)
    assert m.verdict == "slower" and m.test == "processes-welch"
    assert not any("mode" in n for n in m.notes)
    assert compare_modes(a, b, 0.05) is None


def test_the_tolerance_is_the_change_threshold() -> None:
    # the fast mode 6 % slower, the slow one unchanged: past 5 %, so not the same modes
    moved = [v * 1.06 if v < 5 else v for v in RUN_1]
    found = compare_modes(RUN_1, moved, 0.05)
    assert found is not None and found.kind == "moved"
    within = compare_modes(RUN_1, moved, 0.10)
    assert within is not None and within.kind == "same"


def test_the_shift_within_modes_is_the_stratified_estimate() -> None:
    # log B = log A + beta in every mode: beta recovered, the spread inside modes its error
    a = [(4.0, 4.1, 3.9), (6.6, 6.7, 6.8, 6.9)]
    b = [tuple(v * 1.2 for v in g) for g in a]
    shift = mode_shift(a, b)
    assert shift.ratio == pytest.approx(1.2)
    assert shift.ci_low < 1.2 < shift.ci_high and shift.p_value < 1e-6
    # a timer that reads the same value in each mode: no error but rounding
    exact = mode_shift([(4.0, 4.0), (6.7, 6.7)], [(4.8, 4.8), (8.04, 8.04)])
    assert exact.p_value < 1e-12 and exact.ci_low == pytest.approx(exact.ci_high)
    assert mode_shift([(4.0, 4.0), (6.7, 6.7)], [(4.0, 4.0), (6.7, 6.7)]).p_value == 1.0
    # weights n_a n_b / (n_a + n_b): the mode with more processes on both sides counts more
    c = [tuple(v * 1.1 for v in a[0]), tuple(v * 1.3 for v in a[1])]
    w = [3 * 3 / 6, 4 * 4 / 8]
    expect = math.exp((w[0] * math.log(1.1) + w[1] * math.log(1.3)) / sum(w))
    assert mode_shift(a, c).ratio == pytest.approx(expect)
    assert mode_shift(a, c).p_value > 0.0


def test_a_shift_needs_a_degree_of_freedom_left() -> None:
    with pytest.raises(ValueError, match="degree of freedom"):
        mode_shift([(4.0,)], [(4.4,)])
    assert compare_modes([0.0] * 6, RUN_1, 0.05) is None  # no ratio of a zero
