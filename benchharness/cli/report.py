"""``bench report``: the latency-vs-FLOPs report of one or more runs."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from benchharness.cli import common


@click.command("report")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID...")
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="report.html (one self-contained file) or report.md (+ report_files/).",
)
@common.results_dir_option
@common.json_option
def report_cmd(run_ids: tuple[str, ...], out: Path, results_dir: Path, as_json: bool) -> None:
    """Latency-vs-FLOPs report of one or more runs, as HTML or Markdown."""
    from benchharness.report import write_report
    from benchharness.report.cells import ratio_text
    from benchharness.report.figures import headline

    with common.console.status("analysing and plotting"):
        result = write_report(run_ids, results_dir, out)
    rows = headline(result.analysis)
    if as_json:
        common.print_json(
            {
                "path": str(result.path),
                "images": [str(p) for p in result.images],
                "headline": rows,
                "flagged": len(result.analysis.flagged),
            }
        )
        return
    table = Table(title="Does latency follow MACs? (rank correlations)")
    for col in ("device", "runtime", "format", "n", "ρ MACs", "τ MACs", "slope", "ρ bytes"):
        table.add_column(col, justify="left" if col in ("device", "runtime", "format") else "right")
    for r in rows:
        names = (common.text(r[k]) for k in ("device", "runtime", "format", "models"))
        digits = (
            ("spearman_macs", 3),
            ("kendall_macs", 3),
            ("slope_macs", 2),
            ("spearman_bytes", 3),
        )
        table.add_row(*names, *(common.fmt(r[k], d) for k, d in digits))
    common.print_table(table)
    for r in rows:
        off = ", ".join(f"{o['model']} {ratio_text(o['ratio'])}" for o in r["furthest_off_fit"])
        if off:
            common.console.print(
                common.text(f"  {r['device']} {r['runtime']} ({r['format']}) off the fit: {off}")
            )
    if result.analysis.flagged:
        common.console.print(
            f"[yellow]! {len(result.analysis.flagged)} flagged measurement(s), "
            "marked in the report[/yellow]"
        )
    extra = f" (+ {len(result.images)} images)" if result.images else ""
    common.console.print(common.text(f"report: {result.path}{extra}"))
