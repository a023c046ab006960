"""The ``bench`` command: parses arguments, calls library functions, prints tables.

Expected failures (HarnessError) are printed as ``Type: message`` on stderr with exit status 1 and
no traceback; bad usage exits 2.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import click
from rich.console import Console
from rich.table import Table

from benchharness import __version__
from benchharness.errors import HarnessError, UsageError

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


def results_dir_option(func: Any) -> Any:
    return click.option(
        "--results-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("BENCH_RESULTS_DIR", "results"),
        show_default="results (or $BENCH_RESULTS_DIR)",
        help="Folder holding one sub-folder per run.",
    )(func)


def json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(
        func
    )


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def _fmt(value: Any, digits: int = 3) -> str:
    if value in (None, ""):
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


#: --formats of export and run: the default pair runs on every device kind; torch is opt-in.
formats_option = click.option(
    "--formats",
    default="onnx,tflite",
    show_default=True,
    help="onnx, tflite, torch (PyTorch eager on a torch.export .pt2; needs torch on the device).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bench")
def cli() -> None:
    """benchharness: export, dispatch and time neural networks on devices; compare the numbers."""


# ---------------------------------------------------------------- bench models


@cli.command("models")
@json_option
def models_cmd(as_json: bool) -> None:
    """List the zoo: name, source, input shape, classes, MACs and params."""
    from benchharness.export.cache import cache_dir
    from benchharness.prepare import torch_cost
    from benchharness.zoo.registry import load_zoo

    rows = []
    with console.status("counting MACs (cached after the first time)"):
        for spec in load_zoo().values():
            cost = torch_cost(spec, cache_dir())
            rows.append(
                {"model": spec.name, "source": spec.source, "input_shape": spec.input_shape_str,
                 "classes": spec.classes, "macs": cost["macs"], "params": cost["params"]}
            )  # fmt: skip
    if as_json:
        print_json(rows)
        return
    table = Table(title="The zoo (random weights; MACs in the paper convention)")
    for col in ("model", "source", "input", "classes", "GMACs", "params (M)"):
        table.add_column(col, justify="right" if col not in ("model", "source") else "left")
    for r in rows:
        table.add_row(
            r["model"], r["source"], r["input_shape"], str(r["classes"]),
            f"{r['macs'] / 1e9:.3f}", f"{r['params'] / 1e6:.3f}",
        )  # fmt: skip
    console.print(table)


# ---------------------------------------------------------------- bench export


def _split(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _formats(text: str) -> tuple[str, ...]:
    from benchharness.export.pipeline import FORMATS

    formats = _split(text)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"--formats {text!r}: choose from {', '.join(FORMATS)}")
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


def _variants(kw: dict[str, Any]) -> dict[str, Any]:
    """The parsed values of variant_options, as RunRequest fields."""
    from benchharness.export.quantize import parse_precisions
    from benchharness.zoo.variants import parse_resolutions, parse_widths

    return {
        "precisions": parse_precisions(kw["precision"]),
        "calibration": kw["calibration"],
        "resolutions": parse_resolutions(kw["resolution"]) if kw["resolution"] else (),
        "widths": parse_widths(kw["width"]) if kw["width"] else (),
    }


@cli.command("export")
@click.option("--models", "models", required=True, help="all, a,b, module:function")
@formats_option
@click.option("--input-shape", default=None, help="e.g. 1x3x160x160 (overrides the zoo's)")
@variant_options
@json_option
def export_cmd(
    models: str, formats: str, input_shape: str | None, as_json: bool, **variant: Any
) -> None:
    """Export (and verify) models without running them."""
    from benchharness.export.cache import cache_dir
    from benchharness.export.quantize import Calibration
    from benchharness.prepare import prepare_artifacts
    from benchharness.zoo.registry import ModelSpec, parse_shape, resolve_models
    from benchharness.zoo.variants import expand_variants

    shape = parse_shape(input_shape) if input_shape else None
    opts = _variants(variant)
    refs = [r for r in resolve_models(models, input_shape=shape) if isinstance(r, ModelSpec)]
    swept = expand_variants(refs, resolutions=opts["resolutions"], widths=opts["widths"])
    refs = [r for r in swept if isinstance(r, ModelSpec)]
    calibration = Calibration(npy=Path(opts["calibration"])) if opts["calibration"] else None
    log = cache_dir() / "export.log"
    with console.status("exporting") as status:
        arts = prepare_artifacts(
            refs, _formats(formats), log_path=log, stage=lambda t: status.update(t),
            precision=opts["precisions"], calibration=calibration,
        )  # fmt: skip
    rows: list[dict[str, Any]] = [
        {"model": a.model, "format": a.format, "precision": a.precision,
         "path": str(a.path) if a.path else None,
         "max_abs_err": a.max_abs_err, "tolerance": a.tolerance, "error": a.error}
        for a in arts
    ]  # fmt: skip
    if as_json:
        print_json(rows)
    else:
        table = Table(title=f"Exports (converter log: {log})")
        cols = ("model", "format", "precision", "max_abs_err", "tolerance", "status", "artifact")
        for col in cols:
            table.add_column(col)
        for r in rows:
            ok = r["error"] is None and (r["max_abs_err"] or 0) <= (r["tolerance"] or 0)
            table.add_row(
                str(r["model"]), str(r["format"]), str(r["precision"]), _fmt(r["max_abs_err"], 9),
                _fmt(r["tolerance"], 9),
                "ok" if ok else f"[red]{r['error'] or 'disagrees with PyTorch'}[/red]",
                str(r["path"] or "-"),
            )  # fmt: skip
        console.print(table)
    if any(r["error"] for r in rows):
        sys.exit(EXIT_FAILURE)


# ---------------------------------------------------------------- bench run


@cli.command("run")
@click.option(
    "--device",
    "devices",
    multiple=True,
    default=("local",),
    show_default=True,
    help="Profile name or path to a .toml; repeat for several devices at once.",
)
@click.option(
    "--models", default=None, help="all | a,b | module:function | path.onnx | path.tflite"
)
@formats_option
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads per runtime (default: the profile's, else all cores).",
)
@click.option("--affinity", default=None, help="taskset mask, e.g. f0 (default: the profile's).")
@click.option("--quick", is_flag=True, help="64 inferences and 5 s, one process (METHOD.md).")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Fresh runner processes per model (default 3, 1 with --quick).",
)
@click.option("--input-shape", default=None, help="e.g. 1x3x160x160 (overrides the zoo's).")
@click.option("--no-ops", is_flag=True, help="Skip the per-operator profiling pass.")
@click.option(
    "--resume", "resume", default=None, metavar="RUN_ID", help="Finish an interrupted run."
)
@click.option(
    "--timeout", "timeout_s", type=float, default=None, help="Seconds per runner process."
)
@click.option("--min-time", "min_s", type=float, default=None, hidden=True)
@click.option("--min-runs", "min_n", type=int, default=None, hidden=True)
@click.option("--max-time", "max_s", type=float, default=None, hidden=True)
@click.option("--warmup-time", "warmup_min_s", type=float, default=None, hidden=True)
@click.option("--seed", type=int, default=None, help="Seed of the interleaving order.")
@variant_options
@click.option("--force", is_flag=True, help="Run models that fail `bench check` on the device.")
@results_dir_option
@json_option
def run_cmd(**kw: Any) -> None:
    """Export, dispatch and time models on devices; write results/RUN_ID/*.csv."""
    from benchharness.runflow import RunRequest, run

    request = RunRequest(
        devices=tuple(kw["devices"]),
        models=kw["models"],
        formats=_formats(kw["formats"]),
        threads=kw["threads"],
        affinity=kw["affinity"],
        quick=kw["quick"],
        processes=kw["processes"],
        input_shape=kw["input_shape"],
        profile_ops=not kw["no_ops"],
        resume=kw["resume"],
        timeout_s=kw["timeout_s"],
        min_n=kw["min_n"],
        min_s=kw["min_s"],
        max_s=kw["max_s"],
        warmup_min_s=kw["warmup_min_s"],
        seed=kw["seed"],
        results_dir=kw["results_dir"],
        force=kw["force"],
        **_variants(kw),
    )
    from benchharness.display import RichReporter

    with RichReporter(console) as reporter:
        store = run(request, reporter=reporter)
    show_results(store.runs, store.run_id, kw["as_json"], store.path)
    if any(r.get("status") != "ok" for r in store.runs):
        sys.exit(EXIT_FAILURE)


# ---------------------------------------------------------------- bench results


def summary_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = (
        "device", "model", "format", "precision", "runtime", "threads", "status", "error",
        "n", "median_ms", "p90_ms", "cold_ms", "macs", "gmacs_per_s", "flags", "max_abs_err",
    )  # fmt: skip
    return [{k: _typed(r.get(k)) for k in keys} for r in runs]


def _typed(value: Any) -> Any:
    """CSV cells and in-memory rows print the same: numbers as numbers, empty as null."""
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            continue
    return value


def show_results(runs: Sequence[dict[str, Any]], run_id: str, as_json: bool, path: Path) -> None:
    rows = sorted(
        summary_rows(runs), key=lambda r: (str(r["device"]), str(r["model"]), str(r["format"]))
    )
    if as_json:
        print_json({"run_id": run_id, "path": str(path), "rows": rows})
        return
    table = Table(title=f"Run {run_id}  ({path})")
    for col in ("device", "model", "format", "median ms", "p90 ms", "GMACs", "GMAC/s", "status"):
        table.add_column(
            col, justify="left" if col in ("device", "model", "format", "status") else "right"
        )
    flagged = []
    for r in rows:
        flags = str(r.get("flags") or "")
        status = str(r.get("status") or "")
        mark = " [yellow]![/yellow]" if flags else ""
        if flags:
            flagged.append((r, flags))
        table.add_row(
            str(r["device"]), str(r["model"]), str(r["format"]),
            _fmt(r["median_ms"]) + mark, _fmt(r["p90_ms"]),
            _fmt(float(r["macs"]) / 1e9 if r.get("macs") not in (None, "") else None),
            _fmt(r["gmacs_per_s"], 2),
            "ok" if status == "ok" else f"[red]{status}: {r.get('error') or ''}[/red]",
        )  # fmt: skip
    console.print(table)
    if flagged:
        from benchharness.stats import FLAG_ADVICE

        console.print("[yellow]! shaky numbers: these measurements raised flags[/yellow]")
        seen: set[str] = set()
        for r, flags in flagged:
            console.print(f"  {r['device']} {r['model']} {r['format']}: {flags.replace(';', ', ')}")
            seen.update(f for f in flags.split(";") if f)
        for flag in sorted(seen):
            console.print(f"  [bold]{flag}[/bold]: {FLAG_ADVICE.get(flag, '')}")


@cli.command("results")
@click.argument("run_id", required=False)
@results_dir_option
@json_option
def results_cmd(run_id: str | None, results_dir: Path, as_json: bool) -> None:
    """Summary table of a run (the newest when RUN_ID is left out)."""
    from benchharness.store import RunStore, list_runs

    if run_id is None:
        runs = list_runs(results_dir)
        if not runs:
            raise UsageError(f"no runs in {results_dir}; start one with `bench run`")
        run_id = runs[-1]
    store = RunStore.open(results_dir, run_id)
    show_results(store.runs, store.run_id, as_json, store.path)


# ---------------------------------------------------------------- bench import


@cli.command("ops")
@click.argument("run_id")
@click.option("--model", required=True, help="Model whose operators to show.")
@click.option("--format", "fmt", default=None, help="onnx or tflite (default: both).")
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True)
@results_dir_option
@json_option
def ops_cmd(
    run_id: str, model: str, fmt: str | None, top: int, results_dir: Path, as_json: bool
) -> None:
    """Top operators by time, and time vs MACs vs bytes per operator type."""
    from benchharness.opsview import op_summary
    from benchharness.store import RunStore

    store = RunStore.open(results_dir, run_id)
    summaries = op_summary(store.ops, model=model, fmt=fmt, top=top)
    if as_json:
        print_json(summaries)
        return
    for s in summaries:
        table = Table(title=f"{s['model']} {s['format']} on {s['device']}: top operators by time")
        for col in ("#", "operator", "type", "us", "time %", "MMACs", "KB"):
            table.add_column(col, justify="left" if col in ("operator", "type") else "right")
        for o in s["top"]:
            share = float(o["share"]) * 100 if o.get("share") not in (None, "") else None
            macs = float(o["macs"]) / 1e6 if o.get("macs") not in (None, "") else None
            kb = float(o["bytes"]) / 1024 if o.get("bytes") not in (None, "") else None
            table.add_row(
                str(o["op_index"]), str(o["op_name"])[:48], str(o["op_type"]),
                _fmt(o["median_us"], 1), _fmt(share, 1), _fmt(macs, 2), _fmt(kb, 1),
            )  # fmt: skip
        console.print(table)
        types = Table(title="by operator type: share of time next to share of MACs and bytes")
        for col in ("type", "count", "time %", "MACs %", "bytes %", "GMAC/s"):
            types.add_column(col, justify="left" if col == "type" else "right")
        for t in s["by_type"]:
            pct = [
                None if t[k] is None else t[k] * 100
                for k in ("time_share", "macs_share", "bytes_share")
            ]
            types.add_row(
                t["op_type"], str(t["count"]), _fmt(pct[0], 1), _fmt(pct[1], 1), _fmt(pct[2], 1),
                _fmt(t["gmacs_per_s"], 1),
            )  # fmt: skip
        console.print(types)


@cli.command("import")
@click.argument("kind", type=click.Choice(["benchmark-model", "ort-perf-test"]))
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
@results_dir_option
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
    """Import a log captured by hand with benchmark_model or onnxruntime_perf_test."""
    from benchharness.importer import import_log, summary_line

    store = import_log(
        kind,  # type: ignore[arg-type]  # click.Choice has checked it
        log, device=device, model=model, results_dir=results_dir, run_id=run_id,
        profile_json=profile_json, precision=precision,
    )  # fmt: skip
    click.echo(store.run_id)
    click.echo(summary_line(store))


# ---------------------------------------------------------------- bench compare

_VERDICT_STYLE = {"slower": "red", "faster": "green", "same": "", "unreliable": "yellow"}


@cli.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option(
    "--fail-on",
    "fail_on",
    default=None,
    metavar="median:PCT",
    help="Exit 1 on a significant slowdown beyond PCT, e.g. median:5%.",
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
@results_dir_option
@json_option
def compare_cmd(
    run_a: str,
    run_b: str,
    fail_on: str | None,
    threshold: str | None,
    allow_mismatch: bool,
    results_dir: Path,
    as_json: bool,
) -> None:
    """Compare run RUN_B against run RUN_A: ratio of medians, its CI, p-value and verdict."""
    from benchharness.compare import (
        DEFAULT_THRESHOLD,
        compare_run_ids,
        gate,
        parse_fail_on,
        parse_threshold,
    )

    gate_threshold = parse_fail_on(fail_on) if fail_on else None
    result = compare_run_ids(
        results_dir,
        run_a,
        run_b,
        threshold=parse_threshold(threshold) if threshold else DEFAULT_THRESHOLD,
        allow_mismatch=allow_mismatch,
    )
    failed = gate_threshold is not None and gate(result, gate_threshold)
    if as_json:
        print_json({**result.to_dict(), "gate_threshold": gate_threshold, "gate_failed": failed})
    else:
        table = Table(title=f"{result.run_b} vs {result.run_a}")
        for col in ("model", "format", "A ms", "B ms", "B/A [95% CI]", "p"):
            table.add_column(col, justify="left" if col in ("model", "format") else "right")
        table.add_column("verdict")
        for m in result.matches:
            ratio = "-" if m.ratio is None else f"{m.ratio:.3f}"
            if m.ci_low is not None and m.ci_high is not None:
                ratio += f" [{m.ci_low:.3f}, {m.ci_high:.3f}]"
            p = "-" if m.p_value is None else f"{m.p_value:.2g}"
            if m.p_value is not None and m.p_value < 1e-4:
                p = "<1e-4"
            style = _VERDICT_STYLE.get(m.verdict, "")
            verdict = f"[{style}]{m.verdict}[/{style}]" if style else m.verdict
            fmt = f"{m.format}/{m.precision}"
            table.add_row(m.model, fmt, _fmt(m.median_a_ms), _fmt(m.median_b_ms), ratio, p,
                          verdict)  # fmt: skip
        console.print(table)
        if result.geomean_ratio is not None:
            console.print(
                f"geometric mean of ratios B/A over {result.geomean_n} models: "
                f"{result.geomean_ratio:.3f} (change called at p < 0.01 and "
                f">= {result.threshold:.0%})"
            )
        for warning in result.warnings:
            console.print(f"[yellow]! {warning}[/yellow]")
        notes: dict[str, list[str]] = {}
        for m in result.matches:
            for note in m.notes:
                notes.setdefault(note, []).append(m.model)
        for note, models in notes.items():
            console.print(f"  note: {note} ({', '.join(models)})")
    if failed:
        slow = [m.label for m in result.matches if m.significant_slowdown(gate_threshold or 0.0)]
        print(
            f"GateFailed: significant slowdown beyond {fail_on} in {', '.join(slow)}; "
            "investigate before merging, or rerun both on a quiet machine if unexpected",
            file=sys.stderr,
        )
        # sys.exit, not click's Exit: main() runs click with standalone_mode=False, which turns
        # Exit into a return value and would lose the status
        sys.exit(EXIT_FAILURE)


# ---------------------------------------------------------------- bench devices


@cli.group("devices", invoke_without_command=True)
@json_option
@click.pass_context
def devices_cmd(ctx: click.Context, as_json: bool) -> None:
    """List device profiles; `check D` reaches one, `trust D` trusts its SSH host key."""
    if ctx.invoked_subcommand is not None:
        return
    from benchharness.devices.profile import available_profiles, load_profile

    rows = []
    for name, path in available_profiles().items():
        try:
            p = load_profile(str(path))
            rows.append({"name": name, "transport": p.transport, "description": p.description,
                         "path": str(path), "error": None})  # fmt: skip
        except HarnessError as exc:  # one broken profile must not hide the others
            rows.append({"name": name, "transport": "?", "description": "", "path": str(path),
                         "error": str(exc)})  # fmt: skip
    if as_json:
        print_json(rows)
        return
    table = Table(title="Device profiles (bench devices check NAME to reach one)")
    for col in ("name", "transport", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["transport"], r["error"] or r["description"])
    console.print(table)


@devices_cmd.command("check")
@click.argument("device")
@json_option
def devices_check_cmd(device: str, as_json: bool) -> None:
    """Reach DEVICE; show OS, CPU, clocks, temperature, free space and runtimes."""
    from benchharness.devices.check import check_device
    from benchharness.devices.profile import load_profile
    from benchharness.transport import open_transport

    profile = load_profile(device)
    with open_transport(profile) as transport:
        report = check_device(profile, transport)
    if as_json:
        print_json(report.to_dict())
    else:
        table = Table(title=f"{profile.name} ({profile.transport})", show_header=False)
        table.add_column("what")
        table.add_column("value")
        ghz = [f"{f / 1e6:.2f}" if f else "?" for f in report.max_freq_khz]
        rows = [
            ("reachable", "yes" if report.reachable else f"no: {report.error}"),
            ("os", report.os), ("soc", report.soc), ("cpu", report.cpu_model),
            ("cores", report.cores), ("max GHz", " ".join(ghz) or None),
            ("governors", " ".join(sorted({g or "?" for g in report.governors})) or None),
            ("temperatures °C", ", ".join(f"{k} {v:.1f}" for k, v in
                                          report.temperatures_c.items()) or None),
            ("free in workdir", f"{report.free_bytes / 2**30:.2f} GiB ({report.workdir})"
             if report.free_bytes is not None else None),
        ]  # fmt: skip
        rows += [
            (f"runtime {name}", ("ok: " if rt.present else "MISSING: ") + rt.detail)
            for name, rt in report.runtimes.items()
        ]
        for what, value in rows:
            if value is not None:
                table.add_row(what, str(value))
        console.print(table)
    if not report.reachable:
        sys.exit(EXIT_FAILURE)  # not click's Exit: see compare_cmd


@devices_cmd.command("trust")
@click.argument("device")
def devices_trust_cmd(device: str) -> None:
    """Fetch DEVICE's SSH host key and add it to its known_hosts (check the fingerprint!)."""
    from benchharness.devices.profile import load_profile
    from benchharness.transport.ssh import DEFAULT_KNOWN_HOSTS, trust_host

    profile = load_profile(device)
    if profile.transport != "ssh":
        raise UsageError(f"{profile.name} uses {profile.transport}, not ssh: nothing to trust")
    described = trust_host(profile)
    where = profile.known_hosts or os.path.expanduser(DEFAULT_KNOWN_HOSTS)
    click.echo(f"{profile.host}:{profile.port} {described} is trusted in {where}")
    click.echo("Compare this fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` "
               "on the device; if it differs, remove the line again.")  # fmt: skip


# ---------------------------------------------------------------- bench report


@cli.command("report")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID...")
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="report.html (one self-contained file) or report.md (+ report_files/).",
)
@results_dir_option
@json_option
def report_cmd(run_ids: tuple[str, ...], out: Path, results_dir: Path, as_json: bool) -> None:
    """Latency-vs-FLOPs report of one or more runs, as HTML or Markdown."""
    from benchharness.report import write_report
    from benchharness.report.analysis import headline
    from benchharness.report.tables import ratio_text

    with console.status("analysing and plotting"):
        result = write_report(run_ids, results_dir, out)
    rows = headline(result.analysis)
    if as_json:
        print_json({"path": str(result.path), "images": [str(p) for p in result.images],
                    "headline": rows, "flagged": len(result.analysis.flagged)})  # fmt: skip
        return
    table = Table(title="Does latency follow MACs? (rank correlations)")
    for col in ("device", "runtime", "format", "n", "ρ MACs", "τ MACs", "slope", "ρ bytes"):
        table.add_column(col, justify="left" if col in ("device", "runtime", "format") else "right")
    for r in rows:
        table.add_row(
            r["device"], r["runtime"], r["format"], str(r["models"]), _fmt(r["spearman_macs"]),
            _fmt(r["kendall_macs"]), _fmt(r["slope_macs"], 2), _fmt(r["spearman_bytes"]),
        )  # fmt: skip
    console.print(table)
    for r in rows:
        off = ", ".join(f"{o['model']} {ratio_text(o['ratio'])}" for o in r["furthest_off_fit"])
        if off:
            console.print(f"  {r['device']} {r['runtime']} ({r['format']}) off the fit: {off}")
    if result.analysis.flagged:
        console.print(f"[yellow]! {len(result.analysis.flagged)} flagged measurement(s), "
                      "marked in the report[/yellow]")  # fmt: skip
    extra = f" (+ {len(result.images)} images)" if result.images else ""
    console.print(f"report: {result.path}{extra}")


# ---------------------------------------------------------------- bench check


@cli.command("check")
@click.option(
    "--device",
    "devices",
    multiple=True,
    required=True,
    help="Profile name or path to a .toml; repeat for several devices.",
)
@click.option("--models", required=True, help="all | a,b | module:function | .onnx | .tflite")
@click.option("--input-shape", default=None, help="e.g. 1x3x160x160 (overrides the zoo's).")
@variant_options
@json_option
def check_cmd(devices: tuple[str, ...], models: str, input_shape: str | None, as_json: bool,
              **variant: Any) -> None:  # fmt: skip
    """Check models against a device's constraints (operators, model, activation, layer bytes)."""
    from benchharness.check import check_models, fmt_bytes
    from benchharness.devices.profile import load_profile
    from benchharness.zoo.registry import parse_shape, resolve_models
    from benchharness.zoo.variants import expand_variants

    opts = _variants(variant)
    profiles = [load_profile(d) for d in devices]
    shape = parse_shape(input_shape) if input_shape else None
    refs = expand_variants(resolve_models(models, input_shape=shape),
                           resolutions=opts["resolutions"], widths=opts["widths"])  # fmt: skip
    results = []
    with console.status("checking") as status:
        for profile in profiles:
            for ref in refs:
                status.update(f"{profile.name}: {ref.name}")
                results.extend(check_models(profile, [ref], opts["precisions"]))
    if as_json:
        print_json([r.to_json() for r in results])
    else:
        table = Table(title="Constraint check (weights at the precision; peak live activations)")
        cols = ("device", "model", "precision", "fits", "weights", "peak act.", "largest layer")
        for col in cols:
            table.add_column(col, justify="right" if col in ("weights", "peak act.") else "left")
        for r in results:
            layer = f"{r.max_layer} {fmt_bytes(r.max_layer_bytes)}" if r.max_layer else "-"
            table.add_row(
                r.device, r.model, r.precision,
                "[green]yes[/green]" if r.fits else "[red]no[/red]",
                fmt_bytes(r.model_bytes), fmt_bytes(r.activation_peak_bytes), layer,
            )  # fmt: skip
        console.print(table)
        for r in results:
            if r.fits:
                continue
            console.print(f"[red]{r.model}[/red] ({r.precision}) on {r.device}:")
            reasons = [v.describe() for v in r.violations] or [f"cannot check: {r.error}"]
            for reason in reasons:
                console.print(f"  - {reason}")
    if not all(r.fits for r in results):
        sys.exit(EXIT_FAILURE)


# ---------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> None:
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except HarnessError as exc:
        console.file.flush()
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILURE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else EXIT_FAILURE)
    except (KeyboardInterrupt, click.Abort):
        print(
            "Interrupted: every finished measurement is kept in its results folder; "
            "finish the run with `bench run --resume RUN_ID`",
            file=sys.stderr,
        )
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
