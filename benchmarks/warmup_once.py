"""Warm-up calibrated once per job (issue 29): what it saves, and whether the numbers move.

Runs ``bench run --device local`` (the default method) twice through the library: once with the
full warm-up rule in every process (``--warmup full``) and once calibrated (the default: the
first process of a model finds where its latency settles, the later ones warm up that long with a
margin and a check). Per model and format it prints both medians and 95 % intervals, whether
each median lies in the other run's interval, the runner wall time of each (the row's
``wall_s``: the sum over its processes), the warm-up inferences each ran (``warmup_n``, summed
over the processes: what the calibration changes directly, whatever else the machine does), the
processes each ran and what the calibrated processes did; then the totals.

Run from the repository root on a quiet machine::

    .venv/bin/python benchmarks/warmup_once.py                               # the zoo, ~25 min
    .venv/bin/python benchmarks/warmup_once.py --models student_net,squeezenet1_1 --formats onnx
    .venv/bin/python benchmarks/warmup_once.py --from FULL_RUN CALIBRATED_RUN   # stored runs

The two runs are back to back, full first (``--calibrated-first`` swaps them): a drift of the
machine between them shows as medians outside each other's intervals in both directions.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import common

from benchharness.ondevice.protocol import WARMUP_CALIBRATED, WARMUP_FULL
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore

#: The whole zoo, as ``bench run --models all`` names it.
ALL_MODELS = "all"
#: The interval each run's median is set against: the row's 95 % interval of the median.
LEVEL = "95 %"


@dataclass(frozen=True)
class Pair:
    """One model and format as the full-rule run and the calibrated run measured it."""

    model: str
    fmt: str
    full: RunRow
    calibrated: RunRow


def measure(args: argparse.Namespace, warmup: str) -> RunStore:
    """One ``bench run`` of the models with ``warmup`` in every job; failed rows are fatal."""
    request = common.with_method(common.run_request(args), warmup=warmup)
    request = common.with_options(request, seed=args.seed)
    print(f"bench run --warmup {warmup} ...", file=sys.stderr)
    return common.bench_run(request)


def pairs(full: RunStore, calibrated: RunStore) -> list[Pair]:
    """The rows both runs have, by model and format (and precision, for a sweep)."""
    keyed = {(r.model, r.format, r.precision): r for r in calibrated.runs}
    out = []
    for r in sorted(full.runs, key=lambda r: (r.model, r.format, r.precision)):
        other = keyed.get((r.model, r.format, r.precision))
        if other is not None:
            out.append(Pair(r.model, r.format, r, other))
    return out


def inside(value: float | None, row: RunRow) -> bool | None:
    """Whether ``value`` lies in ``row``'s 95 % interval (None: one of them is missing)."""
    if value is None or row.ci95_low_ms is None or row.ci95_high_ms is None:
        return None
    return row.ci95_low_ms <= value <= row.ci95_high_ms


def interval(row: RunRow) -> str:
    if row.ci95_low_ms is None or row.ci95_high_ms is None:
        return "-"
    return f"{common.fmt(row.ci95_low_ms)}-{common.fmt(row.ci95_high_ms)}"


def yes_no(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "NO")


def table(found: Sequence[Pair]) -> tuple[list[str], list[list[object]]]:
    """The per-model table: medians, intervals, cross-coverage, wall times, processes."""
    headers = ["model", "format", "full ms", f"full {LEVEL}", "calibrated ms",
               f"calibrated {LEVEL}", "full in cal", "cal in full", "full wall s",
               "cal wall s", "full warm-up n", "cal warm-up n", "processes", "settle n",
               "target n", "calibrated warm-ups"]  # fmt: skip
    rows: list[list[object]] = []
    for p in found:
        f, c = p.full, p.calibrated
        rows.append([
            p.model, p.fmt, f.median_ms, interval(f), c.median_ms, interval(c),
            yes_no(inside(f.median_ms, c)), yes_no(inside(c.median_ms, f)),
            f.wall_s, c.wall_s, f.warmup_n, c.warmup_n, f"{f.processes}/{c.processes}",
            c.warmup_settle_n, c.warmup_target_n, c.warmup_mode or "-",
        ])  # fmt: skip
    return headers, rows


