"""``bench compare``: run B against run A, with a CI gate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from benchharness.cli import common

if TYPE_CHECKING:  # imported when the command runs: `bench --help` stays quick
    from benchharness.analysis.comparison import Comparison, Match

_VERDICT_STYLE = {
    "slower": "red", "faster": "green", "same": "", "unreliable": "yellow", "same modes": "cyan",
}  # fmt: skip


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="median:PCT|peak_mem:PCT",
    help="Exit 1 on a significant slowdown beyond PCT (median:5%), or on a peak memory grown "
    "beyond PCT (peak_mem:10%); repeat for both.",
)
@click.option(
    "--threshold",
    default=None,
    metavar="PCT",
    help="Smallest change called slower/faster (default 5%).",
)
@click.option(
    "--allow-mismatch",
    is_flag=True,
    help="Compare results measured on different setups (device, runtime, threads...).",
)
@common.results_dir_option
@common.json_option
def compare_cmd(
    run_a: str,
    run_b: str,
    fail_on: tuple[str, ...],
    threshold: str | None,
    allow_mismatch: bool,
    results_dir: Path,
    as_json: bool,
) -> None:
    """Compare run RUN_B against run RUN_A: ratio of medians, its CI, p-value and verdict."""
    from benchharness.analysis.compare_stored import compare_and_gate
    from benchharness.analysis.comparison import DEFAULT_THRESHOLD, parse_threshold
    from benchharness.analysis.gates import parse_fail_on_specs
    from benchharness.cli.compare_memory import print_memory

    gates = parse_fail_on_specs(fail_on)
    outcome = compare_and_gate(
        results_dir,
        run_a,
        run_b,
        threshold=parse_threshold(threshold) if threshold else DEFAULT_THRESHOLD,
        allow_mismatch=allow_mismatch,
        fail_on=gates,
    )
    if as_json:
        common.print_json(outcome.to_dict())
    else:
        _print_latency(outcome.latency)
        print_memory(outcome.latency.run_a, outcome.latency.run_b, outcome.memory)
    for gate in outcome.failed_gates:
        print(gate.message(), file=sys.stderr)
    if outcome.failed:
        # sys.exit, not click's Exit: main() runs click with standalone_mode=False, which turns
        # Exit into a return value and would lose the status
        sys.exit(common.EXIT_FAILURE)


def _ratio_text(m: Match) -> str:
    ratio = "-" if m.ratio is None else f"{m.ratio:.3f}"
    if m.ci_low is not None and m.ci_high is not None:
        ratio += f" [{m.ci_low:.3f}, {m.ci_high:.3f}]"
    return ratio


def _p_text(m: Match) -> str:
    if m.p_value is None:
        return "-"
    return "<1e-4" if m.p_value < 1e-4 else f"{m.p_value:.2g}"


def _print_latency(result: Comparison) -> None:
    """The table of matches, the geometric mean, the warnings and the notes."""
    table = Table(title=common.text(f"{result.run_b} vs {result.run_a}"))
    for col in ("model", "format", "A ms", "B ms", "B/A [95% CI]", "p"):
        table.add_column(col, justify="left" if col in ("model", "format") else "right")
    table.add_column("verdict")
    for m in result.matches:
        style = _VERDICT_STYLE.get(m.verdict, "")
        verdict = f"[{style}]{m.verdict}[/{style}]" if style else m.verdict
        table.add_row(
            common.text(m.model),
            common.text(f"{m.format}/{m.precision}"),
            common.fmt(m.median_a_ms),
            common.fmt(m.median_b_ms),
            common.text(_ratio_text(m)),
            _p_text(m),
            verdict,
        )
    common.print_table(table)
    if result.geomean_ratio is not None:
        common.console.print(
            f"geometric mean of ratios B/A over {result.geomean_n} models: "
            f"{result.geomean_ratio:.3f} (change called at p < 0.01 and "
            f">= {result.threshold:.0%})"
        )
    for warning in result.warnings:
        common.console.print(f"[yellow]! {common.text(warning)}[/yellow]")
    notes: dict[str, list[str]] = {}
    for m in result.matches:
        for note in m.notes:
            notes.setdefault(note, []).append(m.model)
    for note, models in notes.items():
        common.console.print(common.text(f"  note: {note} ({', '.join(models)})"))
