"""The throttle probe reads this thread's CPU time: time the thread spends off the CPU (a
neighbour's slice, a hypervisor's steal, a sleep) does not count, so only a slower clock can
make it read slower. Structure only; its spread on a real machine is ``benchmarks/probe.py``."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from types import ModuleType

import numpy as np
import pytest

from benchharness.runners import python as python_runner

#: Wall time the probe's clock is watched across while its thread does nothing.
IDLE_S = 0.2


@pytest.fixture(scope="module")
def remote() -> ModuleType:
    """runner.py imported as the device imports it: a script beside method.py, not a package."""
    sys.path.insert(0, str(python_runner.RUNNER_DIR))
    try:
        spec = importlib.util.spec_from_file_location(
            "bh_probe_under_test", python_runner.RUNNER_DIR / python_runner.RUNNER_SCRIPT
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(python_runner.RUNNER_DIR))
    return module


def test_probe_clock_does_not_count_time_off_the_cpu(remote: ModuleType) -> None:
    clock = remote.probe_clock()
    assert clock is time.thread_time_ns  # Linux has per-thread CPU time
    t0 = clock()
    time.sleep(IDLE_S)
    # another thread busy meanwhile: its work is not this thread's time either
    busy = threading.Thread(target=lambda: sum(range(3_000_000)))
    busy.start()
    busy.join()
    assert clock() - t0 < IDLE_S * 1e9 / 4


def test_probe_returns_its_fastest_iteration_in_ms(remote: ModuleType) -> None:
    ms = remote.throttle_probe(np)
    assert isinstance(ms, float) and ms > 0
