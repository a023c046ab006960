"""check_device through the Transport interface: on this host, over a real sshd, on an emulated
phone, and parsing of what an Android device prints."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from benchharness.dispatch.inspect import DeviceReport, check_device, parse_probe
from benchharness.ondevice.probe import MARK
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.transport.adb import AdbTransport
from benchharness.transport.local import LocalTransport
from benchharness.transport.ssh import SSHTransport
from tests.support.adbd import DEVICE_TMP, EmulatedDevice
from tests.support.sshd import SSHServer, free_port

if TYPE_CHECKING:
    from tests.support.fixtures import AdbServer

pytest_plugins = ["tests.support.fixtures"]


def fake_python(directory: Path) -> str:
    """A stand-in python3 that answers the version probe at once (importing onnxruntime for
    real takes seconds and proves nothing about check_device)."""
    path = directory / "python3"
    versions = {"python": "3.11.2", "onnxruntime": "1.20.1", "ai_edge_litert": None}
    path.write_text(f"#!/bin/sh\necho '{json.dumps(versions)}'\n")
    path.chmod(0o755)
    return str(path)


def tool(directory: Path) -> str:
    path = directory / "benchmark_model"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def assert_described(report: DeviceReport) -> None:
    assert report.reachable, report.error
    assert report.os and report.os.startswith("Linux")
    assert report.cores and report.cores >= 1
    assert len(report.max_freq_khz) == report.cores
    assert report.free_bytes and report.free_bytes > 0
    json.loads(report.to_json())


def test_local(tmp_path: Path) -> None:
    profile = DeviceProfile(
        name="here",
        transport="local",
        workdir=str(tmp_path / "not yet created"),
        runtimes={
            "python": fake_python(tmp_path),
            "benchmark_model": tool(tmp_path),
            "onnxruntime_perf_test": str(tmp_path / "absent tool"),
        },
    )
    report = check_device(profile, LocalTransport())
    assert_described(report)
    assert report.runtimes["python"].present
    assert report.runtimes["python"].version == "3.11.2"
    assert "onnxruntime 1.20.1" in report.runtimes["python"].detail
    assert report.runtimes["benchmark_model"].present
    assert not report.runtimes["onnxruntime_perf_test"].present
    assert "missing" in report.runtimes["onnxruntime_perf_test"].detail


def test_python_without_runtimes_says_how_to_install(tmp_path: Path) -> None:
    py = tmp_path / "python3"
    py.write_text('#!/bin/sh\necho \'{"python": "3.9.2", "onnxruntime": null}\'\n')
    py.chmod(0o755)
    profile = DeviceProfile(name="b", transport="local", runtimes={"python": str(py)})
    status = check_device(profile, LocalTransport()).runtimes["python"]
    assert not status.present
    assert "pip install onnxruntime" in status.detail


def test_over_ssh(sshd_server: SSHServer, tmp_path: Path) -> None:
    profile = sshd_server.profile(runtimes={"python": fake_python(tmp_path)})
    with SSHTransport(profile) as t:
        report = check_device(profile, t)
    assert_described(report)
    assert report.runtimes["python"].present


def test_unreachable_is_a_report_not_an_exception(tmp_path: Path) -> None:
    profile = DeviceProfile(
        name="gone", transport="ssh", host="127.0.0.1", port=free_port(),
        known_hosts=str(tmp_path / "kh"),
    )  # fmt: skip
    report = check_device(profile, SSHTransport(profile))
    assert not report.reachable
    assert report.error and "DeviceUnreachableError" in report.error
    assert "connection refused" in report.error


def test_on_emulated_phone(
    adb_device_factory: Callable[..., EmulatedDevice], adb_server: AdbServer
) -> None:
    phone = adb_device_factory()
    tool(phone.sandbox)
    profile = DeviceProfile(
        name="emu",
        transport="adb",
        serial=phone.serial,
        workdir=f"{DEVICE_TMP}/benchharness",
        runtimes={
            "benchmark_model": f"{DEVICE_TMP}/benchmark_model",
            "onnxruntime_perf_test": f"{DEVICE_TMP}/onnxruntime_perf_test",
        },
    )
    report = check_device(profile, AdbTransport(phone.serial, **adb_server.transport_options()))  # type: ignore[arg-type]
    assert_described(report)
    assert report.runtimes["benchmark_model"].present
    assert not report.runtimes["onnxruntime_perf_test"].present


ANDROID_PROBE = f"""\
{MARK}uname
Linux 4.14.190-perf aarch64
{MARK}android
13
{MARK}soc
ro.soc.manufacturer=
ro.soc.model=
ro.board.platform=msmnile
ro.product.model=Pixel 4
{MARK}cpuinfo
Processor	: AArch64 Processor rev 14 (aarch64)
CPU part	: 0xd05
CPU part	: 0xd0d
Hardware	: Qualcomm Technologies, Inc SM8150
{MARK}cpus
cpu0 1 schedutil 1785600 300000
cpu1 1 schedutil 1785600 300000
cpu2 1 schedutil 1785600 300000
cpu3 1 schedutil 1785600 300000
cpu4 1 schedutil 2419200 710400
cpu5 1 schedutil 2419200 710400
cpu6 1 schedutil 2419200 710400
cpu7 1 performance 2841600 2841600
{MARK}thermal
cpu-1-0-usr 41200
cpu-1-0-usr 41800
battery 29000
sensor-off -273000
{MARK}load
2.10 1.90 1.80 3/1200 4321
{MARK}mem
MemTotal:        5697024 kB
MemAvailable:    2103296 kB
{MARK}end
{MARK}df
/dev/block/dm-8 115249236 61553320 53564844 54% /data
{MARK}runtime:benchmark_model
OK
{MARK}runtime:onnxruntime_perf_test
MISSING
"""


def test_parse_android_output() -> None:
    profile = DeviceProfile(
        name="pixel4", transport="adb", serial="X",
        runtimes={"benchmark_model": "/data/local/tmp/benchmark_model",
                  "onnxruntime_perf_test": "/data/local/tmp/onnxruntime_perf_test"},
    )  # fmt: skip
    report = DeviceReport(device="pixel4", transport="adb", reachable=True)
    parse_probe(ANDROID_PROBE, profile, report)
    assert report.os == "Android 13 (Linux 4.14.190-perf aarch64)"
    assert report.android_release == "13"
    assert report.soc == "msmnile"
    assert report.cpu_model == "Qualcomm Technologies, Inc SM8150"
    assert report.cores == 8
    assert report.max_freq_khz[-1] == 2841600 and report.max_freq_khz[0] == 1785600
    assert report.governors[-1] == "performance"
    assert report.temperatures_c == {"cpu-1-0-usr": 41.2, "cpu-1-0-usr#2": 41.8, "battery": 29.0}
    assert report.free_bytes == 53564844 * 1024
    assert report.runtimes["benchmark_model"].present
    assert not report.runtimes["onnxruntime_perf_test"].present
