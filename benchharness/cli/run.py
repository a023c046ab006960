"""``bench run`` and ``bench results``: measure, then show a run's summary table."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from benchharness.cli import common
from benchharness.errors import UsageError

if TYPE_CHECKING:  # imported when the command runs: `bench --help` stays quick
    from benchharness.results.schema import RunRow


def _positive_seconds(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"{value} is not a number of seconds above 0")
    return value


@click.command("run")
@common.devices_option(
    "Profile name or path to a .toml; repeat for several devices at once.",
    default=("local",),
    show_default=True,
)
@click.option(
    "--models", default=None, help="all | a,b | module:function | path.onnx | path.tflite"
)
@common.formats_option
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads per runtime (default: the profile's, else all cores).",
)
@click.option("--affinity", default=None, help="taskset mask, e.g. f0 (default: the profile's).")
@click.option("--quick", is_flag=True, help="64 inferences and 5 s, one process (docs/method.md).")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Exactly this many fresh runner processes per model (default: 5 up to --max-processes, "
    "until the 95 %% interval of the median is within --target-ci; 1 with --quick).",
)
@click.option(
    "--max-processes",
    type=click.IntRange(min=1),
    default=None,
    help="Most runner processes a model gets (default 10).",
)
@click.option(
    "--target-ci",
    "target_ci",
    default=None,
    metavar="PCT",
    help="Stop a model's processes once its 95 %% interval is within PCT of the median "
    "(default 2%%).",
)
@click.option("--input-shape", default=None, help="e.g. 1x3x160x160 (overrides the zoo's).")
@click.option("--no-ops", is_flag=True, help="Skip the per-operator profiling pass.")
@click.option(
    "--resume", "resume", default=None, metavar="RUN_ID", help="Finish an interrupted run."
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=None,
    callback=lambda ctx, param, value: _positive_seconds(value),
    help="Seconds per runner process.",
)
@click.option("--min-time", "min_s", type=float, default=None, hidden=True)
@click.option("--min-runs", "min_n", type=int, default=None, hidden=True)
@click.option("--max-time", "max_s", type=float, default=None, hidden=True)
@click.option("--warmup-time", "warmup_min_s", type=float, default=None, hidden=True)
@click.option("--seed", type=int, default=None, help="Seed of the interleaving order.")
@common.variant_options
@click.option("--force", is_flag=True, help="Run models that fail `bench check` on the device.")
@common.scheduler_option("Run on a device farm: its Dask scheduler (see `bench worker`).")
@common.results_dir_option
@common.json_option
def run_cmd(**kw: Any) -> None:
    """Export, dispatch and time models on devices; write results/RUN_ID/*.csv."""
    from benchharness.api import RunRequest, run

    request = RunRequest(
        devices=tuple(kw["devices"]),
        models=kw["models"],
        formats=common.parse_formats(kw["formats"]),
        threads=kw["threads"],
        affinity=kw["affinity"],
        quick=kw["quick"],
        processes=kw["processes"],
        input_shape=kw["input_shape"],
        profile_ops=not kw["no_ops"],
        resume=kw["resume"],
        timeout_s=kw["timeout_s"],
        min_n=kw["min_n"],
        min_s=kw["min_s"],
        max_s=kw["max_s"],
        warmup_min_s=kw["warmup_min_s"],
        seed=kw["seed"],
        results_dir=kw["results_dir"],
        force=kw["force"],
        scheduler=kw["scheduler"],
        max_processes=kw["max_processes"],
        process_ci_rel=_target(kw["target_ci"]),
        **common.variants(kw),
    )
    from benchharness.cli.display import RichReporter

    with RichReporter(common.console) as reporter:
        store = run(request, reporter=reporter)
    show_results(store.runs, store.run_id, kw["as_json"], store.path)
    if not all(r.ok for r in store.runs):
        sys.exit(common.EXIT_FAILURE)


def _target(text: str | None) -> float | None:
    """``--target-ci``: a positive percentage of the median."""
    from benchharness.analysis.comparison import parse_threshold

    if not text:
        return None
    value = parse_threshold(text)
    if value <= 0:
        raise UsageError(f"--target-ci {text!r} must be above 0, e.g. 2%")
    return value


def summary_row(r: RunRow) -> dict[str, Any]:
    """The columns of a row that ``bench run --json`` and ``bench results --json`` print."""
    return {
        "device": r.device, "model": r.model, "format": r.format, "precision": r.precision,
        "runtime": r.runtime, "threads": r.threads, "status": r.status, "error": r.error,
        "n": r.n, "median_ms": r.median_ms, "p90_ms": r.p90_ms, "cold_ms": r.cold_ms,
        "macs": r.macs, "gmacs_per_s": r.gmacs_per_s, "flags": r.flags,
        "max_abs_err": r.max_abs_err, "processes": r.processes, "ci95_low_ms": r.ci95_low_ms,
        "ci95_high_ms": r.ci95_high_ms, "process_stop": r.process_stop,
    }  # fmt: skip


def show_results(runs: Sequence[RunRow], run_id: str, as_json: bool, path: Path) -> None:
    rows = sorted(runs, key=lambda r: (r.device, r.model, r.format))
    if as_json:
        common.print_json(
            {"run_id": run_id, "path": str(path), "rows": [summary_row(r) for r in rows]}
        )
        return
    table = Table(title=f"Run {run_id}  ({path})")
    for col in ("device", "model", "format", "median ms", "p90 ms", "GMACs", "GMAC/s", "status"):
        table.add_column(
            col, justify="left" if col in ("device", "model", "format", "status") else "right"
        )
    for r in rows:
        mark = " [yellow]![/yellow]" if r.flags else ""
        table.add_row(
            common.text(r.device),
            common.text(r.model),
            common.text(r.format),
            common.fmt(r.median_ms) + mark,
            common.fmt(r.p90_ms),
            common.fmt(r.macs / 1e9 if r.macs is not None else None),
            common.fmt(r.gmacs_per_s, 2),
            "ok" if r.ok else f"[red]{common.text(r.status)}: {common.text(r.error)}[/red]",
        )
    common.console.print(table)
    _print_flags([r for r in rows if r.flags])


def _print_flags(flagged: Sequence[RunRow]) -> None:
    """The flags raised, row by row, and what to do about each."""
    if not flagged:
        return
    from benchharness.analysis.stats import FLAG_ADVICE

    common.console.print("[yellow]! shaky numbers: these measurements raised flags[/yellow]")
    seen: set[str] = set()
    for r in flagged:
        where = common.text(f"{r.device} {r.model} {r.format}")
        common.console.print(f"  {where}: {common.text(r.flags.replace(';', ', '))}")
        seen.update(r.flag_list)
    for flag in sorted(seen):
        common.console.print(f"  [bold]{flag}[/bold]: {FLAG_ADVICE.get(flag, '')}")


@click.command("results")
@click.argument("run_id", required=False)
@common.results_dir_option
@common.json_option
def results_cmd(run_id: str | None, results_dir: Path, as_json: bool) -> None:
    """Summary table of a run (the newest when RUN_ID is left out)."""
    from benchharness.results.store import RunStore, list_runs

    if run_id is None:
        runs = list_runs(results_dir)
        if not runs:
            raise UsageError(f"no runs in {results_dir}; start one with `bench run`")
        run_id = runs[-1]
    store = RunStore.open(results_dir, run_id)
    show_results(store.runs, store.run_id, as_json, store.path)
