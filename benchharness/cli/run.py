"""``bench run`` and ``bench results``: measure, then show a run's summary table and what its flags
mean (one diagnosis per cause; every row's flags with ``--flags``)."""

from __future__ import annotations

import math
import os
import shlex
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from benchharness.cli import common, farm
from benchharness.errors import UsageError
from benchharness.ondevice.protocol import WARMUP_CALIBRATED, WARMUP_FULL  # stdlib only: quick

if TYPE_CHECKING:  # imported when the command runs: `bench --help` stays quick
    from benchharness.api import RunRequest
    from benchharness.results.schema import RunRow


#: Rows a diagnosis names when it explains only some: more are a list nobody reads, and
#: ``--flags`` has them all.
WHERE_MAX = 3
#: Indent of the lines under a heading (a diagnosis's evidence and advice, a row's flags).
DIAGNOSIS_INDENT = 2


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
@click.option(
    "--warmup",
    type=click.Choice([WARMUP_CALIBRATED, WARMUP_FULL]),
    default=WARMUP_CALIBRATED,
    show_default=True,
    help="calibrated: a model's first process finds when its latency settles and its later "
    "processes warm up that long, with a margin and a check; full: the whole warm-up rule "
    "(>= 1 s, windows until stable) in every process (docs/method.md).",
)
@click.option("--seed", type=int, default=None, help="Seed of the interleaving order.")
@common.variant_options
@click.option("--force", is_flag=True, help="Run models that fail `bench check` on the device.")
@common.keep_weights_option
@common.export_jobs_option("; one on a farm run")
@common.scheduler_option("Run on a device farm: its Dask scheduler (see `bench worker`).")
@farm.security_options
@common.results_dir_option
@common.json_option
def run_cmd(**kw: Any) -> None:
    """Export, dispatch and time models on devices; write results/RUN_ID/*.csv."""
    from benchharness.api import run
    from benchharness.cli.display import reporter_for

    request = _request(kw)
    with reporter_for(common.console) as reporter:
        security = farm.security_from(kw) if request.scheduler else None
        store = run(request, reporter=reporter, security=security)
    show_results(store.runs, store.run_id, kw["as_json"], store.path)
    if not all(r.ok for r in store.runs):
        sys.exit(common.EXIT_FAILURE)


def _request(kw: dict[str, Any]) -> RunRequest:
    """The request ``bench run``'s options describe."""
    from benchharness.api import RunRequest
    from benchharness.plan.options import DEFAULT_JOB_TIMEOUT_S, Method, RunOptions

    formats = common.parse_formats(kw["formats"])
    method = Method(
        quick=kw["quick"],
        min_n=kw["min_n"],
        min_s=kw["min_s"],
        max_s=kw["max_s"],
        warmup_min_s=kw["warmup_min_s"],
        warmup=kw["warmup"],
    )
    options = RunOptions(
        method=method,
        threads=kw["threads"],
        affinity=kw["affinity"],
        processes=kw["processes"],
        profile_ops=not kw["no_ops"],
        timeout_s=DEFAULT_JOB_TIMEOUT_S if kw["timeout_s"] is None else kw["timeout_s"],
        seed=kw["seed"],
        max_processes=kw["max_processes"],
        process_ci_rel=_target(kw["target_ci"]),
    )
    variants = common.variants(kw)
    return RunRequest(
        devices=tuple(kw["devices"]),
        models=kw["models"],
        formats=formats,
        options=options,
        input_shape=kw["input_shape"],
        resume=kw["resume"],
        results_dir=kw["results_dir"],
        precisions=variants["precisions"],
        calibration=variants["calibration"],
        resolutions=variants["resolutions"],
        widths=variants["widths"],
        force=kw["force"],
        scheduler=kw["scheduler"],
        keep_weights=kw["keep_weights"],
        export_jobs=kw["export_jobs"],
    )


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


def show_results(
    runs: Sequence[RunRow],
    run_id: str,
    as_json: bool,
    path: Path,
    *,
    flags: bool = False,
    out: Console | None = None,
) -> None:
    """A run's summary: its table, its failures, then one diagnosis per cause of its flags (or,
    with ``flags``, every row's flags and what each means)."""
    out = out or common.console
    rows = sorted(runs, key=lambda r: (r.device, r.model, r.format))
    if as_json:
        common.print_json(
            {"run_id": run_id, "path": str(path), "rows": [summary_row(r) for r in rows]}
        )
        return
    common.print_table(_table(rows, run_id, path), out)
    _print_errors(rows, out)
    _print_modes(rows, out)
    if flags:
        _print_flags([r for r in rows if r.flags], out)
    else:
        _print_diagnoses(rows, _flags_command(run_id, path), out)


def _table(rows: Sequence[RunRow], run_id: str, path: Path) -> Table:
    """The summary table: a median beside its interval and the processes it stands on."""
    from benchharness.cli.rowtext import fmt_interval, fmt_processes

    # one precision (the default) needs no column; a sweep or a compressed run does
    show_precision = bool({r.precision for r in rows} - {"fp32", ""})
    table = Table(title=common.text(f"Run {run_id}  ({path})"), caption=_caption(rows))
    columns = ["device", "model", "format", *(["precision"] if show_precision else [])]
    numbers = ["median ms", "±", "p90 ms", "processes", "GMACs", "GMAC/s"]
    for col in (*columns, *numbers, "status"):
        table.add_column(col, justify="right" if col in numbers else "left")
    for r in rows:
        table.add_row(
            common.text(r.device),
            common.text(r.model),
            common.text(r.format),
            *([common.text(r.precision)] if show_precision else []),
            common.fmt(r.median_ms),
            fmt_interval(r),
            common.fmt(r.p90_ms),
            fmt_processes(r),
            common.fmt(r.macs / 1e9 if r.macs is not None else None),
            common.fmt(r.gmacs_per_s, 2),
            "ok" if r.ok else f"[red]{common.text(r.status)}[/red]",
        )
    return table


