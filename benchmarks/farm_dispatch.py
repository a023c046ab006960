"""A farm run of N devices on 2 workers against the slowest device alone (issue 17).

``bench run --scheduler`` sends every runner process to the ``bench worker`` that holds its
device, so N devices on the farm should finish in about the time of the slowest one alone. This
script starts a real ``dask scheduler`` and two ``bench worker`` processes on this machine
(``tests/support/farm.py``), gives them N devices between them (this host as ``local`` devices,
each pinned to a core of its own with ``threads = 1``), and per round runs

* each device alone through the farm, and alone without it (plain ``bench run``),
* all N at once through the farm,

then prints the wall times, ``farm / slowest`` (all N on the farm over the slowest device alone
on the farm; 1.0 = perfect overlap; the goal is <= 1.1), the same against the slowest device
without the farm, and the per-process dispatch overhead: the idle gap on a device between one
process ending and the next starting (the workers' own clocks), and (span - busy) / processes
of the coordinator (first send to last result, less the seconds the runners measured).

Run from the repository root::

    .venv/bin/python benchmarks/farm_dispatch.py                     # ~3-4 min
    .venv/bin/python benchmarks/farm_dispatch.py --models tests.support.tiny:tiny_cnn \\
        --input-shape 1x3x32x32 --formats onnx --min-time 0.3 --repeats 1   # smoke, ~1 min

The devices share this machine, so N is capped at its cores (one each); exports are made or
taken from the cache before any timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.support.farm: the real farm of the farm tests

from benchharness.api import RunRequest, run  # noqa: E402
from benchharness.errors import HarnessError  # noqa: E402
from benchharness.export.cache import cache_dir  # noqa: E402
from benchharness.plan.artifacts import prepare_artifacts  # noqa: E402
from benchharness.plan.options import Method, RunOptions  # noqa: E402
from benchharness.zoo.registry import parse_shape, resolve_models  # noqa: E402
from tests.support.farm import Scheduler, Worker, toml  # noqa: E402

#: Two small zoo models: a few ms per inference on one core, so a job is bounded by --min-time.
DEFAULT_MODELS = "mobilenet_v3_small,squeezenet1_1"
DEFAULT_FORMATS = "onnx,tflite"
#: Seconds of measuring per process: per-process fixed costs stay a minority of a job, and the
#: whole script stays at ~3-4 min.
DEFAULT_MIN_S = 1.0
#: Processes per job: more than one, so processes are dispatched between rounds too.
DEFAULT_PROCESSES = 2
#: Rounds of (each alone on the farm, each alone locally, all at once); order flips per round.
DEFAULT_REPEATS = 2
#: Device names private to this script (device locks are per name).
NAME = "farm-dev{}"


def make_profiles(tmp: Path, n: int) -> list[Path]:
    cores = sorted(os.sched_getaffinity(0))
    return [
        toml(
            tmp / f"{NAME.format(i)}.toml",
            {
                "name": NAME.format(i),
                "transport": "local",
                "threads": 1,
                "affinity": format(1 << cores[i], "x"),
                "description": f"this host, pinned to core {cores[i]}",
            },
        )
        for i in range(n)
    ]


def timed(devices: Sequence[Path], scheduler: str | None, args: argparse.Namespace,
          results: Path) -> dict[str, Any]:  # fmt: skip
    request = RunRequest(
        devices=tuple(p.stem if scheduler else str(p) for p in devices),
        models=args.models, formats=args.formats, input_shape=args.input_shape,
        options=RunOptions(
            method=Method(quick=True, min_s=args.min_time, warmup_min_s=args.warmup_time),
            processes=args.processes, profile_ops=False, seed=0,
        ),
        results_dir=results, scheduler=scheduler,
    )  # fmt: skip
    t0 = time.perf_counter()
    store = run(request)
    wall = time.perf_counter() - t0
    ok = bool(store.runs) and all(r.ok for r in store.runs)
    dispatch = store.meta.get("farm", {}).get("dispatch", {})
    medians = {f"{r.device} {r.model} {r.format}": r.median_ms for r in store.runs}
    span = max((d["span_s"] for d in dispatch.values()), default=float("nan"))
    return {"wall_s": wall, "span_s": span, "ok": ok, "dispatch": dispatch, "medians": medians}


def overhead_ms(runs: Sequence[dict[str, Any]]) -> dict[str, float]:
    nan = float("nan")
    gaps = [g for r in runs for d in r["dispatch"].values() for g in d["gap_ms"]]
    per_process = [
        (d["span_s"] - d["busy_s"]) / d["processes"] * 1e3
        for r in runs for d in r["dispatch"].values() if d["processes"]
    ]  # fmt: skip
    lanes = [d for r in runs for d in r["dispatch"].values()]
    first = [d["first_start_ms"] for d in lanes if d.get("first_start_ms") is not None]
    last = [d["last_return_ms"] for d in lanes if d.get("last_return_ms") is not None]
    return {
        "first_start_ms": statistics.median(first) if first else nan,
        "last_return_ms": statistics.median(last) if last else nan,
        "gap_median_ms": statistics.median(gaps) if gaps else nan,
        "gap_max_ms": max(gaps) if gaps else nan,
        "coordinator_per_process_ms": statistics.median(per_process) if per_process else nan,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=2, help="N devices (<= cores), default 2")
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"default {DEFAULT_MODELS}")
    p.add_argument("--formats", default=DEFAULT_FORMATS, help=f"default {DEFAULT_FORMATS}")
    p.add_argument("--input-shape", default=None, help="e.g. 1x3x32x32 (default: the zoo's)")
    p.add_argument("--min-time", type=float, default=DEFAULT_MIN_S, help="seconds per process")
    p.add_argument("--warmup-time", type=float, default=None, help="warm-up s (default 1 s)")
    p.add_argument("--processes", type=int, default=DEFAULT_PROCESSES)
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    p.add_argument("--json", dest="json_out", type=Path, default=None, help="write the numbers")
    args = p.parse_args(argv)
    args.formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    cores = len(os.sched_getaffinity(0))
    if not 2 <= args.devices <= cores:
        p.error(f"--devices must be 2..{cores} (one core each on this machine)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print("export (cached after the first time) ...", flush=True)
    shape = parse_shape(args.input_shape) if args.input_shape else None
    artifacts = prepare_artifacts(resolve_models(args.models, input_shape=shape), args.formats,
                                  log_path=cache_dir() / "export.log")  # fmt: skip
    failed = [f"{a.model} {a.format}: {a.error}" for a in artifacts if a.error]
    if failed:
        print("export failed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bh-farm-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["BENCH_LOCK_DIR"] = str(tmp / "locks-coordinator")  # the workers have theirs
        profiles = make_profiles(tmp, args.devices)
        half = (len(profiles) + 1) // 2
        scheduler = Scheduler(tmp)
        workers = [Worker(tmp, "w1", scheduler.address, profiles[:half]),
                   Worker(tmp, "w2", scheduler.address, profiles[half:])]  # fmt: skip
        try:
            for w in workers:
                w.wait_serving()
            held = [", ".join(p.stem for p in part) for part in (profiles[:half], profiles[half:])]
            print(f"farm: {scheduler.address}; w1 holds {held[0]}; w2 holds {held[1]}; "
                  "one core each\n"
                  f"jobs per device: {args.models} x {','.join(args.formats)}, "
                  f"{args.processes} process(es) of {args.min_time} s", flush=True)  # fmt: skip
            # untimed: fills the workers' artifact caches and warms their imports, so the first
            # timed arrangement is not charged for what every later one skips
            warm = argparse.Namespace(**{**vars(args), "min_time": 0.1, "processes": 1})
            warmed = timed(profiles, scheduler.address, warm, tmp / "results")
            print(f"  warm-up {warmed['wall_s']:.1f} s", flush=True)
            for i in range(args.repeats):
                print(f"round {i + 1}/{args.repeats}", flush=True)
                plan: list[tuple[str, list[Path], str | None]] = []
                for p in profiles:
                    plan += [
                        (f"{p.stem} farm", [p], scheduler.address),
                        (f"{p.stem} local", [p], None),
                    ]
                plan.append(("all on farm", profiles, scheduler.address))
                if i % 2:
                    plan.reverse()
                got = {}
                for label, devices, sched in plan:
                    got[label] = timed(devices, sched, args, tmp / "results")
                    print(f"  {label:22s} {got[label]['wall_s']:7.1f} s"
                          f"{'' if got[label]['ok'] else '  NOT OK'}", flush=True)  # fmt: skip
                rounds.append(got)
        finally:
            for w in workers:
                w.stop()
            scheduler.stop()

    def med(label: str, key: str = "wall_s") -> float:
        return float(statistics.median(r[label][key] for r in rounds))

    names = [p.stem for p in profiles]
    slowest_farm = max(med(f"{n} farm") for n in names)
    slowest_local = max(med(f"{n} local") for n in names)
    farm = med("all on farm")
    over = overhead_ms([r["all on farm"] for r in rounds])
    span_ratio = med("all on farm", "span_s") / max(med(f"{n} farm", "span_s") for n in names)
    print(
        f"\nmedian over {len(rounds)} round(s): all {len(names)} on the farm {farm:.1f} s; "
        f"slowest alone on the farm {slowest_farm:.1f} s, without it {slowest_local:.1f} s"
    )
    print(f"farm / slowest (farm) = {farm / slowest_farm:.3f}   (goal <= 1.1)")
    print(f"farm / slowest (local) = {farm / slowest_local:.3f}")
    print(f"dispatch phase only (first send to last result): farm / slowest = {span_ratio:.3f}")
    print("per-job median latency, alone on the farm vs all at once (median over rounds):")
    for key in sorted(rounds[0]["all on farm"]["medians"]):
        alone = statistics.median(r[f"{key.split()[0]} farm"]["medians"][key] or 0 for r in rounds)
        together = statistics.median(r["all on farm"]["medians"][key] or 0 for r in rounds)
        ratio = together / alone if alone else float("nan")
        print(f"  {key:45s} {alone:9.3f} ms {together:9.3f} ms  x{ratio:.3f}")
    print(f"dispatch overhead per process: device idle gap median {over['gap_median_ms']:.1f} ms"
          f" (max {over['gap_max_ms']:.1f} ms); coordinator (span - busy) / processes "
          f"{over['coordinator_per_process_ms']:.1f} ms")  # fmt: skip
    print(
        f"once per device and run: first process started {over['first_start_ms']:.0f} ms after "
        f"it was sent, last result back {over['last_return_ms']:.0f} ms after it ended"
    )
    all_ok = all(t["ok"] for r in rounds for t in r.values())
    if not all_ok:
        print("some rows are not ok: the timings above include failures", file=sys.stderr)
    if args.json_out:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        data = {"settings": settings, "rounds": rounds, "farm_s": farm,
                "slowest_farm_s": slowest_farm, "slowest_local_s": slowest_local,
                "span_ratio": span_ratio, "overhead": over}  # fmt: skip
        args.json_out.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return 0 if all_ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
