"""``bench ops``: where an artifact's time goes, operator by operator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from benchharness.cli import common

if TYPE_CHECKING:  # imported when the command runs: `bench --help` stays quick
    from benchharness.analysis.op_breakdown import OpSummary


@click.command("ops")
@click.argument("run_id")
@click.option("--model", required=True, help="Model whose operators to show.")
@click.option("--format", "format_name", default=None, help="onnx or tflite (default: both).")
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True)
@common.results_dir_option
@common.json_option
def ops_cmd(
    run_id: str, model: str, format_name: str | None, top: int, results_dir: Path, as_json: bool
) -> None:
    """Top operators by time, and time vs MACs vs bytes per operator type."""
    from benchharness.analysis.op_breakdown import op_summary
    from benchharness.results.store import RunStore

    store = RunStore.open(results_dir, run_id)
    summaries = op_summary(store.ops, model=model, fmt=format_name, top=top)
    if as_json:
        common.print_json([s.to_dict() for s in summaries])
        return
    for s in summaries:
        _print_top(s)
        _print_types(s)


def _scaled(value: float | None, times: float = 1.0, per: float = 1.0) -> float | None:
    """A column in the table's unit (a share in %, MACs in millions, bytes in KB)."""
    return None if value is None else value * times / per


def _print_top(s: OpSummary) -> None:
    title = f"{s.model} {s.format} on {s.device}: top operators by time"
    table = Table(title=common.text(title))
    for col in ("#", "operator", "type", "us", "time %", "MMACs", "KB"):
        table.add_column(col, justify="left" if col in ("operator", "type") else "right")
    for o in s.top:
        table.add_row(
            common.text(o.op_index),
            common.text(o.op_name[:48]),
            common.text(o.op_type),
            common.fmt(o.median_us, 1),
            common.fmt(_scaled(o.share, times=100), 1),
            common.fmt(_scaled(o.macs, per=1e6), 2),
            common.fmt(_scaled(o.bytes, per=1024), 1),
        )
    common.print_table(table)


def _print_types(s: OpSummary) -> None:
    types = Table(title="by operator type: share of time next to share of MACs and bytes")
    for col in ("type", "count", "time %", "MACs %", "bytes %", "GMAC/s"):
        types.add_column(col, justify="left" if col == "type" else "right")
    for t in s.by_type:
        types.add_row(
            common.text(t.op_type),
            common.text(t.count),
            common.fmt(_scaled(t.time_share, times=100), 1),
            common.fmt(_scaled(t.macs_share, times=100), 1),
            common.fmt(_scaled(t.bytes_share, times=100), 1),
            common.fmt(t.gmacs_per_s, 1),
        )
    common.print_table(types)
