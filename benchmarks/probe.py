"""The throttle probe: how far apart do two calls read on this machine, when nothing throttles?

``THROTTLED`` fires when the probe after a model reads more than 10 % slower than before it (the
median over the model's processes). A probe whose calls differ by that much on a cool machine
makes the flag meaningless. This script calls the runner's probe (``ondevice/throttle.py``:
element-wise work on one thread, timed in this thread's CPU time, fastest of 40 iterations)
``--calls`` times, and the first form of it (a 256x256 BLAS product over every core, timed by
the wall clock) as many times, and prints each one's spread (max/min - 1) and the share of
consecutive pairs whose ratio passes the flag's 1.10. Run it on a quiet machine, and once while
something else loads the cores (``--load N`` starts N busy processes meanwhile): only the first
form should move.

Run from the repository root::

    .venv/bin/python benchmarks/probe.py                 # ~5 s
    .venv/bin/python benchmarks/probe.py --load 2        # with two busy neighbours
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import sys
import time
from typing import Any

import common
import numpy as np

from benchharness.ondevice import throttle
from benchharness.stats.summary import THROTTLE_RATIO

#: Calls of each probe: enough pairs to see a 1-in-20 false flag.
DEFAULT_CALLS = 30


def first_form() -> float:
    """The probe as it was first written: BLAS product on every core, wall clock, fastest."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 256)).astype(np.float32)
    times = []
    for _ in range(40):
        t0 = time.perf_counter_ns()
        a = np.tanh(a @ a.T * (1.0 / 256))
        times.append(time.perf_counter_ns() - t0)
    return min(times) / 1e6


def _busy(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def summary(values: list[float]) -> dict[str, Any]:
    pairs = [b / a for a, b in itertools.pairwise(values)]
    return {
        "ms": values,
        "spread": max(values) / min(values) - 1.0,
        "false_flags": sum(r > THROTTLE_RATIO for r in pairs) / len(pairs) if pairs else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--calls", type=int, default=DEFAULT_CALLS)
    p.add_argument("--load", type=int, default=0, help="busy processes to run meanwhile")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    stop = multiprocessing.Event()
    busy = [multiprocessing.Process(target=_busy, args=(stop,)) for _ in range(args.load)]
    for proc in busy:
        proc.start()
    try:
        current = summary([throttle.throttle_probe(np) for _ in range(args.calls)])
        first = summary([first_form() for _ in range(args.calls)])
    finally:
        stop.set()
        for proc in busy:
            proc.join()
    if args.json:
        common.print_json({"load": args.load, "probe": current, "first_form": first})
        return 0
    for name, s in (("probe (CPU time, one thread)", current), ("first form (wall, BLAS)", first)):
        print(
            f"{name}: {common.fmt(min(s['ms']))}-{common.fmt(max(s['ms']))} ms, spread "
            f"{s['spread']:.1%}, consecutive pairs past {THROTTLE_RATIO}: {s['false_flags']:.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
