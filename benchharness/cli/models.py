"""``bench models`` and ``bench export``: the zoo, and exporting it without running."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from benchharness.cli import common


@click.command("models")
@common.json_option
def models_cmd(as_json: bool) -> None:
    """List the zoo: name, source, input shape, classes, MACs and params."""
    from benchharness.export.cache import cache_dir
    from benchharness.plan.artifacts import torch_cost
    from benchharness.zoo.registry import load_zoo

    rows = []
    with common.console.status("counting MACs (cached after the first time)"):
        for spec in load_zoo().values():
            cost = torch_cost(spec, cache_dir())
            rows.append(
                {
                    "model": spec.name,
                    "source": spec.source,
                    "input_shape": spec.input_shape_str,
                    "classes": spec.classes,
                    "macs": cost["macs"],
                    "params": cost["params"],
                }
            )
    if as_json:
        common.print_json(rows)
        return
    table = Table(title="The zoo (random weights; MACs in the paper convention)")
    for col in ("model", "source", "input", "classes", "GMACs", "params (M)"):
        table.add_column(col, justify="right" if col not in ("model", "source") else "left")
    for r in rows:
        names = (common.text(r[k]) for k in ("model", "source", "input_shape", "classes"))
        table.add_row(*names, f"{r['macs'] / 1e9:.3f}", f"{r['params'] / 1e6:.3f}")
    common.print_table(table)


#: Portable operators named in the export table; the JSON has them all.
EXPORT_OPS_SHOWN = 4


@click.command("export")
@click.option("--models", "models", required=True, help="all, a,b, module:function")
@common.formats_option
@click.option("--input-shape", default=None, help="e.g. 1x3x160x160 (overrides the zoo's)")
@common.variant_options
@common.keep_weights_option
@common.export_jobs_option()
@common.json_option
def export_cmd(
    models: str,
    formats: str,
    input_shape: str | None,
    as_json: bool,
    keep_weights: bool,
    export_jobs: int | None,
    **variant: Any,
) -> None:
    """Export (and verify) models without running them."""
    from benchharness.export.cache import cache_dir
    from benchharness.export.quantize import Calibration
    from benchharness.plan.artifacts import prepare_artifacts
    from benchharness.zoo.registry import ModelSpec, parse_shape, resolve_models
    from benchharness.zoo.variants import expand_variants

    shape = parse_shape(input_shape) if input_shape else None
    opts = common.variants(variant)
    refs = [
        r
        for r in resolve_models(models, input_shape=shape, keep_weights=keep_weights)
        if isinstance(r, ModelSpec)
    ]
    swept = expand_variants(refs, resolutions=opts["resolutions"], widths=opts["widths"])
    refs = [r for r in swept if isinstance(r, ModelSpec)]
    calibration = Calibration(npy=Path(opts["calibration"])) if opts["calibration"] else None
    log = cache_dir() / "export.log"
    with common.console.status("exporting") as status:
        arts = prepare_artifacts(
            refs,
            common.parse_formats(formats),
            log_path=log,
            stage=lambda t: status.update(t),
            precision=opts["precisions"],
            calibration=calibration,
            export_jobs=export_jobs,
        )
    rows: list[dict[str, Any]] = [
        {
            "model": a.model,
            "format": a.format,
            "precision": a.precision,
            "path": str(a.path) if a.path else None,
            "max_abs_err": a.max_abs_err,
            "tolerance": a.tolerance,
            "error": a.error,
            "init": a.cost.get("init"),
            "folded": a.cost.get("folded"),
            **lowering(a.path, a.format),
        }
        for a in arts
    ]
    if as_json:
        common.print_json(rows)
    else:
        _print_exports(rows, log)
    if any(r["error"] for r in rows):
        sys.exit(common.EXIT_FAILURE)


def _print_exports(rows: list[dict[str, Any]], log: Path) -> None:
    """The exports as a table, then each graph that lost work the model defines."""
    table = Table(title=common.text(f"Exports (converter log: {log})"))
    cols = ("model", "format", "precision", "max_abs_err", "tolerance", "status", "artifact",
            "backend")  # fmt: skip
    for col in cols:
        table.add_column(col)
    for r in rows:
        ok = r["error"] is None and (r["max_abs_err"] or 0) <= (r["tolerance"] or 0)
        table.add_row(
            common.text(r["model"]),
            common.text(r["format"]),
            common.text(r["precision"]),
            common.fmt(r["max_abs_err"], 9),
            common.fmt(r["tolerance"], 9),
            "ok" if ok else f"[red]{common.text(r['error'] or 'disagrees with PyTorch')}[/red]",
            common.text(r["path"] or "-"),
            common.text(backend_text(r)),
        )
    common.print_table(table)
    for r in rows:
        if r["folded"]:
            common.console.print(
                f"[yellow]! GRAPH_FOLDED[/yellow] {common.text(r['model'])} "
                f"{common.text(r['format'])}: {common.text(r['folded'])}"
            )


def lowering(path: Path | None, fmt: str) -> dict[str, Any]:
    """Who runs an ExecuTorch program's work, and the operators left on its own kernels."""
    if fmt != "pte" or path is None:
        return {}
    from benchharness.ondevice.pte_file import PteFormatError, summarize_file

    try:
        summary = summarize_file(str(path))
    except (OSError, PteFormatError):
        return {}
    return {"backend": summary.provider, "portable_ops": summary.portable_operators}


def backend_text(row: dict[str, Any]) -> str:
    ops = row.get("portable_ops") or []
    shown = ", ".join(ops[:EXPORT_OPS_SHOWN]) + (", ..." if len(ops) > EXPORT_OPS_SHOWN else "")
    return f"{row.get('backend') or '-'}" + (f" (portable: {shown})" if ops else "")
