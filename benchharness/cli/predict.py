"""``bench predictor build|eval|show`` and ``bench predict``: latency predictors of a device."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from benchharness.cli.common import (
    EXIT_INTERRUPTED,
    F,
    console,
    fmt,
    formats_option,
    json_option,
    parse_formats,
    print_json,
    results_dir_option,
    split,
    text,
)
from benchharness.errors import UsageError

if TYPE_CHECKING:  # imported when the command runs: `bench --help` stays quick
    from benchharness.api import RunRequest
    from benchharness.predict import DevicePredictions, Predictor
    from benchharness.predict.error_parts import PartError
    from benchharness.results.store import RunStore

#: ``--budget`` units.
_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_budget(value: str) -> float:
    """``60m``, ``90s``, ``1.5h`` or plain seconds -> seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*", value)
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--budget {value!r}: give a duration like 60m, 90s or 1.5h")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def graph_formats(value: str) -> tuple[str, ...]:
    """--formats of the predictor commands: the formats with a graph reader (onnx, tflite)."""
    from benchharness.cost.artifact_cost import GRAPH_FORMATS

    formats = parse_formats(value)
    other = [f for f in formats if f not in GRAPH_FORMATS]
    if other:
        raise UsageError(
            f"--formats {value!r}: predictors read exported graphs, which {', '.join(other)} "
            f"has none; choose from {', '.join(GRAPH_FORMATS)}"
        )
    return formats


def _warn(warning: str) -> None:
    console.print(f"[yellow]! {text(warning)}[/yellow]")


def _say(line: str) -> None:
    console.print(text(line))


def _measure(request: RunRequest) -> RunStore:
    """``bench run`` with its progress on the console (eval measuring the models it lacks)."""
    from benchharness.api import run
    from benchharness.cli.display import reporter_for

    with reporter_for(console) as reporter:
        return run(request, reporter=reporter)


def output_option(help_text: str) -> Callable[[F], F]:
    """``-o/--output FILE``: where a predictor command writes its file."""
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=help_text,
    )


@click.group("predictor")
def predictor_group() -> None:
    """Build, evaluate and inspect latency predictors built from kernel measurements."""


@predictor_group.command("build")
@click.option("--device", default="local", show_default=True, help="Device profile to measure.")
@click.option("--budget", default="60m", show_default=True, help="Wall time of the build.")
@formats_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampling.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Threads per runtime.")
@click.option("--resume", default=None, metavar="RUN_ID", help="Finish an interrupted build.")
@click.option("--no-refine", is_flag=True, help="Skip the refinement round.")
@click.option("--no-pairs", is_flag=True, help="Skip the fusion-pair models.")
@click.option("--max-models", type=click.IntRange(min=1), default=None, hidden=True)
@click.option(
    "--networks",
    default="auto",
    show_default=True,
    metavar="auto|none|RUN_ID,...",
    help="Runs of the zoo on the device for the network stage (auto: the newest on this setup).",
)
@click.option(
    "--merge",
    default="",
    metavar="RUN_ID,...",
    help="Fit on these finished builds' kernel models too (their first rounds' run ids).",
)
@output_option("Predictor file (default: RESULTS_DIR/predictors/DEVICE.json.gz).")
@results_dir_option
@json_option
def build_cmd(**kw: Any) -> None:
    """Measure kernel models on a device with `bench run` and fit a predictor."""
    from benchharness.cli.display import reporter_for
    from benchharness.predict import BuildRequest, build_predictor, interrupted_run

    req = BuildRequest(
        device=kw["device"],
        formats=graph_formats(kw["formats"]),
        budget_s=parse_budget(kw["budget"]),
        seed=kw["seed"],
        threads=kw["threads"],
        results_dir=kw["results_dir"],
        output=kw["output"],
        resume=kw["resume"],
        refine=not kw["no_refine"],
        pairs=not kw["no_pairs"],
        max_models=kw["max_models"],
        networks=tuple(split(kw["networks"])) or ("auto",),
        merge=tuple(split(kw["merge"])),
    )
    try:
        with reporter_for(console) as reporter:
            outcome = build_predictor(
                req, reporter=reporter, stage=lambda t: reporter.stage("predictor", t)
            )
    except KeyboardInterrupt:
        run_id = interrupted_run(req)
        hint = f"`bench predictor build --resume {run_id}`" if run_id else "a new build"
        print(
            f"Interrupted: every finished measurement is kept; finish with {hint}", file=sys.stderr
        )
        sys.exit(EXIT_INTERRUPTED)
    summary = outcome.summary()
    if kw["as_json"]:
        print_json(summary)
        return
    p = outcome.predictor
    console.print(text(f"predictor: {outcome.path}  (runs {', '.join(outcome.run_ids)})"))
    merged = (p.build.get("merged") or {}).get("builds") or []
    also = f" (with the kernel models of build {', '.join(merged)})" if merged else ""
    console.print(
        text(
            f"{summary['kernel_models']} kernel models{also}, {len(p.samples)} kernel "
            f"samples, {outcome.wall_s / 60:.1f} min"
        )
    )
    _show_stages(p)
    _show_fusion(p)


