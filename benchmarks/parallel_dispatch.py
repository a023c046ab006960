"""Two devices at once against one after the other (issue 4).

``bench run --device a --device b`` runs each device in its own thread, so two devices should
finish in about the time of the slower one, not the sum. This script measures it with real
transports: this host as a ``local`` device, and the same host reached through a real OpenSSH
server on 127.0.0.1 (``tests/support/sshd.py``: its own host key, config and client key; nothing
in ``~/.ssh`` is touched) as an ``ssh`` device. Each round runs the same models

* on device A alone, then on device B alone (the sum is what one-after-the-other would cost),
* on both at once (``--device A --device B``),

and prints wall times, their sum and max, and the ratios parallel/max (1.0 = perfect overlap)
and parallel/sum (0.5 = perfect overlap for two equal devices).

Both "devices" share this machine's CPUs, so each is pinned to a core of its own (``threads = 1``
and taskset masks 1 and 2 in the temporary profiles): the runners do not compete for CPU; the
``bench`` process itself, sshd and the SSH client are not pinned. The profiles' device names are
private to this script, so a ``bench run --device local`` going on elsewhere keeps its lock.

Run from the repository root::

    .venv/bin/python benchmarks/parallel_dispatch.py                 # ~2-3 min
    .venv/bin/python benchmarks/parallel_dispatch.py --models tests.support.tiny:tiny_cnn \\
        --input-shape 1x3x32x32 --formats onnx --min-time 0.3 --repeats 1   # smoke, ~30 s

Exports are made (or taken from the cache) once before any timing, so every timed ``bench run``
finds them cached.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.support.sshd: the real sshd of the transport tests

from benchharness.api import RunRequest, run  # noqa: E402
from benchharness.errors import HarnessError  # noqa: E402
from benchharness.export.cache import cache_dir  # noqa: E402
from benchharness.plan.artifacts import prepare_artifacts  # noqa: E402
from benchharness.plan.options import Method, RunOptions  # noqa: E402
from benchharness.results.schema import RunRow  # noqa: E402
from benchharness.zoo.registry import parse_shape, resolve_models  # noqa: E402
from tests.support.sshd import SSHServer, sshd_missing_reason  # noqa: E402

#: Two small zoo models (0.06 and 0.35 GMACs): a few ms per inference on one core, so a job is
#: bounded by --min-time, not by 64 slow inferences.
DEFAULT_MODELS = "mobilenet_v3_small,squeezenet1_1"
#: Both default formats: ORT and LiteRT jobs alternate on each device as in a real run.
DEFAULT_FORMATS = "onnx,tflite"
#: Seconds of measuring per job (--quick's 5 s shortened): the whole script stays at ~2-3 min,
#: while per-job fixed costs (process start, imports, probes) stay a minority of a job.
DEFAULT_MIN_S = 2.0
#: Rounds of (A alone, B alone, both); the order flips every round so a drift of the machine
#: does not favour one arrangement.
DEFAULT_REPEATS = 2
#: taskset masks: core 0 for the local device, core 1 for the ssh device.
LOCAL_MASK = "1"
SSH_MASK = "2"
#: One thread per runtime: each device uses exactly its one pinned core.
THREADS = 1
#: Device names private to this script (device locks are per name and per user).
LOCAL_NAME = "par-local"
SSH_NAME = "par-ssh"
#: The stage name the export step reports under, which is not a device.
EXPORT_STAGE = "export"


@dataclass
class Timed:
    """One ``bench run``: its wall time, the dispatch phase within it, and its rows."""

    devices: tuple[str, ...]
    wall_s: float
    dispatch_s: float
    rows: list[RunRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)


class PhaseClock:
    """A dispatch reporter that notes when devices start and when their last job ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first: float | None = None
        self.last: float | None = None

    def stage(self, device: str, text: str) -> None:
        if device == EXPORT_STAGE:
            return
        with self.lock:
            if self.first is None:
                self.first = time.perf_counter()

    def job_done(self, device: str, row: RunRow) -> None:
        with self.lock:
            self.last = time.perf_counter()

    @property
    def span_s(self) -> float:
        if self.first is None or self.last is None:
            return float("nan")
        return self.last - self.first


def _toml_value(value: Any) -> str:
    return json.dumps(value)  # a JSON string or number is a valid TOML one


