"""Fixtures of the emulated ARM64 devices: the aarch64 root (built once per machine and cached),
a real sshd whose sessions run in it (the board) and the emulated adb phone whose shell runs in
it, each started once per session. Every test here is marked ``arm64`` (``-m arm64`` selects
them, ``-m 'not arm64'`` leaves them out).

They skip, saying why, where the devices cannot exist: not root, qemu-user-static or binfmt_misc
missing, no sshd or adb, or a root not built yet. A missing root is built (minutes) only when
``BENCH_ARM64_BUILD=1`` (CI sets it); otherwise ``scripts/arm64_board.py build`` builds it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import arm64
from tests.support.adbd import EmulatedDevice
from tests.support.fixtures import AdbServer, require_sshd
from tests.support.sshd import SSHServer

MARKER = "arm64: runs on the emulated ARM64 board and phone (qemu-user, tests/support/arm64.py)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.arm64)


@pytest.fixture(scope="session")
def arm64_root() -> Path:
    """The built aarch64 root; skips (or, with BENCH_ARM64_BUILD=1, builds) when missing."""
    reason = arm64.emulation_missing_reason()
    if reason:
        pytest.skip(f"no emulated ARM64 devices here: {reason}")
    root = arm64.root_dir()
    if arm64.is_built(root):
        return root
    if os.environ.get(arm64.BUILD_ENV) != "1":
        pytest.skip(
            f"the arm64 root is not built yet ({root}): run `.venv/bin/python "
            f"scripts/arm64_board.py build` once (5-15 min), or set {arm64.BUILD_ENV}=1 to let "
            "the tests build it"
        )
    reason = arm64.build_missing_reason()
    if reason:
        pytest.skip(f"cannot build the arm64 root: {reason}")
    return arm64.ensure_root()


@pytest.fixture(scope="session")
def arm64_board(arm64_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A real sshd on loopback whose sessions run in the aarch64 root."""
    require_sshd()
    server = arm64.board_server(tmp_path_factory.mktemp("arm64-sshd"), arm64_root)
    server.start()
    yield server
    server.kill()
    shutil.rmtree(server.home, ignore_errors=True)  # the session home inside the shared root


@pytest.fixture(scope="session")
def arm64_phone(arm64_root: Path, adb_server: AdbServer) -> Iterator[EmulatedDevice]:
    """The emulated phone, its shell in the aarch64 root, connected to the private adb server."""
    device = arm64.phone_device(arm64_root)
    device.start()
    connected = adb_server.adb("connect", device.serial)
    if "connected" not in connected.stdout:
        device.stop()
        pytest.fail(f"adb connect {device.serial} failed: {connected.stdout}")
    yield device
    adb_server.adb("disconnect", device.serial)
    device.stop()


@pytest.fixture(scope="session")
def phone_workdir(arm64_phone: EmulatedDevice) -> Iterator[str]:
    """A work place of this session's own on the phone (sessions may share the root)."""
    workdir = f"/data/local/tmp/bh-test-{secrets.token_hex(4)}"
    yield workdir
    shutil.rmtree(arm64_phone.host_path(workdir), ignore_errors=True)
