"""How well ``bench history`` finds steps in a latency series, against a fixed threshold.

Synthetic series with known steps (fixed seeds, no measuring): each point is one run whose
process medians carry ``--noise`` log-normal noise (2 %), a level that steps by ``--step`` (5 %,
up or down at random) after segments of ``--min-segment`` to ``--max-segment`` runs, and, in one
scenario, run-level noise on top (what a reboot or another day adds to every process alike).
The scenarios are the method's defaults (five processes per run), ``--quick`` runs (one process,
whose interval covers only its own samples), and five processes with 1 % run-level noise.

For each scenario, the figures of the change-point detector (``history/changepoint.py``) and of a
fixed-threshold comparison of consecutive runs (a change wherever the ratio of consecutive medians
is beyond ``--step``, 5 %):

* found: the share of true steps with a detected change within ``--tolerance`` runs (1) of them,
  and the share found at exactly their run;
* false per 100 points: detected changes that match no true step, per 100 points, over the step
  series and as many noise-only series;
* the gate: how often ``bench gate``'s test (the newest run against the stable segment before it,
  5 % threshold) fails when the newest run opens a ``--gate-step`` slowdown (10 %: a step at the
  threshold itself is caught half the time, whatever the test), and when it is noise; every
  other history is short (``--gate-points`` runs).

Issue 28's goals: found >= 90 % and false <= 1 per 100 points.

Run from the repository root (seconds, no device)::

    .venv/bin/python benchmarks/history_detect.py
    .venv/bin/python benchmarks/history_detect.py --series 100 --json
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import common
import numpy as np

from benchharness.history.changepoint import Observation, detect, newest_step

#: Issue 28's goals for the detector.
GOAL_FOUND = 0.90
GOAL_FALSE_PER_100 = 1.0
#: The gate's test, as ``bench gate`` runs it by default (history/gate.py).
GATE_THRESHOLD = 0.05
GATE_ALPHA = 0.01
#: One-process runs time this many inferences (``--quick``) ...
QUICK_SAMPLES = 64
#: ... each with this spread around its process's median (log sd); their median's own interval.
SAMPLE_SD = 0.05
#: A normal median's standard error is this many times the mean's.
MEDIAN_SE_FACTOR = 1.2533


@dataclass(frozen=True)
class Scenario:
    name: str
    processes: int
    run_sd: float  # log sd a run adds to all its processes alike


SCENARIOS = (
    Scenario("5 processes/run", processes=5, run_sd=0.0),
    Scenario("1 process/run (--quick)", processes=1, run_sd=0.0),
    Scenario("5 processes + 1% run noise", processes=5, run_sd=0.01),
)


@dataclass(frozen=True)
class Series:
    points: list[Observation]
    medians: list[float]
    steps: list[int]


def step_positions(rng: np.random.Generator, n: int, lo: int, hi: int) -> list[int]:
    """Where the level steps: after segments of ``lo`` to ``hi`` runs, none in the last ``lo``."""
    out, at = [], int(rng.integers(lo, hi + 1))
    while at <= n - lo:
        out.append(at)
        at += int(rng.integers(lo, hi + 1))
    return out


def make_series(
    rng: np.random.Generator, args: argparse.Namespace, scenario: Scenario, steps: Sequence[int]
) -> Series:
    """One synthetic series: its points as the detector sees them, and their medians."""
    level = np.zeros(args.points)
    for at in steps:
        level[at:] += math.log1p(args.step) * rng.choice((-1.0, 1.0))
    points, medians = [], []
    for i in range(args.points):
        run = rng.normal(0.0, scenario.run_sd) if scenario.run_sd else 0.0
        logs = level[i] + run + rng.normal(0.0, args.noise, scenario.processes)
        values = np.exp(logs)
        median = float(np.median(values))
        if scenario.processes == 1:
            # one process: its interval is the order statistics of its own samples
            half = 1.96 * MEDIAN_SE_FACTOR * SAMPLE_SD / math.sqrt(QUICK_SAMPLES)
            point = Observation.from_values(
                [median], ci_low_ms=median * math.exp(-half), ci_high_ms=median * math.exp(half)
            )
        else:
            point = Observation.from_values(list(values))
        points.append(point)
        medians.append(median)
    return Series(points, medians, list(steps))


def threshold_changes(medians: Sequence[float], threshold: float) -> list[int]:
    """The fixed-threshold baseline: a change wherever consecutive medians differ by more."""
    limit = math.log1p(threshold)
    return [
        i for i in range(1, len(medians)) if abs(math.log(medians[i] / medians[i - 1])) >= limit
    ]


@dataclass
class Tally:
    steps: int = 0
    found: int = 0
    exact: int = 0
    false: int = 0
    points: int = 0

    def add(self, truth: Sequence[int], found: Sequence[int], tolerance: int, n: int) -> None:
        self.steps += len(truth)
        self.points += n
        unmatched = list(found)
        for at in truth:
            near = [f for f in unmatched if abs(f - at) <= tolerance]
            if near:
                best = min(near, key=lambda f: abs(f - at))
                unmatched.remove(best)
                self.found += 1
                self.exact += best == at
        self.false += len(unmatched)

    def figures(self) -> dict[str, float]:
        return {
            "found": self.found / self.steps if self.steps else float("nan"),
            "exact": self.exact / self.steps if self.steps else float("nan"),
            "false_per_100": 100.0 * self.false / self.points,
        }


def gate_rates(
    rng: np.random.Generator, args: argparse.Namespace, scenario: Scenario
) -> dict[str, float]:
    """How often the gate's test fails when the newest run opens a ``--gate-step`` slowdown, and
    when it is noise; every other history is short (``--gate-points`` runs)."""
    fails = {"slowdown": 0, "noise": 0}
    for i in range(args.series):
        length = args.gate_points if i % 2 else args.points
        for kind in fails:
            points = make_series(rng, args, scenario, []).points[:length]
            if kind == "slowdown":
                last = points[-1]
                points[-1] = dataclasses.replace(
                    last, level=last.level + math.log1p(args.gate_step)
                )
            step = newest_step(points)
            assert step is not None
            fails[kind] += step.ratio >= 1 + GATE_THRESHOLD and step.p_slower < GATE_ALPHA
    return {f"gate_fails_{k}": v / args.series for k, v in fails.items()}


def measure(args: argparse.Namespace, scenario: Scenario, index: int) -> dict[str, object]:
    rng = np.random.default_rng(args.seed + 1000 * index)
    detector, threshold = Tally(), Tally()
    started = time.perf_counter()
    for i in range(2 * args.series):
        with_steps = i < args.series  # then as many noise-only series
        truth = (
            step_positions(rng, args.points, args.min_segment, args.max_segment)
            if with_steps
            else []
        )
        series = make_series(rng, args, scenario, truth)
        beta = args.penalty_per_log_n * math.log(args.points) if args.penalty_per_log_n else None
        found = detect(series.points, beta=beta).indices
        detector.add(truth, found, args.tolerance, args.points)
        threshold.add(
            truth, threshold_changes(series.medians, args.step), args.tolerance, args.points
        )
    elapsed = time.perf_counter() - started
    return {
        "scenario": scenario.name,
        "detector": detector.figures(),
        "threshold": threshold.figures(),
        "steps": detector.steps,
        "points": detector.points,
        "ms_per_series": 1000.0 * elapsed / (2 * args.series),
        **gate_rates(rng, args, scenario),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200, help="step series per scenario")
    parser.add_argument("--points", type=int, default=100, help="runs per series")
    parser.add_argument("--noise", type=float, default=0.02, help="process noise (log sd)")
    parser.add_argument("--step", type=float, default=0.05, help="step size (ratio - 1)")
    parser.add_argument("--min-segment", type=int, default=10)
    parser.add_argument("--max-segment", type=int, default=30)
    parser.add_argument("--tolerance", type=int, default=1, help="runs a found step may be off")
    parser.add_argument("--gate-step", type=float, default=0.10, help="the gate's slowdown")
    parser.add_argument("--gate-points", type=int, default=6, help="runs of a short history")
    parser.add_argument("--seed", type=int, default=28)
    parser.add_argument("--penalty-per-log-n", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results = [measure(args, s, i) for i, s in enumerate(SCENARIOS)]
    if args.json:
        common.print_json(results)
        return
    rows = []
    for r in results:
        d, t = r["detector"], r["threshold"]
        assert isinstance(d, dict) and isinstance(t, dict)
        rows.append([
            r["scenario"], f"{d['found']:.1%}", f"{d['exact']:.1%}", f"{d['false_per_100']:.2f}",
            f"{t['found']:.1%}", f"{t['false_per_100']:.2f}",
            f"{r['gate_fails_slowdown']:.1%}", f"{r['gate_fails_noise']:.1%}",
        ])  # fmt: skip
    print(
        f"{args.series} step series + {args.series} noise-only series of {args.points} runs per "
        f"scenario; {args.noise:.0%} process noise, {args.step:.0%} steps every "
        f"{args.min_segment}-{args.max_segment} runs, seed {args.seed}\n"
    )
    common.print_table(
        ["scenario", "found", "exact", "false/100", "threshold found", "threshold false/100",
         f"gate: +{args.gate_step:.0%} newest", "gate: noise"],
        rows,
    )  # fmt: skip
    ok = all(
        isinstance(d := r["detector"], dict)
        and d["found"] >= GOAL_FOUND
        and d["false_per_100"] <= GOAL_FALSE_PER_100
        for r in results
    )
    print(
        f"\ngoals (found >= {GOAL_FOUND:.0%}, false <= {GOAL_FALSE_PER_100:g} per 100 points): "
        + ("met" if ok else "NOT met")
    )


if __name__ == "__main__":
    main()
