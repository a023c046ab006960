"""The profiled pass at the timed speed: repeat a pass whose speed strays from the process's
timed median, keep the closest (docs/method.md "A profiled pass at the timed speed").

Shipped to devices beside ``runner.py`` (stdlib and ``protocol`` only), like the runner's other
siblings; apart from it so the runner stays one job long.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable

import protocol

#: The profiled pass describes the timed one only when it ran at the same speed: a run median
#: more than 15 % from the process's timed median (the bound the operator sums are held to) means
#: the machine changed between the two (on a shared 2-vCPU VM a 2-thread pool halves or doubles
#: when the hypervisor takes the second vCPU), and the pass is run again.
PROFILE_AGREE_REL = 0.15
#: Profiled passes a process tries before it keeps the one closest to its timed median; another
#: is started only while all of them together took under the pass's cap (``PROFILE_MAX_S``), so
#: a slow device runs one.
PROFILE_ATTEMPTS = 3
#: ORT trace names: a node's kernel event ends so; one inference is one such Session event.
ORT_KERNEL_SUFFIX = "_kernel_time"
ORT_MODEL_RUN = "model_run"


def kernel_ms_per_run(path: str) -> tuple[float, float] | None:
    """An ORT trace's kernel events per ``model_run`` and the median over runs of their summed
    durations in ms (``parse/ort_profile.py`` reads it in full on the host); None when it cannot
    be read or holds no run."""
    try:
        with open(path, encoding="utf-8") as f:
            events = json.load(f)
    except (OSError, ValueError):
        return None
    runs: list[tuple[float, float]] = []
    kernels: list[tuple[float, float]] = []
    for e in events if isinstance(events, list) else ():
        if not isinstance(e, dict) or not isinstance(e.get("ts"), (int, float)):
            continue
        name, dur = str(e.get("name", "")), e.get("dur")
        if not isinstance(dur, (int, float)):
            continue
        if e.get("cat") == "Node" and name.endswith(ORT_KERNEL_SUFFIX):
            kernels.append((float(e["ts"]), float(dur)))
        elif name == ORT_MODEL_RUN:
            runs.append((float(e["ts"]), float(dur)))
    if not runs:
        return None
    runs.sort()
    sums = [0.0] * len(runs)
    starts = [start for start, _ in runs]
    for ts, dur in kernels:
        i = bisect.bisect_right(starts, ts) - 1
        if i >= 0 and ts <= runs[i][0] + runs[i][1]:
            sums[i] += dur
    return len(kernels) / len(runs), statistics.median(sums) / 1e3


def ops_ms(kernels: tuple[float, float] | None, cost_us: float | None) -> float | None:
    """The median run's summed kernel time less the profiler's cost per recorded node."""
    if kernels is None:
        return None
    nodes, ms = kernels
    return ms - (cost_us or 0.0) * nodes / 1e3


def profile_agreeing(
    one_pass: Callable[[], protocol.Profile],
    timed_ms: float | None,
    retry_within_s: float,
    clock: Callable[[], float] = time.perf_counter,
) -> protocol.Profile:
    """The profiled pass (``one_pass``), repeated up to ``PROFILE_ATTEMPTS`` times while its run
    median strays more than ``PROFILE_AGREE_REL`` from ``timed_ms`` and all passes so far took
    under ``retry_within_s`` (0: one pass); the closest pass is kept, the others' trace files
    removed, and ``attempts`` says how many ran."""
    start = clock()
    best: protocol.Profile | None = None
    best_off = float("inf")
    attempts = 0
    while True:
        profile = one_pass()
        attempts += 1
        off = _profile_off(profile, timed_ms)
        if best is None or off < best_off:
            if best is not None:
                _discard(best)
            best, best_off = profile, off
        else:
            _discard(profile)
        if (
            profile.source is None
            or timed_ms is None
            or best_off <= PROFILE_AGREE_REL
            or attempts >= PROFILE_ATTEMPTS
            or clock() - start >= retry_within_s
        ):
            break
    best.attempts = attempts
    return best


def median_or_none(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _profile_off(profile: protocol.Profile, timed_ms: float | None) -> float:
    """How far the pass's speed (its run median less the profiler's cost: ``pass_ms``) is from
    the timed median, relative; inf when unknown."""
    pass_ms = profile.pass_ms() if profile.source is not None else None
    if pass_ms is None or not timed_ms or timed_ms <= 0:
        return float("inf")
    return abs(float(pass_ms) / timed_ms - 1.0)


def _discard(profile: protocol.Profile) -> None:
    """Remove a pass's trace file from the device (only the kept pass's is pulled)."""
    if profile.profile_file:
        # one left behind stays in the profile work directory, which the host cleans
        with contextlib.suppress(OSError):
            os.remove(profile.profile_file)
