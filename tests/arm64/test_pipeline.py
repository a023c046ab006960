"""The whole pipeline on aarch64: ``bench run`` through the real sshd (the board) and the real adb
client (the phone) into the emulated ARM64 user space, ONNX and TFLite, tiny models at 32x32.
Every row gives timings, operator profiles from both runtimes, memory figures and an environment
that says it ran as aarch64 under qemu-user."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from benchharness.api import RunRequest, run
from benchharness.plan.options import Method, RunOptions
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from tests.support import arm64
from tests.support.adbd import EmulatedDevice
from tests.support.fixtures import AdbServer
from tests.support.sshd import SSHServer

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(37)

TINY = "tests.support.tiny:tiny_cnn"
#: --quick, cut further: one process, a short warm-up and measurement, ten profiled runs
#: (emulated inferences of the tiny model take milliseconds; python's start, the imports and
#: the environment and throttle probes take seconds, ~15 s a job).
FAST = RunOptions(method=Method(quick=True, min_s=0.3, min_n=20, warmup_min_s=0.2), profile_runs=10)
#: What the probe appends to the host CPU's name for a process qemu-user translates.
UNDER_QEMU = "(aarch64 under qemu-user)"


def _run(profile: Path, tmp_path: Path) -> RunStore:
    return run(RunRequest(devices=(str(profile),), models=TINY, input_shape="1x3x32x32",
                          results_dir=tmp_path / "results", options=FAST))  # fmt: skip


def _check_emulated_row(row: RunRow) -> None:
    assert row.status == "ok", row.error
    assert row.cpu_model and row.cpu_model.endswith(UNDER_QEMU), row.cpu_model
    assert row.arch == "aarch64"
    assert row.emulated == "qemu-user"
    assert "EMULATED" in row.flag_list
    assert row.mem_peak_bytes is not None and row.mem_peak_bytes > 0
    assert row.mem_source == "vmhwm"


def _check_pipeline(store: RunStore) -> None:
    rows = {r.format: r for r in store.runs}
    assert set(rows) == {"onnx", "tflite"}
    for row in rows.values():
        _check_emulated_row(row)
    assert rows["onnx"].runtime == "onnxruntime" and rows["tflite"].runtime == "litert"
    # XNNPACK started (it needs the CPU lists the sessions' /sys holds), not reference kernels
    assert rows["tflite"].provider == "XNNPACK"
    ops = Counter(o.format for o in store.ops if o.median_us is not None)
    assert ops["onnx"] > 0, "no ONNX Runtime operator rows came back"
    assert ops["tflite"] > 0, "no LiteRT operator rows came back"
    # ONNX Runtime's ARM kernels: no x86 NCHWc layout reorders
    ort_types = {o.op_type for o in store.ops if o.format == "onnx"}
    assert not any("Reorder" in t or "NCHWc" in t for t in ort_types), ort_types


def test_the_board_runs_the_whole_pipeline(arm64_board: SSHServer, tmp_path: Path) -> None:
    profile = tmp_path / "arm64-board.toml"
    profile.write_text(arm64.server_profile(arm64_board))
    store = _run(profile, tmp_path)
    _check_pipeline(store)
    assert all(r.transport == "ssh" for r in store.runs)


def test_the_phone_runs_the_whole_pipeline(
    arm64_phone: EmulatedDevice,
    phone_workdir: str,
    adb_server: AdbServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in adb_server.env.items():
        monkeypatch.setenv(key, value)
    profile = tmp_path / "arm64-phone.toml"
    profile.write_text(arm64.phone_profile(arm64_phone.serial, workdir=phone_workdir))
    store = _run(profile, tmp_path)
    _check_pipeline(store)
    assert all(r.transport == "adb" for r in store.runs)
