"""`bench run` through real transports: a real OpenSSH server on loopback and the real adb client
against the emulated phone, with the python runner shipped to the "device" and run there.
Faults are produced for real: the SSH server killed mid-run, a runner that hangs, one that prints
garbage."""

from __future__ import annotations

import stat
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchharness.api import RunRequest, run
from benchharness.plan.options import Method, RunOptions
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from tests.support.sshd import SSHServer

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(21)

TINY = "tests.support.tiny:tiny_cnn"
FAST_METHOD = Method(quick=True, min_s=0.2, min_n=20, warmup_min_s=0.1)
FAST = RunOptions(method=FAST_METHOD)
#: FAST without the per-operator pass
FAST_NO_OPS = RunOptions(method=FAST_METHOD, profile_ops=False)


def _toml(path: Path, fields: dict[str, Any], python: str = sys.executable) -> Path:
    lines = [
        f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in fields.items()
    ]
    lines += ["[runtimes]", f'python = "{python}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _ssh_profile(server: SSHServer, tmp: Path, name: str = "board") -> Path:
    return _toml(tmp / f"{name}.toml", {
        "name": name, "transport": "ssh", "host": server.host, "port": server.port,
        "user": server.user, "key_file": str(server.client_key),
        "known_hosts": str(server.known_hosts), "workdir": str(tmp / f"{name}-work"),
    })  # fmt: skip


class KillAfterFirst:
    """A reporter that kills the SSH server once the first job has finished."""

    def __init__(self, server: SSHServer) -> None:
        self.server = server
        self.done = 0

    def stage(self, device: str, text: str) -> None:
        pass

    def job_done(self, device: str, row: RunRow) -> None:
        self.done += 1
        if self.done == 1:
            self.server.kill()


def test_run_over_ssh_with_the_python_runner(sshd_server: SSHServer, tmp_path: Path) -> None:
    profile = _ssh_profile(sshd_server, tmp_path)
    store = run(RunRequest(devices=(str(profile),), models=TINY, input_shape="1x3x32x32",
                           results_dir=tmp_path / "results", options=FAST))  # fmt: skip
    rows = {r.format: r for r in store.runs}
    assert set(rows) == {"onnx", "tflite"}
    assert all(r.status == "ok" and r.transport == "ssh" for r in rows.values())
    assert rows["onnx"].runtime == "onnxruntime"
    assert any(o.format == "onnx" for o in store.ops), "the ORT profile was not pulled back"
    # the profiler's per-node cost was calibrated on the device and taken off every ORT operator
    assert rows["onnx"].ops_node_cost_us is not None and rows["onnx"].ops_node_cost_us >= 0
    onnx_ops = [o for o in store.ops if o.format == "onnx" and o.median_us is not None]
    assert all(o.median_raw_us >= o.median_us for o in onnx_ops)
    tflite_ops = [o for o in store.ops if o.format == "tflite" and o.median_us is not None]
    assert all(o.median_raw_us == o.median_us for o in tflite_ops)
    # the run's own work directory is cleaned up; artifacts stay for the next run
    work = tmp_path / "board-work"
    assert not (work / store.run_id).exists()
    assert list((work / "artifacts").iterdir())


def test_ssh_server_killed_mid_run_then_resume(
    sshd_factory: Callable[[], SSHServer], tmp_path: Path
) -> None:
    server = sshd_factory()
    profile = _ssh_profile(server, tmp_path)
    req = RunRequest(devices=(str(profile),), models=TINY, input_shape="1x3x32x32",
                     results_dir=tmp_path / "results", options=FAST_NO_OPS)  # fmt: skip
    store = run(req, reporter=KillAfterFirst(server))
    statuses = sorted(r.status for r in store.runs)
    assert statuses == ["failed", "ok"], store.runs
    failed = next(r for r in store.runs if r.status == "failed")
    assert "Error" in failed.error
    ok_before = next(r for r in store.runs if r.status == "ok")

    server.restart()
    again = run(RunRequest(resume=store.run_id, results_dir=tmp_path / "results"))
    assert sorted(r.status for r in again.runs) == ["ok", "ok"]
    kept = next(r for r in again.runs if r.job_id == ok_before.job_id)
    assert float(kept.median_ms) == float(ok_before.median_ms), "a finished job was redone"
    assert len(RunStore.open(tmp_path / "results", store.run_id).runs) == 2


@pytest.mark.parametrize("legacy", [False, True], ids=["shell_v2", "legacy"])
def test_run_over_adb_with_the_python_runner(
    legacy: bool, adb_server: Any, adb_device_factory: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    device = adb_device_factory(legacy=legacy)
    for key, value in adb_server.env.items():
        monkeypatch.setenv(key, value)
    profile = _toml(tmp_path / "phone.toml", {
        "name": "phone", "transport": "adb", "serial": device.serial,
        "workdir": "/data/local/tmp/benchharness",
    })  # fmt: skip
    store = run(RunRequest(devices=(str(profile),), models=TINY, input_shape="1x3x32x32",
                           results_dir=tmp_path / "results", options=FAST))  # fmt: skip
    assert sorted((r.format, r.status) for r in store.runs) == [
        ("onnx", "ok"),
        ("tflite", "ok"),
    ]
    assert all(r.transport == "adb" for r in store.runs)
    assert any(o.format == "onnx" for o in store.ops)


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_runner_that_prints_garbage_becomes_a_failed_row(tmp_path: Path) -> None:
    python = _script(tmp_path / "garbage-python", "echo '{not json'; echo 'random noise'; exit 0")
    profile = _toml(tmp_path / "junk.toml", {"name": "junk", "transport": "local"}, python=python)
    store = run(RunRequest(devices=(str(profile),), models=TINY, input_shape="1x3x32x32",
                           results_dir=tmp_path / "results", options=FAST_NO_OPS))  # fmt: skip
    assert [r.status for r in store.runs] == ["failed", "failed"]
    assert all("printed no result" in r.error for r in store.runs)


def test_runner_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    python = _script(tmp_path / "hung-python", "sleep 300")
    profile = _toml(tmp_path / "hung.toml", {"name": "hung", "transport": "local"}, python=python)
    store = run(RunRequest(devices=(str(profile),), models=TINY, input_shape="1x3x32x32",
                           formats=("onnx",), results_dir=tmp_path / "results",
                           options=replace(FAST_NO_OPS, timeout_s=2)))  # fmt: skip
    (row,) = store.runs
    assert row.status == "failed"
    assert "CommandTimeoutError" in row.error
