"""What a ``bench worker`` says about itself: plain data, checked field by field.

A coordinator learns the farm from two answers, neither of them an object of the worker's making:

* the marker, a Dask worker metric (``metrics={MARKER: ...}``) that the scheduler reports for
  every worker: which benchharness, runner protocol and farm protocol the worker runs. A worker
  without it is a plain Dask worker: it is never asked anything and never given work;
* the description (``describe_worker``, run on marked workers only): its host, name and devices,
  each device's profile as the table of its TOML file, read back through ``parse_profile`` as if
  it were a file on this machine.

Either answer that is not what this module writes (a wrong type, a missing field, an address that
is not the worker's own, another version) is a ``DescriptionError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchharness import __version__
from benchharness.errors import DeviceProfileError
from benchharness.farm.messages import DeviceStatus, WorkerInfo
from benchharness.ondevice.protocol import PROTOCOL_VERSION
from benchharness.profiles.device_profile import (
    CONSTRAINT_LIMITS,
    MAX_TABLE_DEPTH,
    DeviceProfile,
    parse_profile,
)

#: Bumped whenever what the coordinator and a worker exchange changes (these answers, the
#: tasks and their outcomes); a worker of another version is not given work.
FARM_PROTOCOL_VERSION = 1
#: The name of the Dask worker metric that marks a ``bench worker``.
MARKER = "benchharness"
#: Most devices one worker may describe, and the longest text a field may hold.
MAX_DEVICES = 256
MAX_TEXT = 4096


class DescriptionError(ValueError):
    """A worker's answer that is not a description of this version; the message names why."""


@dataclass(frozen=True)
class Marker:
    """The versions a worker's metric says it runs."""

    harness_version: str
    protocol_version: int
    farm_version: int

    @property
    def compatible(self) -> bool:
        return (self.harness_version, self.protocol_version, self.farm_version) == (
            __version__, PROTOCOL_VERSION, FARM_PROTOCOL_VERSION
        )  # fmt: skip

    def describe(self) -> str:
        return (
            f"benchharness {self.harness_version} (runner protocol {self.protocol_version}, "
            f"farm protocol {self.farm_version})"
        )


def marker() -> dict[str, Any]:
    """This process's marker, as a worker publishes it."""
    return {"harness_version": __version__, "protocol_version": PROTOCOL_VERSION,
            "farm_version": FARM_PROTOCOL_VERSION}  # fmt: skip


def this_version() -> Marker:
    return Marker(__version__, PROTOCOL_VERSION, FARM_PROTOCOL_VERSION)


def read_marker(metrics: object) -> Marker | None:
    """The marker in a worker's metrics as the scheduler reports them; None for a worker
    without one (a plain Dask worker); DescriptionError for one that is malformed."""
    if not isinstance(metrics, Mapping) or MARKER not in metrics:
        return None
    f = _Fields(metrics[MARKER], "the marker")
    return Marker(f.text("harness_version"), f.integer("protocol_version"),
                  f.integer("farm_version"))  # fmt: skip


# --- the description ---------------------------------------------------------------------------


def profile_table(profile: DeviceProfile) -> dict[str, Any]:
    """A profile as the TOML table ``parse_profile`` reads (paths already absolute)."""
    table: dict[str, Any] = {
        "name": profile.name,
        "transport": profile.transport,
        "description": profile.description,
        "port": profile.port,
        "runtimes": dict(profile.runtimes),
        "runner": profile.runner,
        "cooldown": {"min_s": profile.cooldown_min_s, "max_s": profile.cooldown_max_s},
        "fixed_performance": profile.fixed_performance,
        "providers": list(profile.providers),
    }
    optional = {
        "host": profile.host, "user": profile.user, "key_file": profile.key_file,
        "known_hosts": profile.known_hosts, "serial": profile.serial,
        "threads": profile.threads, "affinity": profile.affinity, "workdir": profile.workdir,
        "class": profile.device_class,
    }  # fmt: skip
    table.update({k: v for k, v in optional.items() if v is not None})
    constraints: dict[str, Any] = {
        k: getattr(profile, k) for k in CONSTRAINT_LIMITS if getattr(profile, k) is not None
    }
    if profile.supported_ops is not None:
        constraints["supported_ops"] = list(profile.supported_ops)
    if constraints:
        table["constraints"] = constraints
    notes = profile.extra.get("notes")
    if isinstance(notes, str):
        table["notes"] = notes
    return table


