"""``bench check --run RUN_ID``: a run's measured peaks and its estimates against a device."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from benchharness.cli.common import EXIT_FAILURE, console, print_json, print_table, text


def _verdict(fits: bool | None) -> str:
    if fits is None:
        return "-"
    return "[green]yes[/green]" if fits else "[red]no[/red]"


def check_run_cmd(
    devices: Sequence[str], run_id: str, models: str | None, results_dir: Path, as_json: bool
) -> None:
    """Judge every measured row of ``run_id`` against each device; exit 1 if any fails."""
    from benchharness.analysis.memory_fit import check_run
    from benchharness.plan.fit import fmt_bytes
    from benchharness.profiles.device_profile import load_profile
    from benchharness.results.store import RunStore

    store = RunStore.open(results_dir, run_id)
    rows = store.runs
    if models and models != "all":
        wanted = {m.strip() for m in models.split(",") if m.strip()}
        rows = [r for r in rows if r.model in wanted]
    results = [fit for d in devices for fit in check_run(load_profile(d), rows)]
    if as_json:
        print_json([r.to_json() for r in results])
    else:
        for device in dict.fromkeys(r.device for r in results):
            mine = [r for r in results if r.device == device]
            budget = fmt_bytes(mine[0].budget_bytes) if mine[0].budget_bytes else "none set"
            title = f"Run {store.run_id} against {device} (memory budget {budget})"
            table = Table(title=text(title))
            cols = ("model", "format", "runtime", "estimate", "peak", "source", "fits est.",
                    "fits meas.", "failed")  # fmt: skip
            for col in cols:
                table.add_column(col, justify="right" if col in ("estimate", "peak") else "left")
            for r in mine:
                table.add_row(
                    text(r.model), text(r.format), text(r.runtime), fmt_bytes(r.estimate_bytes),
                    fmt_bytes(r.peak_bytes), text(r.source or "-"), _verdict(r.estimate_fits),
                    _verdict(r.measured_fits), text(r.failed),
                )  # fmt: skip
            print_table(table)
        if not results:
            console.print(text(f"run {store.run_id} has no measured rows to judge"))
        for r in results:
            for reason in r.reasons():
                console.print(
                    f"[red]{text(r.model)}[/red] {text(f'{r.format} on {r.device}: {reason}')}"
                )
        elsewhere = sorted({r.measured_on for r in results if r.measured_on != r.device})
        if elsewhere:
            console.print(text(
                f"note: measured on {', '.join(elsewhere)}, judged against another device's "
                "limits: the peak includes that machine's runtime, not the target's"
            ))  # fmt: skip
        if any(r.peak_bytes is None for r in results):
            console.print(text("note: rows without a measured peak (an older run, or a tool that "
                               "prints none) are judged on the estimate alone"))  # fmt: skip
    if not all(r.fits for r in results):
        sys.exit(EXIT_FAILURE)
