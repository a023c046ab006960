"""Does reading memory change the timing? The runner with its memory probe against the runner
with ``--no-memory``, in fresh processes taken in turns (issue 15; docs/method.md "Memory": outside
the timed region).

Run from the repository root on a quiet machine (``overhead.py --memory-probe`` runs this)::

    .venv/bin/python benchmarks/memory_overhead.py [--models a,b] [--processes 6] [--min-s 2]
    .venv/bin/python benchmarks/memory_overhead.py --models tests.support.tiny:tiny_cnn \
        --input-shape 1x3x32x32 --processes 2 --min-s 0.2                 # smoke, ~15 s

Every reading lies outside the timed loop (before the session, after init, after the last
inference), so the probe can only show up as process-to-process noise: the ratio of the medians
of process medians, with and without it, should stay within that noise (2-10 % across fresh
processes on ordinary machines, docs/method.md). ``read ms`` is what the readings themselves took
per
process (``Memory.read_ms``), none of it inside a timed inference.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import common

from benchharness.ondevice import protocol
from benchharness.runners.python import RUNNER_DIR, RUNNER_SCRIPT

#: Fresh processes per arm: enough for a median of process medians, a few minutes for the zoo.
DEFAULT_PROCESSES = 6
#: Seconds of timed inferences per process (at least 64 inferences, docs/method.md's quick count).
DEFAULT_MIN_S = 2.0
#: Seconds one runner process may take before the script gives up on it.
PROCESS_TIMEOUT_S = 600


def one_process(path: Path, fmt: str, threads: int, min_s: float, memory: bool) -> Any:
    argv = [sys.executable, str(RUNNER_DIR / RUNNER_SCRIPT), "--model", str(path), "--format",
            fmt, "--preset", "quick", "--min-s", str(min_s), "--warmup-min-s", "1"]  # fmt: skip
    if threads > 0:
        argv += ["--threads", str(threads)]
    if not memory:
        argv.append("--no-memory")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
    result = protocol.decode(out.stdout)
    if result is None or not result.ok:
        raise RuntimeError((result.error if result else None) or out.stderr[-400:])
    return result


def compare(path: Path, fmt: str, threads: int, processes: int, min_s: float) -> dict[str, Any]:
    with_probe: list[float] = []
    without: list[float] = []
    read_ms: list[float] = []
    for i in range(2 * processes):
        probe = i % 2 == (i // 2) % 2  # ABBA order: neither arm always runs first
        result = one_process(path, fmt, threads, min_s, probe)
        (with_probe if probe else without).append(statistics.median(result.samples_ms))
        if probe and result.memory is not None and result.memory.read_ms is not None:
            read_ms.append(result.memory.read_ms)
    a, b = statistics.median(with_probe), statistics.median(without)
    spread = (max(without) - min(without)) / b if b > 0 else None
    return {
        "with_probe_ms": a,
        "without_ms": b,
        "ratio": a / b if b > 0 else None,
        "process_spread": spread,
        "read_ms": statistics.median(read_ms) if read_ms else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--models", default=common.DEFAULT_MODELS, help="zoo names, module:fn, files")
    p.add_argument("--formats", default="onnx,tflite")
    p.add_argument("--input-shape", default=None, help="e.g. 1x3x160x160 (default: the zoo's)")
    p.add_argument("--threads", type=int, default=0, help="0 = the runner's default")
    p.add_argument("--processes", type=int, default=DEFAULT_PROCESSES, help="per arm")
    p.add_argument("--min-s", type=float, default=DEFAULT_MIN_S)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    rows: list[dict[str, Any]] = []
    for model, fmt, path in common.export_paths(args.models, formats, args.input_shape):
        print(f"{model} {fmt}: {args.processes} processes with the probe, {args.processes} "
              "without ...", file=sys.stderr)  # fmt: skip
        try:
            figures = compare(path, fmt, args.threads, args.processes, args.min_s)
            rows.append({"model": model, "format": fmt, **figures})
        except Exception as exc:  # one model's failure is a row, not the end of the script
            rows.append({"model": model, "format": fmt, "error": f"{type(exc).__name__}: {exc}"})
    if args.json:
        common.print_json(rows)
        return 0
    headers = ("model", "format", "with probe ms", "without ms", "ratio", "spread w/o", "read ms")
    table = [
        (r["model"], r["format"], r["with_probe_ms"], r["without_ms"], r["ratio"],
         r["process_spread"], r["read_ms"])
        if "error" not in r
        else (r["model"], r["format"], "ERROR", "-", "-", "-", "-")
        for r in rows
    ]  # fmt: skip
    print(
        "median of process medians with the memory probe and with --no-memory; 'spread w/o': "
        "(max - min) / median of the process medians without it, the noise the ratio sits in; "
        "'read ms': the probe's own readings per process, all outside the timed loop"
    )
    common.print_table(headers, table)
    for r in rows:
        if "error" in r:
            print(f"{r['model']} {r['format']}: {r['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
