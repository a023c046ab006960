"""``bench history`` and ``bench gate``: every run as series over time, and the CI gate on them.

Both read the results folder through its history index (``history/index.py``); the series, their
change points and the gate's decision come from ``benchharness.history``; here they are only
asked for and shown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich import box
from rich.measure import Measurement
from rich.table import Table

from benchharness.cli import common

if TYPE_CHECKING:  # the history package (numpy, scipy) is imported when a command runs
    from benchharness.history.timeline import History, SeriesHistory

#: Shown in a table's "date" column: the ISO date and time to the minute.
DATE_CHARS = 16


def _filters(func: Any) -> Any:
    """--device, --model, --format: which series to take (exact names; all when left out)."""
    for option in reversed((
        click.option("--device", default=None, help="Only this device's series."),
        click.option("--model", default=None, help="Only this model's series."),
        click.option("--format", "fmt", default=None, help="Only this format's series."),
    )):  # fmt: skip
        func = option(func)
    return func


def _load(results_dir: Path, device: str | None, model: str | None, fmt: str | None) -> History:
    from benchharness.history.timeline import load_history

    history = load_history(results_dir, device=device, model=model, format=fmt)
    for warning in history.warnings:
        # stderr: --json keeps stdout parseable, and CI logs show the skipped runs
        click.echo(f"warning: {warning}", err=True)
    return history


def _print_json(data: dict[str, Any]) -> None:
    """JSON as ``common.print_json`` prints it, without its highlighting: a history of thousands
    of runs is megabytes, which rich takes seconds to colour."""
    common.console.file.write(json.dumps(data, indent=2, default=str) + "\n")
    common.console.file.flush()


def _date(text: str) -> str:
    return text[:DATE_CHARS].replace("T", " ") if text else "-"


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f"[{low:.4g}, {high:.4g}]"


def _step_cell(ratio: float, low: float, high: float) -> str:
    style = "red" if ratio > 1 else "green"
    return f"[{style}]x{ratio:.3f}[/{style}] " + common.text(f"[{low:.3f}, {high:.3f}]")


def _series_table(series: SeriesHistory) -> Table:
    changes = {c.index: c for c in series.changes}
    table = Table(
        title=common.text(
            f"{series.key.label}: {len(series.points)} runs, {len(series.changes)} change points"
        ),
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for col in ("#", "run", "date", "median ms [interval]", "proc", "flags", "changed", "step"):
        table.add_column(
            common.text(col),
            justify="right" if col in ("#", "median ms [interval]", "proc") else "left",
            # a run id is copied to look it up: never cut; numbers fold rather than lose digits
            no_wrap=col in ("run", "date"),
            overflow="fold",
        )
    for i, p in enumerate(series.points):
        change = changes.get(i)
        table.add_row(
            str(i),
            common.text(p.run_id),
            _date(p.date),
            common.text(f"{p.median_ms:.4g} {_interval(p.ci_low_ms, p.ci_high_ms)}"),
            common.fmt(p.processes, 0),
            common.text(", ".join(p.flags)),
            common.text(", ".join(series.changed_fields(i))),
            _step_cell(change.step.ratio, change.step.low, change.step.high) if change else "",
        )
    return table


#: Widest a series table is printed (characters), whatever its cells: a bound, not a target.
MAX_TABLE_WIDTH = 400


def _natural_width(table: Table) -> int:
    """The width a table takes when nothing has to fold."""
    options = common.console.options.update_width(MAX_TABLE_WIDTH)
    return Measurement.get(common.console, options, table).maximum


def _print_wide(table: Table) -> None:
    """Print at the table's natural width: a narrow terminal (80 columns in a CI log) wraps
    long lines, where rich would fold every cell of a table fitted to it."""
    console = common.console
    saved = console.width
    console.width = max(saved, _natural_width(table))
    try:
        console.print(table)
    finally:
        console.width = saved


def _print_changes(series: SeriesHistory) -> None:
    for c in series.changes:
        common.console.print(
            common.text(
                f"  change at run {c.point.run_id} ({_date(c.point.date)}): "
                f"x{c.step.ratio:.3f} [{c.step.low:.3f}, {c.step.high:.3f}], "
                f"p = {c.step.p_value:.2g}; likely cause: {c.cause_text()}"
            )
        )


@click.command("history")
@_filters
@common.results_dir_option
@common.json_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="PATH",
    help="Also write the history page (one self-contained HTML file) to PATH.",
)
def history_cmd(
    device: str | None,
    model: str | None,
    fmt: str | None,
    results_dir: Path,
    as_json: bool,
    html_path: Path | None,
) -> None:
    """Every run as series over time: medians, intervals, change points and their causes."""
    history = _load(results_dir, device, model, fmt)
    if html_path is not None:
        from benchharness.history.page import write_page

        write_page(history, html_path)
    if as_json:
        data = history.as_dict()
        if html_path is not None:
            data["html"] = str(html_path)
        _print_json(data)
        return
    for series in history.series:
        _print_wide(_series_table(series))
        _print_changes(series)
    if html_path is not None:
        common.console.print(f"history page: {common.text(html_path)}")


@click.command("gate")
@_filters
@click.option(
    "--threshold",
    default="5%",
    show_default=True,
    metavar="PCT",
    help="Fail when the newest run of a series is slower than the stable level before it by at "
    "least PCT (and significantly so).",
)
@common.results_dir_option
@common.json_option
def gate_cmd(
    device: str | None,
    model: str | None,
    fmt: str | None,
    threshold: str,
    results_dir: Path,
    as_json: bool,
) -> None:
    """CI gate: exit 1 when the newest run of a series opens a regression (see bench history)."""
    from benchharness.analysis.comparison import parse_threshold
    from benchharness.history.gate import decide

    limit = parse_threshold(threshold)
    decision = decide(_load(results_dir, device, model, fmt).series, limit)
    if as_json:
        _print_json(decision.as_dict())
    else:
        table = Table(title=f"bench gate: newest run against the stable level, {threshold}")
        for col in ("series", "newest run", "ratio [95% CI]", "p", "verdict"):
            table.add_column(col, justify="left" if col in ("series", "newest run") else "right")
        for v in decision.verdicts:
            s = v.step
            table.add_row(
                common.text(v.key.label),
                common.text(v.newest.run_id),
                "-" if s is None else f"{s.ratio:.3f} [{s.low:.3f}, {s.high:.3f}]",
                "-" if s is None else f"{s.p_slower:.2g}",
                "[red]regressed[/red]" if v.regressed else ("ok" if s else "one run"),
            )
        common.console.print(table)
        common.console.print(common.text(decision.message()))
    if not decision.passed:
        common.console.file.flush()
        print(f"GateFailed: {decision.message()}", file=sys.stderr)
        # sys.exit, not click's Exit: main() runs click with standalone_mode=False (compare.py)
        sys.exit(common.EXIT_FAILURE)