def totals(found: Sequence[Pair]) -> list[str]:
    """The summary lines: wall time saved, processes, how often the medians agree."""
    full_s = sum(p.full.wall_s or 0.0 for p in found)
    cal_s = sum(p.calibrated.wall_s or 0.0 for p in found)
    full_n = sum(p.full.processes or 0 for p in found)
    cal_n = sum(p.calibrated.processes or 0 for p in found)
    both = [
        (inside(p.full.median_ms, p.calibrated), inside(p.calibrated.median_ms, p.full))
        for p in found
    ]
    agree = sum(1 for a, b in both if a and b)
    known = sum(1 for a, b in both if a is not None and b is not None)
    fallbacks = sum(_count(p.calibrated.warmup_mode, "calibrated+full") for p in found)
    checked = sum(_count(p.calibrated.warmup_mode, "calibrated") for p in found)
    full_w = sum(p.full.warmup_n or 0 for p in found)
    cal_w = sum(p.calibrated.warmup_n or 0 for p in found)
    return [
        f"runner wall time: full {full_s:.1f} s ({full_n} processes), calibrated {cal_s:.1f} s "
        f"({cal_n} processes): {_change(cal_s, full_s)}",
        f"per process: full {_per(full_s, full_n)} s, calibrated {_per(cal_s, cal_n)} s",
        f"warm-up inferences: full {full_w}, calibrated {cal_w}: {_change(cal_w, full_w)}",
        f"medians inside each other's {LEVEL} interval: {agree} of {known} rows",
        f"calibrated processes: {checked} passed the check, {fallbacks} fell back to the full rule",
    ]


def _count(cell: str | None, mode: str) -> int:
    for part in (cell or "").split(";"):
        name, _, n = part.partition(":")
        if name == mode and n.isdigit():
            return int(n)
    return 0


def _change(new: float, old: float) -> str:
    """``new`` against ``old`` in words: ``12 % less`` or ``3 % more``."""
    if old <= 0:
        return "-"
    change = new / old - 1.0
    return f"{abs(change):.0%} {'less' if change < 0 else 'more'}"


def _per(seconds: float, processes: int) -> str:
    return f"{seconds / processes:.2f}" if processes else "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--models", default=ALL_MODELS, help="zoo models, comma-separated (all)")
    p.add_argument("--formats", default="onnx,tflite")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--input-shape", default=None)
    p.add_argument("--seed", type=int, default=29, help="the interleaving order of both runs")
    p.add_argument("--calibrated-first", action="store_true", help="run the calibrated one first")
    p.add_argument("--from", dest="from_runs", nargs=2, metavar=("FULL_RUN", "CALIBRATED_RUN"),
                   default=None, help="read these two runs instead of measuring")  # fmt: skip
    p.add_argument(
        "--results-dir", type=Path, default=Path(os.environ.get("BENCH_RESULTS_DIR", "results"))
    )
    args = p.parse_args(argv)
    if args.from_runs:
        full, calibrated = (RunStore.open(args.results_dir, rid) for rid in args.from_runs)
    elif args.calibrated_first:
        calibrated = measure(args, WARMUP_CALIBRATED)
        full = measure(args, WARMUP_FULL)
    else:
        full = measure(args, WARMUP_FULL)
        calibrated = measure(args, WARMUP_CALIBRATED)
    found = pairs(full, calibrated)
    print(f"runs: full {full.run_id}, calibrated {calibrated.run_id} (in {args.results_dir})")
    common.print_table(*table(found))
    print()
    for line in totals(found):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
