"""The measured-memory table of a run, as docs/local-run.md shows it (issue 15's closing figures).

Run from the repository root after a whole-zoo run on a quiet machine::

    .venv/bin/bench run --device local --models all              # prints RUN_ID
    .venv/bin/python benchmarks/memory_table.py RUN_ID [--budget-device csk6] [--json]

Per model and format: the static estimate (weights + peak activations), the measured init and
peak with how they were read and how much of the peak is the runtime's own code paged in, and
whether the model fits the budget device's memory by the estimate, by the measured peak, and by
the peak without that code (``bench check --device csk6 --run RUN_ID`` judges the first two,
limit by limit). Then, per runtime, what importing it cost, the median peak over the estimate and
the counts. Markdown on stdout, to paste into the docs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import common

from benchharness.analysis.memory_fit import check_run, memory_budget
from benchharness.profiles.device_profile import load_profile
from benchharness.results.store import RunStore

MIB = 1 << 20
#: The device whose memory the closing figures judge: the CSK6 board, 8 MiB in all.
DEFAULT_BUDGET_DEVICE = "csk6"


def _mib(value: Any) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def table(store: RunStore, budget_device: str) -> dict[str, Any]:
    profile = load_profile(budget_device)
    budget = memory_budget(profile)
    fits = {(f.model, f.format): f for f in check_run(profile, store.runs)}
    rows = [r for r in store.runs if (r.model, r.format) in fits]
    rows.sort(key=lambda r: (r.mem_estimate_bytes or 0, r.model, r.format))
    out_rows: list[dict[str, Any]] = []
    for r in rows:
        fit = fits[(r.model, r.format)]
        peak, code = r.mem_peak_bytes, r.mem_code_bytes
        data = peak - code if peak is not None and code is not None else None
        out_rows.append({
            "model": r.model, "format": r.format, "runtime": r.runtime,
            "estimate": r.mem_estimate_bytes, "init": r.mem_init_bytes,
            "peak": peak, "code": code, "source": r.mem_source,
            "runtime_load": r.mem_runtime_load_bytes,
            "fits_estimate": fit.estimate_fits, "fits_measured": fit.measured_fits,
            "fits_without_code": None if data is None or budget is None else data <= budget,
        })  # fmt: skip
    runtimes = {}
    for runtime in sorted({str(r["runtime"]) for r in out_rows}):
        mine = [r for r in out_rows if str(r["runtime"]) == runtime]
        loads = [r["runtime_load"] for r in mine if r["runtime_load"]]
        ratios = [r["peak"] / r["estimate"] for r in mine if r["peak"] and r["estimate"]]
        runtimes[runtime] = {
            "models": len(mine),
            "runtime_load_median": statistics.median(loads) if loads else None,
            "peak_over_estimate_median": statistics.median(ratios) if ratios else None,
            **{key: sum(1 for r in mine if r[key])
               for key in ("fits_estimate", "fits_measured", "fits_without_code")},
        }  # fmt: skip
    return {"run_id": store.run_id, "budget_device": budget_device, "budget_bytes": budget,
            "rows": out_rows, "runtimes": runtimes}  # fmt: skip


def markdown(data: dict[str, Any]) -> str:
    dev = data["budget_device"]
    head = ["model", "format", "estimate MiB", "init MiB", "peak MiB", "peak / estimate",
            "read as", "of it code MiB", f"fits {dev}: estimate", f"fits {dev}: peak",
            f"fits {dev}: peak - code"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for r in data["rows"]:
        ratio = f"{r['peak'] / r['estimate']:.2f}" if r["peak"] and r["estimate"] else "-"
        cells = [r["model"], r["format"], _mib(r["estimate"]), _mib(r["init"]), _mib(r["peak"]),
                 ratio, r["source"] or "-", _mib(r["code"]), _yes(r["fits_estimate"]),
                 _yes(r["fits_measured"]), _yes(r["fits_without_code"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Budget: {dev} = {_mib(data['budget_bytes'])} MiB (weights and activations in "
                 "one memory); peak: above the process with its runtime imported.")  # fmt: skip
    for runtime, s in data["runtimes"].items():
        ratio = s["peak_over_estimate_median"]
        lines.append(
            f"- {runtime}: importing it added {_mib(s['runtime_load_median'])} MiB (median); "
            f"peak / estimate median {'-' if ratio is None else f'{ratio:.2f}'}; of "
            f"{s['models']} models, {s['fits_estimate']} fit {dev} by the estimate, "
            f"{s['fits_measured']} by the measured peak, {s['fits_without_code']} by the peak "
            "without the runtime's code"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("run_id")
    p.add_argument("--results-dir", type=Path,
                   default=Path(os.environ.get("BENCH_RESULTS_DIR", "results")))  # fmt: skip
    p.add_argument("--budget-device", default=DEFAULT_BUDGET_DEVICE)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    data = table(RunStore.open(args.results_dir, args.run_id), args.budget_device)
    if args.json:
        common.print_json(data)
    else:
        print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
