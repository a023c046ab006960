"""pytest fixtures for the transport tests: a real sshd, a private adb server, emulated phones,
and small tmpfs mounts (a full or read-only work directory).

Register with ``pytest_plugins = ["tests.support.fixtures"]`` in the top-level conftest.py (test
modules here also name it themselves, which is harmless once the conftest does).
Tests skip, saying why, only when ``/usr/sbin/sshd`` or ``adb`` is not installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.adbd import EmulatedDevice
from tests.support.sshd import SSHServer, free_port, sshd_missing_reason

ADB = "adb"
#: adb's own commands answer in milliseconds; this only stops a wedged server hanging the suite.
ADB_TIMEOUT_S = 30


def require_sshd() -> None:
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(f"real-sshd tests need OpenSSH: {reason}")


def require_adb() -> str:
    path = shutil.which(ADB)
    if path is None:
        pytest.skip("adb tests need the adb client: apt-get install -y adb")
    return path


@pytest.fixture(scope="module")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """One sshd shared by a module's tests that neither kill it nor change its keys."""
    require_sshd()
    with SSHServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def sshd_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., SSHServer]]:
    """Fresh sshd servers for tests that kill, restart or re-key them; ``make(**options)`` passes
    ``options`` to SSHServer (``host_key_type``, ``sftp_server``, ``set_env``)."""
    require_sshd()
    servers: list[SSHServer] = []

    def make(**options: object) -> SSHServer:
        server = SSHServer(tmp_path_factory.mktemp("sshd"), **options)  # type: ignore[arg-type]
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.kill()


class AdbServer:
    """A private adb server: own port and own HOME (no ~/.android/adbkey written, no clash with
    a server on 5037)."""

    def __init__(self, adb_path: str, home: Path) -> None:
        self.adb_path = adb_path
        self.port = free_port()
        self.home = home
        self.env = {"HOME": str(home), "ANDROID_ADB_SERVER_PORT": str(self.port)}

    def adb(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.adb_path, "-P", str(self.port), *args],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=ADB_TIMEOUT_S,
        )

    def transport_options(self) -> dict[str, object]:
        """Keyword arguments that point an AdbTransport at this server."""
        return {"adb_path": self.adb_path, "server_port": self.port, "adb_env": self.env}


@pytest.fixture(scope="session")
def adb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdbServer]:
    server = AdbServer(require_adb(), tmp_path_factory.mktemp("adbhome"))
    started = server.adb("start-server")
    if started.returncode != 0:
        pytest.fail(f"cannot start a private adb server: {started.stderr}")
    yield server
    server.adb("kill-server")


@pytest.fixture
def adb_device_factory(
    adb_server: AdbServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., EmulatedDevice]]:
    """``make(legacy=False, **options)``: a started emulated phone that the private adb server
    lists; ``options`` go to EmulatedDevice (``rc_text``, ``stall_recv_after``)."""
    devices: list[EmulatedDevice] = []

    def make(
        *, legacy: bool = False, sandbox: Path | None = None, **options: object
    ) -> EmulatedDevice:
        device = EmulatedDevice(
            sandbox or tmp_path_factory.mktemp("phone"),
            legacy=legacy,
            **options,  # type: ignore[arg-type]
        )
        device.start()
        devices.append(device)
        connected = adb_server.adb("connect", device.serial)
        if "connected" not in connected.stdout:
            pytest.fail(f"adb connect {device.serial} failed: {connected.stdout}")
        return device

    yield make
    for device in devices:
        adb_server.adb("disconnect", device.serial)
        device.stop()


@pytest.fixture
def tmpfs() -> Iterator[Callable[..., Path]]:
    """``mount(path, size="64k", readonly=False)``: a small tmpfs, to fill up or to be read-only.
    Root can write through any file mode, so only a real mount makes ENOSPC and EROFS happen;
    skips where mounting is not permitted (not root, or a container without CAP_SYS_ADMIN)."""
    mounted: list[Path] = []

    def mount(path: Path, size: str = "64k", readonly: bool = False) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        options = f"size={size}" + (",ro" if readonly else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        with contextlib.suppress(OSError):
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