def worker_payload(info: WorkerInfo) -> dict[str, Any]:
    """A worker's description as plain data (what ``describe_worker`` returns)."""
    return {
        **marker(),
        "address": info.address,
        "host": info.host,
        "name": info.name,
        "devices": [
            {"profile": profile_table(d.profile),
             "path": str(d.profile.path) if d.profile.path else None,
             "busy": d.busy, "gone": d.gone, "summary": d.summary}
            for d in info.devices
        ],
    }  # fmt: skip


def parse_worker(data: object, address: str) -> WorkerInfo:
    """The description a worker at ``address`` gave, checked; DescriptionError if it is not
    one of this version, or names another address."""
    f = _Fields(data, f"the description of {address}")
    version = Marker(f.text("harness_version"), f.integer("protocol_version"),
                     f.integer("farm_version"))  # fmt: skip
    if not version.compatible:
        raise DescriptionError(f"the worker at {address} runs {version.describe()}")
    said = f.text("address")
    if said != address:
        raise DescriptionError(f"the worker at {address} describes itself as {said}")
    devices = f.items("devices", MAX_DEVICES)
    return WorkerInfo(
        address=address,
        host=f.text("host"),
        name=f.text("name"),
        harness_version=version.harness_version,
        protocol_version=version.protocol_version,
        devices=[_device(d, f"{f.where}, device {i}") for i, d in enumerate(devices)],
    )


def _device(data: object, where: str) -> DeviceStatus:
    f = _Fields(data, where)
    table = _plain(f.get("profile", Mapping), f"{where}, profile")
    path = f.optional_text("path")
    try:
        profile = parse_profile(table, None)
    except DeviceProfileError as exc:
        raise DescriptionError(f"{where}: {exc}") from None
    if path:
        profile = replace(profile, path=Path(path))
    return DeviceStatus(profile=profile, busy=f.optional_text("busy"),
                        gone=f.optional_text("gone"), summary=f.text("summary"))  # fmt: skip


def _plain(value: Any, where: str, depth: int = 0) -> Any:
    """A table as TOML would give it: dicts with text keys, lists (the wire may have made them
    tuples), text, numbers and booleans; nested no deeper than a profile file may be."""
    if depth > MAX_TABLE_DEPTH:
        raise DescriptionError(f"{where}: nests deeper than {MAX_TABLE_DEPTH} levels")
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise DescriptionError(f"{where}: a key is not text")
        return {k: _plain(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where, depth + 1) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise DescriptionError(f"{where}: {type(value).__name__} is not plain data")


class _Fields:
    """A JSON-like object's fields, each checked for its type as it is read."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise DescriptionError(f"{where}: expected a table, got {type(data).__name__}")
        self.data, self.where = data, where

    def get(self, key: str, kind: type) -> Any:
        if key not in self.data:
            raise DescriptionError(f"{self.where}: field {key!r} is missing")
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise DescriptionError(
                f"{self.where}: field {key!r}: expected {kind.__name__}, got {type(value).__name__}"
            )
        return value

    def text(self, key: str) -> str:
        value: str = self.get(key, str)
        if len(value) > MAX_TEXT:
            raise DescriptionError(f"{self.where}: field {key!r} is longer than {MAX_TEXT}")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def integer(self, key: str) -> int:
        value: int = self.get(key, int)
        return value

    def items(self, key: str, most: int) -> list[Any]:
        value = self.data.get(key)
        if not isinstance(value, (list, tuple)):
            raise DescriptionError(f"{self.where}: field {key!r}: expected a list")
        if len(value) > most:
            raise DescriptionError(f"{self.where}: field {key!r} has more than {most} items")
        return list(value)
