"""``bench import``: a log captured by hand with a native tool becomes a run."""

from __future__ import annotations

from pathlib import Path

import click

from benchharness.cli import common


@click.command("import")
@click.argument("kind", type=click.Choice(["benchmark-model", "ort-perf-test", "executor-runner"]))
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--device", required=True, help="Name of the device the log was captured on.")
@click.option("--model", required=True, help="Name of the model the log measured.")
@click.option("--precision", default="fp32", show_default=True, help="Precision of the model.")
@click.option(
    "--profile-json",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="ONNX Runtime profile written by the same run (perf_test -p).",
)
@click.option("--run-id", default=None, help="Name of the new results folder.")
@common.results_dir_option
def import_cmd(
    kind: str,
    log: Path,
    device: str,
    model: str,
    precision: str,
    profile_json: Path | None,
    run_id: str | None,
    results_dir: Path,
) -> None:
    """Import a log captured by hand with benchmark_model, onnxruntime_perf_test or
    ExecuTorch's executor_runner."""
    from benchharness.results.importer import import_log, summary_line

    store = import_log(
        kind,  # type: ignore[arg-type]  # click.Choice has checked it
        log, device=device, model=model, results_dir=results_dir, run_id=run_id,
        profile_json=profile_json, precision=precision,
    )  # fmt: skip
    click.echo(store.run_id)
    click.echo(summary_line(store))
