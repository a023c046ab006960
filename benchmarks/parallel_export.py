"""How much sooner a fresh machine's exports end on worker processes (issue 29): the same zoo
models prepared into an empty cache with ``--export-jobs 1`` and then with the default.

Run from the repository root::

    .venv/bin/python benchmarks/parallel_export.py [--models a,b] [--formats onnx,tflite]
        [--jobs N] [--json]

Each pass is ``prepare_artifacts`` as ``bench export`` and ``bench run`` call it (export, verify,
cost) into its own empty temporary cache, so neither finds the other's artifacts. Prints each
pass's wall time, the ratio, whether both gave the same artifacts (sha256 and cost), and the
load average before and after: another process busy on the cores changes both figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

from benchharness.plan.artifacts import Artifact, prepare_artifacts
from benchharness.plan.parallel_export import default_jobs
from benchharness.zoo.registry import resolve_models

#: Six small zoo models: a few seconds to a minute of export each on a laptop-class CPU, so the
#: two passes take minutes, not the whole zoo's half hour.
DEFAULT_MODELS = (
    "student_net,squeezenet1_1,shufflenet_v2_x0_5,mobilenet_v3_small,mnasnet1_0,mobilenetv1_100"
)


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def prepare(models: str, formats: list[str], jobs: int, verbose: bool) -> dict[str, Any]:
    """One pass into an empty cache: its wall time and what it produced."""
    with tempfile.TemporaryDirectory(prefix="bench-parallel-export-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()

        def stage(text: str) -> None:
            if verbose:
                print(f"  [{time.perf_counter() - start:7.1f} s] {text}", file=sys.stderr)

        arts = prepare_artifacts(
            resolve_models(models), formats, root=root, log_path=root / "export.log",
            stage=stage, export_jobs=jobs,
        )  # fmt: skip
        wall = time.perf_counter() - start
    return {"jobs": jobs, "wall_s": wall, "artifacts": [_summary(a) for a in arts]}


def _summary(art: Artifact) -> tuple[Any, ...]:
    return (art.model, art.format, art.precision, art.sha256, art.error, sorted(art.cost.items()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--models", default=DEFAULT_MODELS, help="zoo names or module:function")
    p.add_argument("--formats", default="onnx,tflite")
    p.add_argument("--jobs", type=int, default=default_jobs(), help="the parallel pass's workers")
    p.add_argument("--verbose", action="store_true", help="each pass's progress on stderr")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    before = load()
    passes = [prepare(args.models, formats, jobs, args.verbose) for jobs in (1, args.jobs)]
    after = load()
    sequential, parallel = passes
    same = sequential["artifacts"] == parallel["artifacts"]
    errors = sum(a[4] is not None for a in parallel["artifacts"])
    ratio = sequential["wall_s"] / parallel["wall_s"]
    report = {
        "models": args.models, "formats": formats, "cores": os.cpu_count(),
        "load_before": before, "load_after": after,
        "passes": [{"export_jobs": r["jobs"], "wall_s": r["wall_s"]} for r in passes],
        "speedup": ratio, "same_artifacts": same, "failed_artifacts": errors,
    }  # fmt: skip
    if args.json:
        common.print_json(report)
        return 0 if same else 1
    print(f"models: {args.models} ({', '.join(formats)}); {os.cpu_count()} cores")
    print(f"load average before: {before}; after: {after}")
    common.print_table(
        ("--export-jobs", "wall s"), [(r["jobs"], f"{r['wall_s']:.1f}") for r in passes]
    )
    print(f"speed-up (sequential / parallel): {ratio:.2f}x")
    print(f"same artifacts (sha256, cost, errors): {'yes' if same else 'NO'}; failed: {errors}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