def _show_stages(p: Predictor) -> None:
    """Each format's network stage (predict/network_cal.py), or why the build has none."""
    for fmt_name, m in p.formats.items():
        if m.network is not None:
            console.print(text(f"{fmt_name} network stage: {m.network.describe()}"))
        else:
            note = (p.build.get("networks") or {}).get("note") or "too few measured networks"
            console.print(text(f"{fmt_name} network stage: none ({note})"))


def _show_fusion(p: Predictor) -> None:
    """The fusion-pair verdicts of every format, when the build measured pairs."""
    table = Table(title="Fusion (pair test: T1 + T2 - T12 > 0.5 min(T1, T2))")
    for col in ("format", "pair", "T1 us", "T2 us", "T12 us", "saving us", "fused"):
        table.add_column(col, justify="left" if col in ("format", "pair", "fused") else "right")
    for fmt_name, m in p.formats.items():
        for r in m.pairs:
            table.add_row(
                text(fmt_name),
                text(f"{r.first}+{r.second}"),
                fmt(r.t1, 1),
                fmt(r.t2, 1),
                fmt(r.t12, 1),
                fmt(r.saving, 1),
                "yes" if r.fused else "no",
            )
    if table.rows:
        console.print(table)


@predictor_group.command("show")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--device", default="local", show_default=True)
@results_dir_option
@json_option
def show_cmd(path: Path | None, device: str, results_dir: Path, as_json: bool) -> None:
    """A predictor's fingerprint, calibration, kernel types and fusion findings."""
    from benchharness.predict import load_predictor

    p = load_predictor(results_dir, device, path)
    data = p.overview()
    if as_json:
        print_json(data)
        return
    console.print(text(f"fingerprint: {p.fingerprint}"))
    for f, m in p.formats.items():
        kinds = ", ".join(f"{k} ({r.n})" for k, r in m.regressors.items())
        console.print(text(f"{f}: calibration {m.calibration.to_json()}; kernel types {kinds}"))
    _show_stages(p)
    _show_fusion(p)


