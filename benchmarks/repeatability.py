"""Repeatability and calibration: the same ``bench run`` N times back to back. Do the medians
agree, and do the rows' intervals cover what repeats?

Runs ``bench run --device local --models resnet18,mobilenet_v2,shufflenet_v2_x0_5,dw_resnet18``
(the default method) ``--repeats`` times through the library and prints, per model and format:

* every run's median, the spread of medians (max/min - 1) and the processes each run used;
* the process-to-process spread measured (sd of the log process medians within a run, pooled):
  what no number of inferences inside one process can reduce;
* coverage: in how many runs the 95 % interval of the median (``ci95_*``) holds the grand median
  (the median of every process median of every run), and how often it would have with the
  interval of the first method (order statistics of the pooled samples, from ``samples.csv``);
* rerun coverage: over every ordered pair of runs, how often one run's median falls in the
  other's 95 % and 99 % intervals (a CI of the median covers a rerun less often than its level,
  ~83 % at 95 % for two equal runs; the 99 % interval holds a rerun ~95 % of the time);
* the flags raised, and the wall seconds per run.

Then the goals of issue 14: coverage >= 90 % over all rows, spread <= 3 % for models of 1 ms or
more, no THROTTLED on a quiet machine. ``--before`` measures with the method the issue started
from (3 processes of >= 10 s), for the before/after figures.

Run from the repository root on a quiet machine::

    .venv/bin/python benchmarks/repeatability.py                       # 5 runs, ~10-12 min
    .venv/bin/python benchmarks/repeatability.py --before              # the old method, ~25 min
    .venv/bin/python benchmarks/repeatability.py --from RUN1 RUN2 ...  # from earlier runs
    .venv/bin/python benchmarks/repeatability.py --repeats 2 --fast \\
        --models tests.support.tiny:tiny_cnn --input-shape 1x3x32x32   # smoke, ~30 s
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common

from benchharness.ondevice.method import median_ci_stdlib
from benchharness.results.schema import RunRow, SampleRow
from benchharness.results.store import RunStore

#: Issue 5: five runs back to back are enough to see the spread a user will meet.
DEFAULT_REPEATS = 5
#: Issue 14's goals: coverage of the grand median by the 95 % intervals, over all rows ...
GOAL_COVERAGE = 0.90
#: ... and the spread of medians for models of at least GOAL_SPREAD_MIN_MS.
GOAL_SPREAD = 0.03
GOAL_SPREAD_MIN_MS = 1.0
#: The level of the coverage check.
LEVEL = 0.95


def _pooled_ci(samples: list[SampleRow], job_id: str) -> tuple[float, float] | None:
    """The first method's 95 % interval: order statistics of the job's pooled samples."""
    values = sorted(
        s.latency_ms for s in samples if s.job_id == job_id and s.latency_ms is not None
    )
    return median_ci_stdlib(values, LEVEL) if values else None


def _inside(value: float | None, lo: float | None, hi: float | None) -> bool | None:
    if value is None or lo is None or hi is None:
        return None
    return lo <= value <= hi


def _share(hits: list[bool | None]) -> tuple[int, int]:
    known = [h for h in hits if h is not None]
    return sum(known), len(known)


def collect(stores: list[RunStore]) -> list[dict[str, Any]]:
    """Per model/format: medians, intervals, coverage and flags over the runs."""
    keyed: dict[tuple[str, str], list[tuple[RunRow, RunStore]]] = {}
    for store in stores:
        for row in store.runs:
            if row.ok:
                keyed.setdefault((row.model, row.format), []).append((row, store))
    out = []
    for (model, fmt), found in sorted(keyed.items()):
        rows = [r for r, _ in found]
        medians = [r.median_ms for r in rows]
        per_run = [r.process_medians_ms for r in rows]
        every = [m for ms in per_run for m in ms] or [m for m in medians if m is not None]
        grand = statistics.median(every) if every else None
        old = [_pooled_ci(store.samples, r.job_id) for r, store in found]
        known = [m for m in medians if m is not None]
        logs = [[math.log(v) for v in ms] for ms in per_run if len(ms) > 1]
        variances = [statistics.variance(ls) for ls in logs]
        pairs95, pairs99 = [], []
        for i, ri in enumerate(rows):
            for j, mj in enumerate(medians):
                if i != j:
                    pairs95.append(_inside(mj, ri.ci95_low_ms, ri.ci95_high_ms))
                    pairs99.append(_inside(mj, ri.ci99_low_ms, ri.ci99_high_ms))
        counts = Counter(f for r in rows for f in r.flag_list)
        out.append({
            "model": model, "format": fmt, "medians_ms": medians,
            "processes": [r.processes for r in rows],
            "process_stop": [r.process_stop or "" for r in rows],
            "wall_s": [r.wall_s for r in rows],
            "grand_median_ms": grand,
            "spread": max(known) / min(known) - 1.0 if len(known) > 1 else None,
            "process_sd": math.sqrt(statistics.mean(variances)) if variances else None,
            "covered": [_inside(grand, r.ci95_low_ms, r.ci95_high_ms) for r in rows],
            "covered_before": [_inside(grand, *ci) if ci else None for ci in old],
            "rerun95": _share(pairs95), "rerun99": _share(pairs99),
            "ci_method": rows[0].ci_method if rows else None,
            "flag_counts": dict(sorted(counts.items())),
        })  # fmt: skip
    return out


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 14's repeatability goals over all rows."""
    hit, total = _share([c for r in rows for c in r["covered"]])
    old_hit, old_total = _share([c for r in rows for c in r["covered_before"]])
    heavy = [r for r in rows if (r["grand_median_ms"] or 0) >= GOAL_SPREAD_MIN_MS]
    wide = [f"{r['model']} {r['format']}" for r in heavy if (r["spread"] or 0) > GOAL_SPREAD]
    throttled = sum(r["flag_counts"].get("THROTTLED", 0) for r in rows)
    return {
        "coverage": hit / total if total else None,
        "coverage_n": total,
        "coverage_first_method": old_hit / old_total if old_total else None,
        "coverage_ok": bool(total) and hit / total >= GOAL_COVERAGE,
        "spread_over_3pct": wide,
        "spread_ok": not wide,
        "throttled_rows": throttled,
    }