def write_profile(path: Path, fields: dict[str, Any], python: str) -> Path:
    lines = [f"{k} = {_toml_value(v)}" for k, v in fields.items()]
    # no waiting between models: cooldown would add the same idle time to every arrangement
    lines += ["[cooldown]", "min_s = 0", "max_s = 0"]
    lines += ["[runtimes]", f"python = {_toml_value(python)}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_profiles(tmp: Path, server: SSHServer) -> dict[str, Path]:
    python = sys.executable
    local = write_profile(
        tmp / f"{LOCAL_NAME}.toml",
        {"name": LOCAL_NAME, "description": "this host, pinned to core 0", "transport": "local",
         "threads": THREADS, "affinity": LOCAL_MASK},
        python,
    )  # fmt: skip
    ssh = write_profile(
        tmp / f"{SSH_NAME}.toml",
        {"name": SSH_NAME, "description": "this host over OpenSSH on 127.0.0.1, pinned to core 1",
         "transport": "ssh", "host": server.host, "port": server.port, "user": server.user,
         "key_file": str(server.client_key), "known_hosts": str(server.known_hosts),
         "workdir": str(tmp / "ssh-work"), "threads": THREADS, "affinity": SSH_MASK},
        python,
    )  # fmt: skip
    return {LOCAL_NAME: local, SSH_NAME: ssh}


def timed_run(profiles: Sequence[Path], args: argparse.Namespace, results_dir: Path) -> Timed:
    clock = PhaseClock()
    request = RunRequest(
        devices=tuple(str(p) for p in profiles),
        models=args.models,
        formats=args.formats,
        input_shape=args.input_shape,
        options=RunOptions(
            method=Method(
                quick=True,
                min_s=args.min_time,
                min_n=args.min_runs,
                warmup_min_s=args.warmup_time,
            ),
            profile_ops=False,  # timing only: the per-operator pass would be one more confounder
            seed=0,  # the same interleaving order in every arrangement
        ),
        results_dir=results_dir,
    )
    t0 = time.perf_counter()
    store = run(request, reporter=clock)
    wall = time.perf_counter() - t0
    names = tuple(p.stem for p in profiles)
    return Timed(names, wall, clock.span_s, list(store.runs))


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def one_round(
    profiles: dict[str, Path], args: argparse.Namespace, results_dir: Path, flip: bool
) -> dict[str, Timed]:
    both = [profiles[LOCAL_NAME], profiles[SSH_NAME]]
    plan: list[tuple[str, list[Path]]] = [
        (LOCAL_NAME, [profiles[LOCAL_NAME]]),
        (SSH_NAME, [profiles[SSH_NAME]]),
        ("parallel", both),
    ]
    if flip:
        plan.reverse()
    out = {}
    for label, devices in plan:
        print(f"  {label:9s} ...", end="", flush=True)
        out[label] = timed = timed_run(devices, args, results_dir)
        state = "ok" if timed.ok else "NOT OK"
        print(f" {timed.wall_s:6.1f} s (dispatch {timed.dispatch_s:5.1f} s) {state}", flush=True)
    return out


def summarise(rounds: list[dict[str, Timed]], attr: str) -> dict[str, Any]:
    """Per round and median: A alone, B alone, sum, max, parallel and the two ratios."""
    table = []
    for r in rounds:
        a = getattr(r[LOCAL_NAME], attr)
        b = getattr(r[SSH_NAME], attr)
        p = getattr(r["parallel"], attr)
        table.append(
            {LOCAL_NAME: a, SSH_NAME: b, "sum": a + b, "max": max(a, b), "parallel": p,
             "parallel/max": _ratio(p, max(a, b)), "parallel/sum": _ratio(p, a + b)}
        )  # fmt: skip
    median = {k: statistics.median(row[k] for row in table) for k in table[0]}
    return {"rounds": table, "median": median}


def job_medians(rounds: list[dict[str, Timed]]) -> list[dict[str, Any]]:
    """Median latency of each device x model x format alone and in parallel (median over rounds):
    if pinning keeps the devices apart, running both at once leaves each one's numbers alone."""
    acc: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for r in rounds:
        for label, timed in r.items():
            where = "parallel" if label == "parallel" else "alone"
            for row in timed.rows:
                if not row.ok or row.median_ms is None:
                    continue
                key = (row.device, row.model, row.format)
                acc.setdefault(key, {"alone": [], "parallel": []})[where].append(row.median_ms)
    out = []
    for (device, model, fmt), sides in sorted(acc.items()):
        alone = statistics.median(sides["alone"]) if sides["alone"] else float("nan")
        par = statistics.median(sides["parallel"]) if sides["parallel"] else float("nan")
        out.append(
            {"device": device, "model": model, "format": fmt, "alone_ms": alone,
             "parallel_ms": par, "parallel/alone": _ratio(par, alone)}
        )  # fmt: skip
    return out


def print_table(title: str, summary: dict[str, Any]) -> None:
    cols = [LOCAL_NAME, SSH_NAME, "sum", "max", "parallel", "parallel/max", "parallel/sum"]
    print(f"\n{title}")
    print(f"  {'round':7s}" + "".join(f"{c:>14s}" for c in cols))
    rows = [(str(i + 1), row) for i, row in enumerate(summary["rounds"])]
    rows.append(("median", summary["median"]))
    for label, row in rows:
        cells = [f"{row[c]:>14.3f}" if "/" in c else f"{row[c]:>12.1f} s" for c in cols]
        print(f"  {label:7s}" + "".join(cells))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"default {DEFAULT_MODELS}")
    p.add_argument("--formats", default=DEFAULT_FORMATS, help=f"default {DEFAULT_FORMATS}")
    p.add_argument("--input-shape", default=None, help="e.g. 1x3x32x32 (default: the zoo's)")
    p.add_argument("--min-time", type=float, default=DEFAULT_MIN_S, help="seconds per job")
    p.add_argument("--min-runs", type=int, default=None, help="inferences per job (--quick: 64)")
    p.add_argument("--warmup-time", type=float, default=None, help="warm-up s (default 1 s)")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    p.add_argument("--results-dir", type=Path, default=None, help="keep the runs here")
    p.add_argument("--json", dest="json_out", type=Path, default=None, help="write the numbers")
    args = p.parse_args(argv)
    args.formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reason = sshd_missing_reason()
    if reason:
        print(f"cannot start the OpenSSH server: {reason}", file=sys.stderr)
        return 2
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        print(f"needs 2 cores to pin the devices apart; this process has {cores}", file=sys.stderr)
        return 2

    print("export and cost (cached after the first time) ...", flush=True)
    t0 = time.perf_counter()
    shape = parse_shape(args.input_shape) if args.input_shape else None
    artifacts = prepare_artifacts(
        resolve_models(args.models, input_shape=shape), args.formats,
        log_path=cache_dir() / "export.log",
    )  # fmt: skip
    failed = [f"{a.model} {a.format}: {a.error}" for a in artifacts if a.error]
    if failed:
        print("export failed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    print(f"  {len(artifacts)} artifacts ready in {time.perf_counter() - t0:.1f} s")

    with tempfile.TemporaryDirectory(prefix="bh-parallel-") as tmp_name:
        tmp = Path(tmp_name)
        results_dir = args.results_dir or tmp / "results"
        with SSHServer(tmp / "sshd") as server:
            profiles = make_profiles(tmp, server)
            print(
                f"\ndevices: {LOCAL_NAME} (transport local, taskset {LOCAL_MASK} = core 0) and "
                f"{SSH_NAME} (OpenSSH on {server.host}:{server.port}, taskset {SSH_MASK} = core 1)"
                f"\n  each device is pinned to a core of its own with --threads {THREADS}, so the "
                "two do not compete for CPU\n  (the bench process, sshd and the SSH client are not"
                f" pinned); {cores} cores here"
                f"\njobs per device: {args.models} x {','.join(args.formats)}, --quick, "
                f"min {args.min_time} s per job, no per-operator pass; {args.repeats} round(s), "
                "order flipped every round\n",
                flush=True,
            )
            rounds = []
            for i in range(args.repeats):
                print(f"round {i + 1}/{args.repeats}", flush=True)
                rounds.append(one_round(profiles, args, results_dir, flip=bool(i % 2)))

    wall = summarise(rounds, "wall_s")
    dispatch = summarise(rounds, "dispatch_s")
    jobs = job_medians(rounds)
    print_table("bench run, whole call (resolve, cached export, dispatch, store):", wall)
    print_table("dispatch phase only (first device stage -> last job done):", dispatch)
    print("\nper-job median latency, alone vs both devices at once (median over rounds):")
    for j in jobs:
        print(
            f"  {j['device']:10s} {j['model']:22s} {j['format']:7s} {j['alone_ms']:9.3f} ms "
            f"{j['parallel_ms']:9.3f} ms  x{j['parallel/alone']:.3f}"
        )
    m = wall["median"]
    print(
        f"\nresult: parallel/max = {m['parallel/max']:.3f} (1.0 = the slower device's time), "
        f"parallel/sum = {m['parallel/sum']:.3f} (0.5 = perfect overlap of two equal devices)"
    )
    all_ok = all(t.ok for r in rounds for t in r.values())
    if not all_ok:
        print("some rows are not ok: the timings above include failures", file=sys.stderr)
    if args.json_out:
        data = {
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "pinning": {LOCAL_NAME: LOCAL_MASK, SSH_NAME: SSH_MASK, "threads": THREADS},
            "wall_s": wall, "dispatch_s": dispatch, "jobs": jobs,
            "runs": [{k: asdict(t) | {"ok": t.ok} for k, t in r.items()} for r in rounds],
        }  # fmt: skip
        args.json_out.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return 0 if all_ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