@predictor_group.command("eval")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--device", default="local", show_default=True)
@click.option(
    "--run",
    "runs",
    multiple=True,
    metavar="RUN_ID",
    help="Runs holding the measured models (repeat); missing models are measured.",
)
@click.option(
    "--models",
    default="all",
    show_default=True,
    help="Zoo models to evaluate leaving their family out (none: outside models only).",
)
@click.option("--outside", default="", help="Outside models, module:function,... (not the zoo).")
@formats_option
@click.option("--quick", is_flag=True, help="Measure missing models with --quick.")
@click.option("--force", is_flag=True, help="Evaluate although the fingerprints differ.")
@output_option("Write the evaluation as JSON.")
@results_dir_option
@json_option
def eval_cmd(**kw: Any) -> None:
    """Held-out accuracy: leave one zoo family out, outside models, next to the MACs lines."""
    import json

    from benchharness.predict import METHODS, EvalRequest, evaluate_runs
    from benchharness.results.store import atomic_write_text

    req = EvalRequest(
        device=kw["device"],
        runs=kw["runs"],
        models=kw["models"],
        outside=split(kw["outside"]),
        formats=graph_formats(kw["formats"]),
        quick=kw["quick"],
        force=kw["force"],
        predictor=kw["path"],
        results_dir=kw["results_dir"],
    )
    ev = evaluate_runs(req, measure=_measure, say=_say, warn=_warn)
    data = ev.to_json()
    if kw["output"]:
        atomic_write_text(kw["output"], json.dumps(data, indent=1))
    if kw["as_json"]:
        print_json(data)
        return
    table = Table(
        title="Held-out accuracy (share of models within ±10 % / ±5 %, RMSPE, Spearman, the "
        "share inside the predictor's 90 % interval, and ±10 % over the measurements whose own "
        "99 % interval lies inside ±10 %: resolved)"
    )
    numbers = (
        "n",
        "±10 %",
        "±5 %",
        "RMSPE %",
        "Spearman",
        "in interval",
        "resolved",
        "±10 % of those",
    )
    for col in ("models", "format", "method", *numbers):
        table.add_column(col, justify="right" if col in numbers else "left")
    for (s, f, method), sc in ev.scores.items():
        table.add_row(
            text(s),
            text(f),
            text(method),
            str(sc.n),
            f"{sc.within_10 * 100:.0f} %",
            f"{sc.within_5 * 100:.0f} %",
            fmt(sc.rmspe, 1),
            fmt(sc.spearman, 3),
            "" if math.isnan(sc.coverage) else f"{sc.coverage * 100:.0f} %",
            f"{sc.resolved}/{sc.n}",
            "" if math.isnan(sc.within_10_resolved) else f"{sc.within_10_resolved * 100:.0f} %",
            end_section=method == METHODS[-1],
        )
    console.print(table)
    if ev.parts:
        _parts_table(ev.parts)
    for note in ev.skipped:
        console.print(f"[yellow]skipped: {text(note)}[/yellow]")


def _parts_table(parts: Sequence[PartError]) -> None:
    """Where the predictor's error comes from: per set and format, the parts with the largest
    mean absolute share of a model's latency (predict/error_parts.py)."""
    from benchharness.predict.error_parts import TOP_PARTS

    table = Table(
        title="Where the predictor's error comes from (% of each model's latency, mean over "
        "models; error = measured - predicted)"
    )
    numbers = ("n", "time %", "error %", "|error| %")
    for col in ("models", "format", "part", *numbers):
        table.add_column(col, justify="right" if col in numbers else "left")
    groups: dict[tuple[str, str], list[PartError]] = {}
    for p in parts:
        groups.setdefault((p.set, p.format), []).append(p)
    for (set_name, fmt_name), group in groups.items():
        shown = group[:TOP_PARTS]
        for i, p in enumerate(shown):
            table.add_row(
                text(set_name),
                text(fmt_name),
                text(p.part),
                str(p.models),
                fmt(p.time_pct, 1),
                fmt(p.error_pct, 1),
                fmt(p.abs_error_pct, 1),
                end_section=i == len(shown) - 1,
            )
    console.print(table)


