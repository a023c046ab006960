"""The aarch64 root and how it is reached: its processes run as aarch64 (translated), the probe
inside it says so, sessions leave nothing mounted on the host, and the reasons to skip name
what to install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchharness.ondevice import probe
from tests.support import arm64


def test_processes_in_the_root_are_aarch64_and_the_probe_says_emulated(arm64_root: Path) -> None:
    script = "import json, platform; print(json.dumps(platform.machine()))"
    done = arm64.run_in_root(arm64_root, [arm64.PYTHON, "-c", script], timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "aarch64"
    shell = arm64.run_in_root(arm64_root, ["/bin/sh", "-c", probe.SCRIPT], timeout=120)
    env = probe.environment(probe.parse(shell.stdout))
    assert (env["arch"], env["emulated"]) == ("aarch64", "qemu-user")
    assert env["cpu_model"].endswith("(aarch64 under qemu-user)")


def test_sessions_see_the_cpu_lists_read_only(arm64_root: Path) -> None:
    """/sys holds only the CPU lists the runtimes' cpuinfo needs, as the host's kernel says."""
    script = "cat /sys/devices/system/cpu/possible; ls /sys/devices/system/cpu; touch /sys/x"
    done = arm64.run_in_root(arm64_root, ["/bin/sh", "-c", script], timeout=60)
    host = Path("/sys/devices/system/cpu/possible").read_text().strip()
    lines = done.stdout.split()
    assert lines[0] == host and "cpu0" in lines
    assert "Read-only" in done.stderr


def test_sessions_leave_nothing_mounted_on_the_host(arm64_root: Path) -> None:
    assert arm64.run_in_root(arm64_root, ["/bin/true"], timeout=60).returncode == 0
    assert arm64.mounts_below(arm64_root) == []


def test_the_root_records_its_build(arm64_root: Path) -> None:
    info = arm64.root_info(arm64_root)
    assert info["key"] == arm64.root_key()
    assert "aarch64" in str(info["versions"]) and "onnxruntime" in str(info["versions"])


def test_the_key_covers_what_goes_into_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    key = arm64.root_key()
    assert arm64.root_key() == key
    monkeypatch.setattr(arm64, "PIP_REQUIREMENTS", (*arm64.PIP_REQUIREMENTS, "executorch"))
    assert arm64.root_key() != key


def test_missing_qemu_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arm64.os, "geteuid", lambda: 0)
    monkeypatch.setattr(arm64, "QEMU", "/nonexistent/qemu-aarch64-static")
    reason = arm64.emulation_missing_reason()
    assert reason is not None and "apt-get install -y qemu-user-static" in reason


def test_not_root_is_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arm64.os, "geteuid", lambda: 1000)
    assert "root" in (arm64.emulation_missing_reason() or "")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("enabled\ninterpreter /x\nflags: POCF\n", None),
        ("enabled\ninterpreter /x\nflags: PO\n", "lacks the F flag"),
        ("disabled\ninterpreter /x\nflags: POCF\n", "is disabled"),
    ],
)
def test_a_registration_without_the_fix_flag_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, expected: str | None
) -> None:
    (tmp_path / "register").write_text("")
    (tmp_path / arm64.BINFMT_ENTRY).write_text(entry)
    monkeypatch.setattr(arm64, "BINFMT_DIR", tmp_path)
    reason = arm64._register_qemu()
    assert reason == expected or (expected is not None and expected in (reason or ""))
