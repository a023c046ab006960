"""``bench ops``: where an artifact's time goes, operator by operator."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from benchharness.cli import common


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
        common.print_json(summaries)
        return
    for s in summaries:
        title = f"{s['model']} {s['format']} on {s['device']}: top operators by time"
        table = Table(title=common.text(title))
        for col in ("#", "operator", "type", "us", "time %", "MMACs", "KB"):
            table.add_column(col, justify="left" if col in ("operator", "type") else "right")
        for o in s["top"]:
            share = float(o["share"]) * 100 if o.get("share") not in (None, "") else None
            macs = float(o["macs"]) / 1e6 if o.get("macs") not in (None, "") else None
            kb = float(o["bytes"]) / 1024 if o.get("bytes") not in (None, "") else None
            table.add_row(
                common.text(o["op_index"]),
                common.text(str(o["op_name"])[:48]),
                common.text(o["op_type"]),
                common.fmt(o["median_us"], 1),
                common.fmt(share, 1),
                common.fmt(macs, 2),
                common.fmt(kb, 1),
            )
        common.console.print(table)
        types = Table(title="by operator type: share of time next to share of MACs and bytes")
        for col in ("type", "count", "time %", "MACs %", "bytes %", "GMAC/s"):
            types.add_column(col, justify="left" if col == "type" else "right")
        for t in s["by_type"]:
            pct = [
                None if t[k] is None else t[k] * 100
                for k in ("time_share", "macs_share", "bytes_share")
            ]
            types.add_row(
                common.text(t["op_type"]),
                common.text(t["count"]),
                common.fmt(pct[0], 1),
                common.fmt(pct[1], 1),
                common.fmt(pct[2], 1),
                common.fmt(t["gmacs_per_s"], 1),
            )
        common.console.print(types)
