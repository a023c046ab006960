"""``bench worker`` as a user starts it: a device it cannot reach stops it before it joins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.farm import ROOT, toml
from tests.support.sshd import free_port

pytest.importorskip("distributed", reason="the farm needs Dask: pip install -e '.[farm]'")


def bench(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_LOCK_DIR": str(tmp / "locks")}
    return subprocess.run([sys.executable, "-m", "benchharness.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=ROOT)  # fmt: skip


def test_an_unreachable_device_stops_the_worker_with_a_clear_error(tmp_path: Path) -> None:
    board = toml(tmp_path / "gone-board.toml", {
        "name": "gone-board", "transport": "ssh", "host": "127.0.0.1", "port": free_port(),
        "user": "nobody", "known_hosts": str(tmp_path / "known_hosts"),
    })  # fmt: skip
    # nothing listens at the scheduler either: the device check comes first and fails
    proc = bench("worker", "--scheduler", f"127.0.0.1:{free_port()}", "--device", str(board),
                 tmp=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("FarmError: device gone-board is not reachable")
    assert "bench devices check gone-board" in last


def test_the_worker_needs_a_scheduler_and_a_device(tmp_path: Path) -> None:
    proc = bench("worker", "--device", "local", tmp=tmp_path)
    assert proc.returncode == 2 and "--scheduler" in proc.stderr


def test_a_worker_listens_on_one_interface_never_on_all(monkeypatch: pytest.MonkeyPatch) -> None:
    import distributed.utils

    from benchharness.farm.security import FarmSecurity, endpoint
    from benchharness.farm.serve import WorkerOptions, listen_host

    plain = FarmSecurity()
    assert listen_host(endpoint("127.0.0.1:8786", plain), WorkerOptions()) == "127.0.0.1"
    assert listen_host(endpoint("[::1]:8786", plain), WorkerOptions()) == "::1"
    given = WorkerOptions(host="10.0.0.12")
    assert listen_host(endpoint("127.0.0.1", plain), given) == "10.0.0.12"
    # off loopback: the address of the interface facing the scheduler (Dask's get_ip, which
    # only connects a UDP socket; replaced here, so the test touches no network at all)
    asked: list[str] = []

    def get_ip(host: str) -> str:
        asked.append(host)
        return "10.9.9.9"

    monkeypatch.setattr(distributed.utils, "get_ip", get_ip)
    away = listen_host(endpoint("10.1.2.3", FarmSecurity(insecure=True)), WorkerOptions())
    assert away == "10.9.9.9" and asked == ["10.1.2.3"]
