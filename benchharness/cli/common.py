"""What every ``bench`` command shares: the console, common options, tables, number formatting."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from benchharness.errors import UsageError

#: A click command function, as an option decorator hands it on.
F = TypeVar("F", bound=Callable[..., Any])

#: Exit status of a failure the user can act on (the message says what to do).
EXIT_FAILURE = 1
#: Exit status of bad usage (unknown option, bad value).
EXIT_USAGE = 2
#: Exit status after Ctrl-C, as shells report SIGINT.
EXIT_INTERRUPTED = 130


def _console() -> Console:
    stream: TextIO
    # a duplicate of the original stdout: converters silence fds 1/2 while they run, and the
    # display must stay visible through that
    try:
        stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    except (OSError, ValueError, AttributeError):
        stream = sys.stdout
    return Console(file=stream, highlight=False, soft_wrap=False)


console = _console()


#: Width a table is measured in before printing it whole: wider than any table's natural width.
MEASURE_WIDTH = 100_000


def print_table(table: Table, out: Console | None = None) -> None:
    """A table as its reader can read it: on a terminal, fitted to the window; in a log or a
    pipe (where a console assumes 80 columns and would cut model names to ``mobilen…``), at its
    natural width with a light frame, so every name and column is whole."""
    out = out or console
    if out.is_terminal:
        out.print(table)
        return
    table.box, table.show_edge = box.SIMPLE_HEAD, False
    natural = Measurement.get(out, out.options.update_width(MEASURE_WIDTH), table).maximum
    saved = out.width
    out.width = max(saved, natural)
    try:
        out.print(table)
    finally:
        out.width = saved


def text(value: Any) -> str:
    """Any text from a device, a model or a file, safe inside rich markup (``[/x]`` stays text)."""
    return escape(str(value))


def results_dir_option(func: Any) -> Any:
    return click.option(
        "--results-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("BENCH_RESULTS_DIR", "results"),
        show_default="results (or $BENCH_RESULTS_DIR)",
        help="Folder holding one sub-folder per run.",
    )(func)


def devices_option(help_text: str, **kw: Any) -> Callable[[F], F]:
    """--device, repeatable, into ``devices``: profile names or paths to .toml files."""
    return click.option("--device", "devices", multiple=True, help=help_text, **kw)


def scheduler_option(help_text: str, required: bool = False) -> Callable[[F], F]:
    """--scheduler of the farm commands (no environment variable: a farm is always asked for)."""
    # no explicit default: click 8.3 takes default=None as a given value, even when required
    return click.option("--scheduler", required=required, metavar="tls://HOST:8786", help=help_text)


def json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(
        func
    )


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: '-' when absent, millions as 1.2M, trailing zeros dropped."""
    if value is None or value == "":
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number != number:
        return "-"
    if abs(number) >= 1e6:
        return f"{number / 1e6:,.1f}M"
    return f"{number:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{number:.0f}"


#: What the formats beyond the default pair are, for --formats' help (a format the export
#: pipeline adds without a note here is still named).
FORMAT_NOTES = {
    "torch": "PyTorch eager on a torch.export .pt2, needs torch on the device",
    "pte": "an ExecuTorch program, needs ExecuTorch on the device",
}


def formats_help(formats: Sequence[str]) -> str:
    """--formats' help: every format, comma-separated, and what the opt-in ones need."""
    notes = "; ".join(f"{f}: {FORMAT_NOTES[f]}" for f in formats if f in FORMAT_NOTES)
    return ", ".join(formats) + (f" ({notes})." if notes else ".")


class FormatsOption(click.Option):
    """--formats, whose help names every format of the export pipeline (``FORMATS``), read when
    help is shown: the pipeline imports numpy, which starting a command does not need."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from benchharness.export.pipeline import FORMATS

        self.help = formats_help(FORMATS)
        return super().get_help_record(ctx)


def formats_option(func: Any) -> Any:
    """--formats of export and run: the default pair runs on every device kind; the rest are
    asked for by name."""
    option = click.option("--formats", cls=FormatsOption, default="onnx,tflite", show_default=True)
    return option(func)


def split(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


def parse_formats(value: str) -> tuple[str, ...]:
    from benchharness.export.pipeline import FORMATS

    formats = split(value)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"--formats {value!r}: choose from {', '.join(FORMATS)}")
    return formats


def variant_options(func: Any) -> Any:
    """--precision, --calibration, --resolution, --width: compressed variants and sweeps."""
    for option in reversed((
        click.option("--precision", "precision", default="fp32", show_default=True,
                     help="fp32,fp16,int8-dynamic,int8-static (int8 = int8-static), a list."),
        click.option("--calibration", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="Calibration inputs (.npy) for int8-static; default: random inputs."),
        click.option("--resolution", default=None, help="Input sides to sweep, e.g. 128,160,224."),
        click.option("--width", default=None, help="Width multipliers to sweep, e.g. 0.5,1.0."),
    )):  # fmt: skip
        func = option(func)
    return func


def variants(kw: dict[str, Any]) -> dict[str, Any]:
    """The parsed values of variant_options, as RunRequest fields."""
    from benchharness.export.quantize import parse_precisions
    from benchharness.zoo.variants import parse_resolutions, parse_widths

    return {
        "precisions": parse_precisions(kw["precision"]),
        "calibration": kw["calibration"],
        "resolutions": parse_resolutions(kw["resolution"]) if kw["resolution"] else (),
        "widths": parse_widths(kw["width"]) if kw["width"] else (),
    }


def keep_weights_option(func: F) -> F:
    """--keep-weights: export with the builder's own weights, not the seeded initialisation."""
    return click.option(
        "--keep-weights",
        is_flag=True,
        help="Export with the builder's own weights (a trained checkpoint) instead of the seeded "
        "initialisation that keeps every branch alive; a graph a converter then folds is "
        "flagged GRAPH_FOLDED.",
    )(func)


def export_jobs_option(extra: str = "") -> Callable[[F], F]:
    """--export-jobs: how many processes export the models the cache lacks (``extra``: what this
    command adds to the default)."""
    return click.option(
        "--export-jobs",
        type=click.IntRange(min=1),
        default=None,
        help="Processes exporting the models the cache lacks, before any timing (default: one "
        f"per core, at most 4{extra}); 1 exports them one after another.",
    )
