"""The throttle probe reads this thread's CPU time: time the thread spends off the CPU (a
neighbour's slice, a hypervisor's steal, a sleep) does not count, so only a slower clock can
make it read slower. Structure only; its spread on a real machine is ``benchmarks/probe.py``."""

from __future__ import annotations

import ast
import sys
import threading
import time
from pathlib import Path

import numpy as np

from benchharness.ondevice import throttle

#: Wall time the probe's clock is watched across while its thread does nothing.
IDLE_S = 0.2


def test_probe_clock_does_not_count_time_off_the_cpu() -> None:
    clock = throttle.probe_clock()
    assert clock is time.thread_time_ns  # Linux has per-thread CPU time
    t0 = clock()
    time.sleep(IDLE_S)
    # another thread busy meanwhile: its work is not this thread's time either
    busy = threading.Thread(target=lambda: sum(range(3_000_000)))
    busy.start()
    busy.join()
    assert clock() - t0 < IDLE_S * 1e9 / 4


def test_probe_returns_its_fastest_iteration_in_ms() -> None:
    ms = throttle.throttle_probe(np)
    assert isinstance(ms, float) and ms > 0


def test_probe_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(throttle.__file__).read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}  # fmt: skip
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom)}  # fmt: skip
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