def _pct(pair: tuple[int, int]) -> str:
    hit, total = pair
    return f"{hit}/{total}" if total else "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--models", default=common.REPEAT_MODELS)
    p.add_argument("--formats", default="onnx,tflite")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    p.add_argument("--quick", action="store_true", help="measure each run with --quick")
    p.add_argument("--before", action="store_true", help="the method before issue 14")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--input-shape", default=None)
    p.add_argument("--from", dest="from_runs", nargs="+", metavar="RUN_ID", default=None,
                   help="read these runs instead of measuring")  # fmt: skip
    p.add_argument("--fast", action="store_true", help="tiny settings: smoke-test this script")
    p.add_argument(
        "--results-dir", type=Path, default=Path(os.environ.get("BENCH_RESULTS_DIR", "results"))
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    walls: list[float] = []
    if args.from_runs:
        stores = [RunStore.open(args.results_dir, rid) for rid in args.from_runs]
    else:
        request = common.run_request(args, quick=args.quick)
        request = common.before_request(request, args.before)
        request = common.fast_request(request, args.fast)
        stores = []
        for i in range(args.repeats):
            print(f"run {i + 1}/{args.repeats} ...", file=sys.stderr)
            t0 = time.perf_counter()
            stores.append(common.bench_run(request))
            walls.append(time.perf_counter() - t0)
    rows = collect(stores)
    summary = goals(rows)
    run_ids = [s.run_id for s in stores]
    if args.json:
        common.print_json({"run_ids": run_ids, "run_wall_s": walls, "rows": rows,
                           "goals": summary})  # fmt: skip
        return 0
    print(f"runs: {', '.join(run_ids)} (in {args.results_dir})")
    headers = ["model", "format", *(f"run{i + 1} ms" for i in range(len(stores))), "spread",
               "processes", "process sd", "covered", "covered (1st method)", "rerun in 95%",
               "rerun in 99%"]  # fmt: skip
    table = [
        [r["model"], r["format"], *r["medians_ms"],
         f"{r['spread']:.1%}" if r["spread"] is not None else "-",
         ",".join(str(n) for n in r["processes"]),
         f"{r['process_sd']:.1%}" if r["process_sd"] is not None else "-",
         _pct(_share(r["covered"])), _pct(_share(r["covered_before"])),
         _pct(r["rerun95"]), _pct(r["rerun99"])]
        for r in rows
    ]  # fmt: skip
    common.print_table(headers, table)
    print()
    print("flags raised (in how many of the runs):")
    for r in rows:
        flags = ", ".join(f"{k} x{v}" for k, v in r["flag_counts"].items()) or "none"
        print(f"  {r['model']} {r['format']}: {flags}")
    print()
    cov, old = summary["coverage"], summary["coverage_first_method"]
    print(
        f"coverage of the grand median by the 95 % intervals: "
        f"{f'{cov:.0%}' if cov is not None else '-'} of {summary['coverage_n']} rows "
        f"({'PASS' if summary['coverage_ok'] else 'FAIL'} at >= {GOAL_COVERAGE:.0%}); "
        f"the first method's interval: {f'{old:.0%}' if old is not None else '-'}"
    )
    print(
        f"spread <= {GOAL_SPREAD:.0%} for models >= {GOAL_SPREAD_MIN_MS:g} ms: "
        + ("PASS" if summary["spread_ok"] else "FAIL: " + ", ".join(summary["spread_over_3pct"]))
    )
    print(f"THROTTLED rows: {summary['throttled_rows']}")
    if walls:
        print("wall seconds per run: " + ", ".join(f"{w:.0f}" for w in walls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
