"""The throttle probe: a fixed float workload timed before and after a model.

Shipped to devices with the runner (imported flatly, ``import throttle``); standard library only,
numpy handed in by the caller. ``THROTTLED`` compares the probe after a model with the probe
before it (the host takes the median over the model's processes).
"""

from __future__ import annotations

import time
from typing import Any

#: Iterations of the throttle probe: a few ms of float work on this VM, some 10-30 ms on a phone.
PROBE_ITERATIONS = 40
#: Side of the probe's square array: 256x256 float32 (256 KB) stays in cache, so the probe reads
#: the core's clock, not memory bandwidth that a neighbour shares.
PROBE_SIZE = 256
#: Passes over the array per iteration: ~0.3 ms here, long next to the clock's own cost.
PROBE_PASSES = 10


def probe_clock() -> Any:
    """This thread's CPU time in ns where the platform has it, else the monotonic clock.

    CPU time grows only while the thread runs: a neighbour's time slice or a hypervisor's steal
    time (a shared VM) adds nothing to it, a slower clock adds to every iteration."""
    clock = getattr(time, "thread_time_ns", None)
    if clock is not None:
        try:
            clock()
            return clock
        except OSError:  # declared but not supported by this platform's C library
            pass
    return time.perf_counter_ns


def throttle_probe(np: Any) -> float:
    """Fastest ms of a fixed float workload: compared before and after a model to spot throttling.

    Element-wise numpy work runs on this one thread (a BLAS product, the first form, spread over
    every core and waited for the slowest, so any neighbour on any core slowed it), timed in this
    thread's CPU time, and the fastest iteration kept: a throttled clock slows every iteration,
    while contention and steal time leave CPU time alone. On this project's shared VM, whose
    neighbours made the wall-clock probe read 10 % "throttled" on every row, it repeats within a
    few per cent."""
    clock = probe_clock()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((PROBE_SIZE, PROBE_SIZE)).astype(np.float32)
    out = np.empty_like(a)
    times = []
    for _ in range(PROBE_ITERATIONS):
        t0 = clock()
        for _ in range(PROBE_PASSES):
            np.multiply(a, 0.5, out=out)
            np.tanh(out, out=out)
        times.append(clock() - t0)
    return float(min(times)) / 1e6
