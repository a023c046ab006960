"""``bench check``: do models fit a device's constraints?"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from benchharness.cli import common


@click.command("check")
@common.devices_option(
    "Profile name or path to a .toml; repeat for several devices.", required=True
)
@click.option("--models", default=None, help="all | a,b | module:function | .onnx | .tflite")
@click.option("--input-shape", default=None, help="e.g. 1x3x160x160 (overrides the zoo's).")
@click.option(
    "--run",
    "run_id",
    default=None,
    help="Judge this run's measured peak memory (and its estimates) instead; --models filters.",
)
@common.results_dir_option
@common.variant_options
@common.json_option
def check_cmd(devices: tuple[str, ...], models: str | None, input_shape: str | None,
              run_id: str | None, results_dir: Path, as_json: bool,
              **variant: Any) -> None:  # fmt: skip
    """Check models against a device's constraints (operators, model, activation, layer bytes),
    or with --run, what a run measured against its memory budget."""
    if run_id is not None:
        from benchharness.cli.check_run import check_run_cmd

        check_run_cmd(devices, run_id, models, results_dir, as_json)
        return
    if models is None:
        from benchharness.errors import UsageError

        raise UsageError("bench check needs --models (what to check) or --run RUN_ID")
    from benchharness.plan.fit import check_models, fmt_bytes
    from benchharness.profiles.device_profile import load_profile
    from benchharness.zoo.registry import parse_shape, resolve_models
    from benchharness.zoo.variants import expand_variants

    opts = common.variants(variant)
    profiles = [load_profile(d) for d in devices]
    shape = parse_shape(input_shape) if input_shape else None
    refs = expand_variants(resolve_models(models, input_shape=shape),
                           resolutions=opts["resolutions"], widths=opts["widths"])  # fmt: skip
    results = []
    with common.console.status("checking") as status:
        for profile in profiles:
            for ref in refs:
                status.update(f"{profile.name}: {ref.name}")
                results.extend(check_models(profile, [ref], opts["precisions"]))
    if as_json:
        common.print_json([r.to_json() for r in results])
    else:
        table = Table(title="Constraint check (weights at the precision; peak live activations)")
        cols = ("device", "model", "precision", "fits", "weights", "peak act.", "largest layer")
        for col in cols:
            table.add_column(col, justify="right" if col in ("weights", "peak act.") else "left")
        for r in results:
            layer = f"{r.max_layer} {fmt_bytes(r.max_layer_bytes)}" if r.max_layer else "-"
            table.add_row(
                common.text(r.device), common.text(r.model), common.text(r.precision),
                "[green]yes[/green]" if r.fits else "[red]no[/red]",
                fmt_bytes(r.model_bytes), fmt_bytes(r.activation_peak_bytes), common.text(layer),
            )  # fmt: skip
        common.print_table(table)
        for r in results:
            if r.fits:
                continue
            where = common.text(f"({r.precision}) on {r.device}:")
            common.console.print(f"[red]{common.text(r.model)}[/red] {where}")
            reasons = [v.describe() for v in r.violations] or [f"cannot check: {r.error}"]
            for reason in reasons:
                common.console.print(f"  - {common.text(reason)}")
    if not all(r.fits for r in results):
        sys.exit(common.EXIT_FAILURE)
