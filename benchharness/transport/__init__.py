"""Transports: how commands and files reach a device (this host, SSH, adb)."""

from __future__ import annotations

from typing import Any

from benchharness.errors import DeviceProfileError
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.transport.base import CommandResult, Transport, quote_argv

__all__ = ["CommandResult", "Transport", "open_transport", "quote_argv"]


def open_transport(profile: DeviceProfile, **opts: Any) -> Transport:
    """The transport a profile asks for. ``opts`` go to its constructor (``trust_new_host``,
    ``connect_timeout`` for ssh; ``adb_path``, ``server_port``, ``adb_env`` for adb). Nothing is
    contacted yet: the connection opens on the first command."""
    # imported here so that using one transport never needs another's library (paramiko)
    if profile.transport == "local":
        from benchharness.transport.local import LocalTransport

        return LocalTransport(**opts)
    if profile.transport == "ssh":
        from benchharness.transport.ssh import SSHTransport

        return SSHTransport(profile, **opts)
    if profile.transport == "adb":
        from benchharness.transport.adb import AdbTransport

        return AdbTransport.from_profile(profile, **opts)
    where = profile.path or profile.name
    raise DeviceProfileError(
        f"{where}: field 'transport': expected one of local, ssh, adb, got {profile.transport!r}"
    )
