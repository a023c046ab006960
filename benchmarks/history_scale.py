"""How fast ``bench history`` answers over a large results folder, thanks to its index.

Writes ``--runs`` synthetic run folders (10,000) to a temporary folder, as ``bench run`` lays
them out (``runs.csv`` from ``RunRow``s, ``run.json``), each run on one of ``--devices`` devices
with ``--models`` models in two formats. Then:

* builds the index once (every folder read; ``history/index.py``), and times it;
* times ``bench history --device D --model M --format F`` (one series of runs/devices points;
  its table shows the newest 30, ``--last 0`` all of them, ``--json`` holds all),
  ``bench history --device D --json`` and ``bench gate`` over every series, each the whole command
  (index check of every folder, query, change points, table or JSON) in this process, and
  ``bench history --device D --model M --format F`` once more in a fresh Python process
  (interpreter and imports included);
* adds one run folder and times the update that reads it alone.

Issue 28's goal: ``bench history`` over 10,000 runs answers in under 2 s on this machine.

Run from the repository root (the folders take a minute or two to write and index)::

    .venv/bin/python benchmarks/history_scale.py
    .venv/bin/python benchmarks/history_scale.py --runs 1000     # smoke, seconds
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import common
import numpy as np
from click.testing import CliRunner

from benchharness.cli import common as common_cli
from benchharness.cli.history import gate_cmd, history_cmd
from benchharness.history.index import HistoryIndex
from benchharness.results.schema import RUNS_COLUMNS, RunRow
from benchharness.results.store import rows_to_csv

#: Issue 28's goal for one ``bench history`` query over 10,000 runs.
GOAL_S = 2.0
#: Formats every synthetic run measures each model in.
FORMATS = ("onnx", "tflite")
#: Process medians per row, and their spread (log sd).
PROCESSES, NOISE = 5, 0.02
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def run_id(i: int) -> str:
    return (EPOCH + timedelta(minutes=i)).strftime("%Y%m%d-%H%M%S-") + f"{i % 65536:04x}"


def synthetic_rows(i: int, device: str, models: int, rng: np.random.Generator) -> list[RunRow]:
    """One run's rows: every model in every format, around a level that steps every 500 runs."""
    started = (EPOCH + timedelta(minutes=i)).isoformat(timespec="seconds")
    rows = []
    for m in range(models):
        for fmt in FORMATS:
            level = (1.0 + m) * (1.05 ** ((i // 500) % 3))
            medians = sorted(level * np.exp(rng.normal(0.0, NOISE, PROCESSES)))
            median = float(np.median(medians))
            half = 2.776 * float(np.std(np.log(medians), ddof=1)) / math.sqrt(PROCESSES)
            rows.append(RunRow.from_values({
                "schema_version": 2, "run_id": run_id(i), "job_id": f"{device}|m{m}|{fmt}",
                "device": device, "transport": "local", "runtime": f"rt-{fmt}",
                "runtime_version": "1.0", "format": fmt, "precision": "fp32", "model": f"m{m}",
                "threads": 4, "status": "ok", "processes": PROCESSES, "median_ms": median,
                "ci95_low_ms": median * math.exp(-half), "ci95_high_ms": median * math.exp(half),
                "process_medians_ms": [float(v) for v in medians],
                "artifact_sha256": f"{m:02d}" * 32, "cpu_model": "Synthetic",
                "harness_version": "0.1.0", "started_at": started, "finished_at": started,
            }))  # fmt: skip
    return rows


def write_results(results: Path, runs: int, devices: int, models: int) -> None:
    """The run folders, written plainly (no fsync: this measures reading them)."""
    rng = np.random.default_rng(28)
    for i in range(runs):
        folder = results / run_id(i)
        folder.mkdir(parents=True)
        device = f"dev{i % devices}"
        rows = synthetic_rows(i, device, models, rng)
        (folder / "runs.csv").write_text(rows_to_csv(RUNS_COLUMNS, rows), encoding="utf-8")
        meta = {"run_id": folder.name, "created": rows[0].started_at,
                "host": {"hostname": "bench", "platform": "Linux", "python": "3.11"}}  # fmt: skip
        (folder / "run.json").write_text(json.dumps(meta), encoding="utf-8")


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def cli(command: Any, args: list[str]) -> Any:
    """A command run in this process, its output rendered in full but kept off the screen."""
    common_cli.console.file = io.StringIO()
    result = CliRunner().invoke(command, args, catch_exceptions=False)
    if result.exit_code not in (0, 1):
        raise SystemExit(f"{command.name} {args} exited {result.exit_code}: {result.output}")
    return result


def fresh_process(results: Path, args: list[str]) -> float:
    """``bench history`` in a new interpreter, imports and all (as a user types it)."""
    code = (
        "import sys; from benchharness.cli.history import history_cmd; "
        "history_cmd.main(sys.argv[1:], standalone_mode=True)"
    )
    env = {**os.environ, "PYTHONPATH": str(common.ROOT)}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args, "--results-dir", str(results)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench history failed: {proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write the folders here, kept")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="history-scale-") as tmp:
        results = args.keep or Path(tmp) / "results"
        write_s, _ = timed(lambda: write_results(results, args.runs, args.devices, args.models))
        with HistoryIndex.open(results) as index:
            build_s, built = timed(index.update)
        one = ["--device", "dev1", "--model", "m1", "--format", "onnx"]
        figures: list[tuple[str, float]] = [
            (f"write {args.runs} run folders (not part of the query)", write_s),
            (f"build the index (reads {len(built.read)} folders, once)", build_s),
        ]
        for label, command, extra in (
            ("bench history --device dev1 --model m1 --format onnx", history_cmd, one),
            ("bench history --device dev1 --model m1 --format onnx --json", history_cmd,
             [*one, "--json"]),
            ("bench history --device dev1 --model m1 --format onnx --last 0 (every row)",
             history_cmd, [*one, "--last", "0"]),
            ("bench history --device dev1 --json (every model and format)", history_cmd,
             ["--device", "dev1", "--json"]),
            ("bench gate (every series)", gate_cmd, []),
        ):  # fmt: skip
            started = time.perf_counter()
            cli(command, [*extra, "--results-dir", str(results)])
            figures.append((label + "  [in process]", time.perf_counter() - started))
        figures.append((
            "bench history --device dev1 --model m1 --format onnx  [fresh process]",
            fresh_process(results, one),
        ))  # fmt: skip
        extra_run = args.runs
        write_results_one(results, extra_run, args)
        with HistoryIndex.open(results) as index:
            update_s, update = timed(index.update)
        figures.append((f"update after one new run (reads {len(update.read)} folder)", update_s))

    points = args.runs // args.devices
    print(
        f"{args.runs} runs x {args.models} models x {len(FORMATS)} formats on {args.devices} "
        f"devices ({points} points per series)\n"
    )
    common.print_table(["step", "seconds"], [[label, s] for label, s in figures])
    query = next(s for label, s in figures if label.endswith("onnx  [in process]"))
    print(
        f"\ngoal (bench history under {GOAL_S:g} s over {args.runs} runs): "
        + ("met" if query < GOAL_S else "NOT met")
    )


def write_results_one(results: Path, i: int, args: argparse.Namespace) -> None:
    """One more run folder after the index was built (as the next ``bench run`` would add)."""
    folder = results / run_id(i)
    folder.mkdir()
    rows = synthetic_rows(i, f"dev{i % args.devices}", args.models, np.random.default_rng(i))
    (folder / "runs.csv").write_text(rows_to_csv(RUNS_COLUMNS, rows), encoding="utf-8")


if __name__ == "__main__":
    main()
