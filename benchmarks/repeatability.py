"""Repeatability: the same ``bench run`` several times back to back; how far apart are the medians?

Runs ``bench run --device local --models resnet18,mobilenet_v2`` (the default method: 3 processes,
adaptive stop) ``--repeats`` times through the library into one results folder and prints, per
model and format, the median of every run, the spread max/min - 1, and the flags each run raised.
Issue 5 asks for run-to-run medians that agree within a few per cent on a quiet machine; the
spread column is that number. Each run's wall time is printed too (the cost of the default
method; ``benchmarks/cost.py`` sets it against ``--quick``).

Run from the repository root on a quiet machine::

    .venv/bin/python benchmarks/repeatability.py                       # 5 runs, ~15-25 min
    .venv/bin/python benchmarks/repeatability.py --repeats 2 --fast \\
        --models tests.support.tiny:tiny_cnn --input-shape 1x3x32x32   # smoke, ~20 s
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common

#: Issue 5: five runs back to back are enough to see the spread a user will meet.
DEFAULT_REPEATS = 5


def collect(stores: list[Any]) -> list[dict[str, Any]]:
    """Per model/format: the median, flags and wall seconds of every run."""
    keyed: dict[tuple[str, str], dict[str, Any]] = {}
    for i, store in enumerate(stores):
        for row in store.runs:
            entry = keyed.setdefault(
                (row["model"], row["format"]),
                {"model": row["model"], "format": row["format"], "medians_ms": [None] * len(stores),
                 "flags": [""] * len(stores), "wall_s": [None] * len(stores)},
            )  # fmt: skip
            entry["medians_ms"][i] = common.num(row.get("median_ms"))
            entry["flags"][i] = str(row.get("flags") or "")
            entry["wall_s"][i] = common.num(row.get("wall_s"))
    rows = []
    for entry in keyed.values():
        medians = [m for m in entry["medians_ms"] if m is not None]
        lo, hi = (min(medians), max(medians)) if medians else (None, None)
        entry["min_ms"], entry["max_ms"] = lo, hi
        entry["spread"] = hi / lo - 1.0 if lo and hi else None
        counts = Counter(f for flags in entry["flags"] for f in flags.split(";") if f)
        entry["flag_counts"] = dict(sorted(counts.items()))
        rows.append(entry)
    return sorted(rows, key=lambda r: (r["model"], r["format"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--models", default=common.RUN_MODELS)
    p.add_argument("--formats", default="onnx,tflite")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    p.add_argument("--quick", action="store_true", help="measure each run with --quick")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--input-shape", default=None)
    p.add_argument("--fast", action="store_true", help="tiny settings: smoke-test this script")
    p.add_argument(
        "--results-dir", type=Path, default=Path(os.environ.get("BENCH_RESULTS_DIR", "results"))
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    request = common.run_request(args, quick=args.quick)
    request = common.fast_request(request, args.fast)
    stores = []
    walls = []
    for i in range(args.repeats):
        print(f"run {i + 1}/{args.repeats} ...", file=sys.stderr)
        t0 = time.perf_counter()
        stores.append(common.bench_run(request))
        walls.append(time.perf_counter() - t0)
    rows = collect(stores)
    run_ids = [s.run_id for s in stores]
    if args.json:
        common.print_json({"run_ids": run_ids, "run_wall_s": walls, "rows": rows})
        return 0
    print(f"runs: {', '.join(run_ids)} (in {args.results_dir})")
    headers = ["model", "format", *(f"run{i + 1} ms" for i in range(len(stores))), "min ms",
               "max ms", "spread"]  # fmt: skip
    table = [
        [r["model"], r["format"], *r["medians_ms"], r["min_ms"], r["max_ms"],
         f"{r['spread']:.1%}" if r["spread"] is not None else "-"]
        for r in rows
    ]  # fmt: skip
    common.print_table(headers, table)
    print()
    print("flags raised (in how many of the runs):")
    for r in rows:
        flags = ", ".join(f"{k} x{v}" for k, v in r["flag_counts"].items()) or "none"
        print(f"  {r['model']} {r['format']}: {flags}")
    print()
    print("wall seconds per run: " + ", ".join(f"{w:.0f}" for w in walls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