def _caption(rows: Sequence[RunRow]) -> str | None:
    """What the table's marks mean, for the marks it has."""
    from benchharness.cli.rowtext import STOP_CAP, interval_pct

    notes = []
    if any(interval_pct(r) is not None for r in rows):
        notes.append(
            "±: half the 95 % interval of the median, as a share of it (99 % where a row has no "
            "95 % one)"
        )
    if any(r.process_stop == STOP_CAP for r in rows):
        notes.append("(max): --max-processes ended the model before --target-ci")
    return "; ".join(notes) or None


def _print_errors(rows: Sequence[RunRow], out: Console) -> None:
    """Why each row is not ok, in full: under the table, where a long message does not widen
    every row of it."""
    for r in rows:
        if not r.ok and r.error:
            where = f"{r.device} {r.model} {r.format}"
            out.print(f"{where}: {r.status}: {r.error}", style="red", markup=False, soft_wrap=True)


def _print_modes(rows: Sequence[RunRow], out: Console) -> None:
    """Each multimodal row's modes: its median alone stands between levels no process ran at."""
    from benchharness.cli.rowtext import fmt_modes

    for r in rows:
        if line := fmt_modes(r):
            out.print(f"{r.device} {r.model} {r.format}: {line}", markup=False, soft_wrap=True)


def _flags_command(run_id: str, path: Path) -> str:
    """The ``bench results`` command that lists the run's flags row by row."""
    command = f"bench results {run_id} --flags"
    default = Path(os.environ.get("BENCH_RESULTS_DIR", "results"))
    if path.parent.resolve() != default.resolve():
        command += f" --results-dir {shlex.quote(str(path.parent))}"
    return command


def _print_diagnoses(rows: Sequence[RunRow], flags_command: str, out: Console) -> None:
    """One block per cause of the run's flags: what it is, how many rows, the evidence the run
    recorded, and what to do."""
    from benchharness.analysis.diagnosis import diagnose

    diagnoses = diagnose(rows)
    for d in diagnoses:
        out.print(
            f"[yellow]! {common.text(d.cause)}[/yellow]: {d.rows} of {d.of} row{_s(d.of)} "
            f"[dim]({common.text(', '.join(d.flags))})[/dim]",
            soft_wrap=True,  # a heading stays one line
        )
        lines = [_sentence(d.evidence), d.advice]
        if d.rows < d.of and len(d.where) <= WHERE_MAX:
            lines.append("rows: " + ", ".join(d.where))
        for line in lines:
            _print_indented(line, out)
    if diagnoses:
        # one line however long: the command is copied whole
        out.print(f"Flags row by row: {flags_command}", markup=False, soft_wrap=True)


def _print_indented(line: str, out: Console) -> None:
    """A line under a heading, wrapped at the console's width with the indent kept (and no
    blanks padded after it: a log stays clean)."""
    indent = " " * DIAGNOSIS_INDENT
    wrapped = textwrap.fill(
        line, width=out.width, initial_indent=indent, subsequent_indent=indent,
        break_long_words=False, break_on_hyphens=False,  # keeps --options and names whole
    )  # fmt: skip
    out.print(wrapped, markup=False, highlight=False, soft_wrap=True)


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _sentence(text: str) -> str:
    """Evidence as a sentence: capitalised, with its full stop."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _print_flags(flagged: Sequence[RunRow], out: Console) -> None:
    """The flags raised, row by row, and what to do about each."""
    if not flagged:
        out.print("no flags raised")
        return
    from benchharness.stats.summary import FLAG_ADVICE

    out.print("[yellow]! shaky numbers: these measurements raised flags[/yellow]")
    seen: set[str] = set()
    for r in flagged:
        _print_indented(f"{r.device} {r.model} {r.format}: {', '.join(r.flag_list)}", out)
        seen.update(r.flag_list)
    for flag in sorted(seen):
        _print_indented(f"{flag}: {FLAG_ADVICE.get(flag, '')}", out)


@click.command("results")
@click.argument("run_id", required=False)
@common.results_dir_option
@click.option(
    "--flags",
    "show_flags",
    is_flag=True,
    help="List every row's flags and what each means, instead of one diagnosis per cause.",
)
@common.json_option
def results_cmd(run_id: str | None, results_dir: Path, show_flags: bool, as_json: bool) -> None:
    """Summary table of a run (the newest when RUN_ID is left out) and what its flags mean."""
    from benchharness.results.store import RunStore, list_runs

    if run_id is None:
        runs = list_runs(results_dir)
        if not runs:
            raise UsageError(f"no runs in {results_dir}; start one with `bench run`")
        run_id = runs[-1]
    store = RunStore.open(results_dir, run_id)
    show_results(store.runs, store.run_id, as_json, store.path, flags=show_flags)
