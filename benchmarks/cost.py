"""What a measurement costs: wall seconds per model for the default method against ``--quick``.

``runs.csv`` holds ``wall_s`` per row: the seconds its runner processes took on the device (load,
warm-up, timing, the operator pass), summed over processes; exports and cooldowns are not in
it. This script runs ``bench run --device local`` once with the default method and once with
``--quick`` on the same models (or reads runs made before, ``--from RUN_ID ...``, sorted by the
preset in their run.json) and prints, per model and format, both wall times, their ratio, the
inference counts and how far the quick median lies from the default one.

Issue 14's goal is the whole zoo with the default method in at most 8 minutes of runner time
(the sum of ``wall_s``, cold exports excluded); ``--before`` measures the method the issue
started from (3 processes of >= 10 s), ``--default-only`` skips the ``--quick`` run.

Run from the repository root on a quiet machine::

    .venv/bin/python benchmarks/cost.py --models all --default-only      # the zoo goal, ~8 min
    .venv/bin/python benchmarks/cost.py                                  # ~3-4 min
    .venv/bin/python benchmarks/cost.py --from RUN_DEFAULT RUN_QUICK     # from earlier runs
    .venv/bin/python benchmarks/cost.py --fast --formats onnx \\
        --models tests.support.tiny:tiny_cnn                             # smoke, ~20 s
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import common

from benchharness.api import RunRequest
from benchharness.results.store import RunStore

median_of = common.median

PRESETS = ("default", "quick")
#: Issue 14: the whole zoo with the default method in at most 8 minutes of runner time.
GOAL_ZOO_S = 8 * 60.0


def _preset(store: RunStore) -> str:
    method = store.meta.get("method") or {}
    if method.get("preset"):
        return str(method["preset"])
    asked = RunRequest.from_json(store.meta.get("request") or {}, RunRequest())
    return "quick" if asked.options.method.quick else "default"


def by_preset(stores: list[RunStore]) -> dict[str, list[RunStore]]:
    found: dict[str, list[RunStore]] = {p: [] for p in PRESETS}
    for store in stores:
        found.setdefault(_preset(store), []).append(store)
    return found


def collect(groups: dict[str, list[RunStore]]) -> list[dict[str, Any]]:
    """Per model/format and preset: median wall_s, n, processes and median_ms over the runs."""
    cells: dict[tuple[str, str], dict[str, dict[str, list[float | None]]]] = {}
    for preset, stores in groups.items():
        for store in stores:
            for run_row in store.runs:
                if not run_row.ok:
                    continue
                per = cells.setdefault((run_row.model, run_row.format), {})
                lists = per.setdefault(preset, {"wall_s": [], "n": [], "median_ms": [],
                                                "processes": []})  # fmt: skip
                values = {"wall_s": run_row.wall_s, "n": run_row.n,
                          "median_ms": run_row.median_ms,
                          "processes": run_row.processes}  # fmt: skip
                for col, value in values.items():
                    lists[col].append(common.num(value))
    rows = []
    for (model, fmt), per in sorted(cells.items()):
        row: dict[str, Any] = {"model": model, "format": fmt}
        for preset in PRESETS:
            lists = per.get(preset, {})
            for col in ("wall_s", "n", "median_ms", "processes"):
                row[f"{preset}_{col}"] = common.median(lists.get(col, []))
        d, q = row["default_wall_s"], row["quick_wall_s"]
        row["wall_ratio"] = d / q if d and q else None
        dm, qm = row["default_median_ms"], row["quick_median_ms"]
        row["quick_median_off"] = qm / dm - 1.0 if dm and qm else None
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--models", default=common.RUN_MODELS)
    p.add_argument("--formats", default="onnx,tflite")
    p.add_argument("--input-shape", default=None, help="e.g. 1x3x160x160 (default: the zoo's)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--from", dest="from_runs", nargs="+", metavar="RUN_ID", default=None,
                   help="read these runs (default and --quick) instead")  # fmt: skip
    p.add_argument("--before", action="store_true", help="the method before issue 14")
    p.add_argument("--default-only", action="store_true", help="skip the --quick run")
    p.add_argument("--fast", action="store_true", help="tiny settings: smoke-test this script")
    p.add_argument(
        "--results-dir", type=Path, default=Path(os.environ.get("BENCH_RESULTS_DIR", "results"))
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.from_runs:
        stores = [RunStore.open(args.results_dir, rid) for rid in args.from_runs]
    else:
        request = common.run_request(args)
        stores = []
        for quick in (False,) if args.default_only else (False, True):
            print(f"run {'--quick' if quick else 'default method'} ...", file=sys.stderr)
            req = common.with_method(request, quick=quick)
            if not quick:
                req = common.before_request(req, args.before)
            if args.fast:  # smoke only: short processes, two of them
                req = common.with_method(req, min_s=0.1, max_s=1.0, warmup_min_s=0.1)
                req = common.with_options(req, profile_ops=False, max_processes=2)
            stores.append(common.bench_run(req))
    groups = by_preset(stores)
    rows = collect(groups)
    if args.json:
        runs = {k: [s.run_id for s in v] for k, v in groups.items()}
        common.print_json({"runs": runs, "rows": rows})
        return 0
    for preset in PRESETS:
        print(f"{preset}: {', '.join(s.run_id for s in groups.get(preset, [])) or '(none)'}")
    headers = ("model", "format", "default s", "quick s", "default/quick", "default n",
               "quick n", "quick median off")  # fmt: skip
    table = [
        (r["model"], r["format"], r["default_wall_s"], r["quick_wall_s"],
         f"{r['wall_ratio']:.1f}x" if r["wall_ratio"] else "-", r["default_n"], r["quick_n"],
         f"{r['quick_median_off']:+.1%}" if r["quick_median_off"] is not None else "-")
        for r in rows
    ]  # fmt: skip
    common.print_table(headers, table)
    total = {pr: sum(r[f"{pr}_wall_s"] or 0.0 for r in rows) for pr in PRESETS}
    print(f"total wall seconds: default {total['default']:.0f}, quick {total['quick']:.0f}")
    procs = [r["default_processes"] for r in rows if r["default_processes"]]
    if procs:
        print(f"default processes per row: median {median_of(procs):g}, {min(procs):g}-"
              f"{max(procs):g}")  # fmt: skip
    print(
        f"default runner time {total['default'] / 60:.1f} min over {len(rows)} rows "
        f"(goal for the whole zoo: <= {GOAL_ZOO_S / 60:.0f} min"
        + (": PASS)" if total["default"] <= GOAL_ZOO_S else ": FAIL)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