@click.command("predict")
@click.option("--device", default="local", show_default=True, help="Device whose predictor to use.")
@click.option(
    "--models", required=True, help="all | a,b | module:function | path.onnx | path.tflite"
)
@formats_option
@click.option("--input-shape", default=None, help="e.g. 1x3x160x160 (overrides the zoo's).")
@click.option(
    "--predictor",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Predictor file (default: RESULTS_DIR/predictors/DEVICE.json.gz).",
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="Threads it would run with."
)
@click.option("--ops", "show_ops", is_flag=True, help="Show every kernel's prediction.")
@click.option("--force", is_flag=True, help="Predict although the fingerprints differ.")
@click.option("--resolution", default=None, help="Input sides to sweep, e.g. 128,160,224.")
@click.option("--width", default=None, help="Width multipliers to sweep, e.g. 0.5,0.75,1.0.")
@click.option(
    "--measure-above",
    type=click.FloatRange(min=0.0),
    default=None,
    metavar="PCT",
    help="Run on the device (bench run) the models whose 90 % interval is wider than PCT % of "
    "their prediction, and show measured beside predicted.",
)
@click.option("--quick", is_flag=True, help="With --measure-above: the quick preset of bench run.")
@results_dir_option
@json_option
def predict_cmd(**kw: Any) -> None:
    """Predicted latency of models on a device, without touching the device (unless
    --measure-above asks to check the uncertain ones)."""
    from benchharness.plan.options import Method, RunOptions
    from benchharness.predict import PredictRequest, predict_on_device
    from benchharness.predict.apply import measure_uncertain
    from benchharness.zoo.variants import parse_resolutions, parse_widths

    req = PredictRequest(
        models=kw["models"],
        device=kw["device"],
        formats=graph_formats(kw["formats"]),
        input_shape=kw["input_shape"],
        threads=kw["threads"],
        predictor=kw["path"],
        force=kw["force"],
        results_dir=kw["results_dir"],
        resolutions=parse_resolutions(kw["resolution"]) if kw["resolution"] else (),
        widths=parse_widths(kw["width"]) if kw["width"] else (),
    )
    if kw["quick"] and kw["measure_above"] is None:
        raise UsageError("--quick only says how --measure-above measures; add --measure-above PCT")
    with console.status("exporting (cached) and predicting"):
        result = predict_on_device(req, warn=_warn)
    measured_in = None
    if kw["measure_above"] is not None:
        options = RunOptions(method=Method(quick=kw["quick"]))
        store = measure_uncertain(req, result, kw["measure_above"], _measure, options)
        measured_in = store.run_id if store is not None else None
        if not kw["as_json"]:
            nothing = f"no interval is wider than {kw['measure_above']:g} %: nothing measured"
            _say(f"measured in run {measured_in}" if measured_in else nothing)
    if kw["as_json"]:
        print_json({**result.to_json(kw["show_ops"]), "measured_run": measured_in})
        return
    _prediction_table(result, measured=kw["measure_above"] is not None)
    if kw["show_ops"]:
        for m in result.models:
            for k in m.kernels:
                console.print(
                    text(
                        f"  {m.model} {m.format} {k.key:<22} {k.us:10.1f} us "
                        f"{_interval(k.low_us, k.high_us):>17}  {','.join(k.nodes)}"
                    )
                )


def _prediction_table(result: DevicePredictions, measured: bool) -> None:
    """The predictions as a table (with the measured medians, where --measure-above ran)."""
    table = Table(title=f"Predicted latency on {text(result.device)}")
    columns = ["model", "format", "predicted ms", "90 % interval"]
    columns += ["measured ms", "ratio"] if measured else []  # ratio: measured / predicted
    for col in (*columns, "GMACs", "kernels"):
        table.add_column(col, justify="left" if col in ("model", "format") else "right")
    for m in result.models:
        cells = [
            text(m.model),
            text(m.format),
            fmt(m.ms) if m.error is None else f"[red]{text(m.error)}[/red]",
            _interval(m.low_ms, m.high_ms),
        ]
        if measured:
            ratio = m.measured_ms / m.ms if m.measured_ms is not None and m.ms else None
            cells += [fmt(m.measured_ms), fmt(ratio, 2)]
        table.add_row(*cells, fmt(m.macs / 1e9 if m.macs else None), str(len(m.kernels)))
    console.print(table)
    sources = {(m.format, m.kernels_from) for m in result.models if m.kernels_from}
    for fmt_name, source in sorted(sources):
        _say(f"{fmt_name} kernels: {source}")
    for fmt_name in sorted({m.format for m in result.models if m.ms is not None}):
        factors = [
            m.ms / m.kernel_ms
            for m in result.models
            if m.format == fmt_name and m.ms is not None and m.kernel_ms
        ]
        _say(
            f"{fmt_name} network stage: kernel sums x{min(factors):.2f} to x{max(factors):.2f}"
            if factors
            else f"{fmt_name} network stage: none (the kernel sums as predicted)"
        )


def _interval(low: float | None, high: float | None) -> str:
    """``low-high`` of a prediction interval; "-" without one (a predictor file from before
    intervals), "unbounded" where its build had too few kernel models to bound it."""
    if low is None or high is None:
        return "-"
    if not math.isfinite(high):
        return "unbounded"
    return f"{fmt(low)}-{fmt(high)}"
