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

#: Table rows per series unless --last says otherwise: a screenful; change points further back
#: are listed under the table all the same.
DEFAULT_LAST = 30
#: Shown in a table's "date" column: the ISO date and time to the second (as rows record it).
DATE_CHARS = 19


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
    _warn(history.warnings)
    return history


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        # stderr: --json keeps stdout parseable, and CI logs show the skipped runs
        click.echo(f"warning: {warning}", err=True)


def _threshold(text: str) -> float:
    """--threshold as a fraction; a value that is no percentage is bad usage (exit 2)."""
    from benchharness.analysis.comparison import parse_threshold
    from benchharness.errors import UsageError

    try:
        return parse_threshold(text)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


def _print_json(data: dict[str, Any]) -> None:
    """JSON as ``common.print_json`` prints it, without its highlighting: a history of thousands
    of runs is megabytes, which rich takes seconds to colour."""
    common.console.file.write(json.dumps(data, indent=2, default=str) + "\n")
    common.console.file.flush()


def _p_value(value: float) -> str:
    """A p-value for a table cell: two digits, "<1e-4" below the floor (gate.P_FLOOR)."""
    from benchharness.history.gate import P_FLOOR, P_FLOOR_TEXT

    return f"<{P_FLOOR_TEXT}" if value < P_FLOOR else f"{value:.2g}"


def _p(value: float) -> str:
    text = _p_value(value)
    return f"p < {text[1:]}" if text.startswith("<") else f"p = {text}"


def _date(text: str) -> str:
    return text[:DATE_CHARS].replace("T", " ") if text else "-"


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f"[{low:.4g}, {high:.4g}]"


def _step_cell(ratio: float, low: float, high: float) -> str:
    style = "red" if ratio > 1 else "green"
    return f"[{style}]x{ratio:.3f}[/{style}] " + common.text(f"[{low:.3f}, {high:.3f}]")


def _series_table(series: SeriesHistory, last: int) -> Table:
    changes = {c.index: c for c in series.changes}
    shown = len(series.points) if last <= 0 else min(last, len(series.points))
    first = len(series.points) - shown
    caption = (
        f"{first} earlier runs not shown (--last 0 shows every run; the changes below cover all)"
        if first
        else None
    )
    table = Table(
        title=common.text(f"{series.key.label}: {series.summary()}"),
        title_justify="left",
        caption=caption,
        caption_justify="left",
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
    for i in range(first, len(series.points)):
        p = series.points[i]
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
                f"{_p(c.step.p_value)}; likely cause: {c.cause_text()}"
            ),
            soft_wrap=True,
        )


@click.command("history")
@_filters
@common.results_dir_option
@common.json_option
@click.option(
    "--last",
    type=click.IntRange(min=0),
    default=DEFAULT_LAST,
    show_default=True,
    metavar="N",
    help="Rows of each table: the newest N runs (0: every run). --json and --html hold all.",
)
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
    last: int,
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
        _print_wide(_series_table(series, last))
        _print_changes(series)
    if html_path is not None:
        common.console.print(f"history page: {common.text(html_path)}")


@click.command("gate")
@_filters
@click.option(
    "--threshold",
    "threshold",
    default="5%",
    show_default=True,
    metavar="PCT",
    callback=lambda ctx, param, value: _threshold(value),
    help="Fail when the newest run of a series is slower than the stable level before it by at "
    "least PCT (and significantly so).",
)
@common.results_dir_option
@common.json_option
def gate_cmd(
    device: str | None,
    model: str | None,
    fmt: str | None,
    threshold: float,
    results_dir: Path,
    as_json: bool,
) -> None:
    """CI gate: exit 1 when the newest run of a series opens a regression (see bench history)."""
    from benchharness.history.gate import WINDOW, decide
    from benchharness.history.timeline import select_series

    selected = select_series(results_dir, device=device, model=model, format=fmt, last=WINDOW)
    _warn(selected.warnings)
    decision = decide(selected.series, threshold)
    if as_json:
        _print_json(decision.as_dict())
    else:
        table = Table(
            title=f"bench gate: newest run against the stable level, threshold {threshold * 100:g}%"
        )
        for col in ("series", "newest run", "ratio [95% CI]", "p", "verdict"):
            table.add_column(col, justify="left" if col in ("series", "newest run") else "right")
        for v in decision.verdicts:
            s = v.step
            table.add_row(
                common.text(v.key.label),
                common.text(v.newest.run_id),
                "-" if s is None else f"{s.ratio:.3f} [{s.low:.3f}, {s.high:.3f}]",
                "-" if s is None else _p_value(s.p_slower),
                "[red]regressed[/red]" if v.regressed else ("ok" if s else "one run"),
            )
        _print_wide(table)
        common.console.print(common.text(decision.message()), soft_wrap=True)
    if not decision.passed:
        common.console.file.flush()
        print(f"GateFailed: {decision.message()}", file=sys.stderr)
        # sys.exit, not click's Exit: main() runs click with standalone_mode=False (compare.py)
        sys.exit(common.EXIT_FAILURE)
