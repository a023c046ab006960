"""Device profiles: ``devices/NAME.toml`` files, validated on load.

A profile says how to reach a device (transport and connection fields) and how to run on it
(runtimes, threads, affinity, work directory, cooldown, constraints). Every validation error
names the file, the field and what was expected.

A profile path may name any file, so the file is read within bounds: at most MAX_PROFILE_BYTES,
UTF-8, TOML, nested at most MAX_TABLE_DEPTH deep; and every number is finite and in its range.
Anything else is a DeviceProfileError naming the file.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness.errors import DeviceProfileError

#: Profiles shipped with the repository (``devices/`` at the top level of the checkout).
BUILTIN_DIR = Path(__file__).resolve().parents[2] / "devices"

#: Extra directories of a user's own profiles, ``os.pathsep``-separated.
PROFILE_PATH_ENV = "BENCH_DEVICES_PATH"

TRANSPORTS = ("local", "ssh", "adb")
RUNTIME_KEYS = ("python", "benchmark_model", "onnxruntime_perf_test", "executor_runner")
#: ``runner``: ``auto`` takes the python runner when ``runtimes.python`` is set and otherwise the
#: native tool of each format (``runners/native.py``); ``python``/``native`` force one of them.
RUNNERS = ("auto", "python", "native")
#: Byte limits of ``[constraints]`` that `bench check` tests a model against.
CONSTRAINT_LIMITS = (
    "max_model_bytes",
    "max_activation_bytes",
    "max_layer_bytes",
    "max_total_bytes",
)

#: A device class names a farm resource (Dask), so it is kept to plain names.
DEVICE_CLASS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Default SSH port.
DEFAULT_SSH_PORT = 22
#: Android's only world-writable place where executables may run.
DEFAULT_ADB_WORKDIR = "/data/local/tmp/benchharness"
#: Scratch place on boards and hosts reached over SSH: under the device user's home (the
#: transport resolves ``~``), where no other user can create it first, as anyone can a fixed
#: /tmp path; the XDG cache directory, since everything there can be made again.
DEFAULT_SSH_WORKDIR = "~/.cache/benchharness"

#: Profile names end up in file names, lock names and CSV cells: one safe path component.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
NAME_EXPECTED = (
    "letters, digits, '.', '_' or '-', starting with a letter or digit, at most 64 characters"
)
#: What a lock key does not keep from the physical identity (it becomes '-'): anything but
#: letters, digits and single dots.
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9.]+|\.{2,}")
#: Length of the readable part of a lock key, and of its hash part (64 bits: no collisions).
SLUG_CHARS = 40
KEY_HASH_CHARS = 16

#: A profile is a few hundred bytes; a larger file is something else given by mistake.
MAX_PROFILE_BYTES = 1 << 20
#: The deepest field is ``constraints.supported_ops`` (a list in a table: 3 levels); deeper is
#: no profile, and values nested without bound would make any later walk over them recurse.
MAX_TABLE_DEPTH = 8
#: More threads than any device has cores: a typo, and a thread flood if passed on.
MAX_THREADS = 4096
#: A pause of more than a day between two jobs is a typo (minutes meant as seconds?).
MAX_COOLDOWN_S = 86400.0
#: Byte limits fit a 64-bit integer column.
MAX_LIMIT_BYTES = 2**63 - 1
#: Longest text of a field (a path, a host, a description line).
MAX_TEXT_CHARS = 4096
#: Control characters no field may hold (tab and newline may): a NUL makes every path and
#: command argument made of it fail (``ValueError: embedded null byte``), an ESC rewrites the
#: terminal that prints it.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    transport: str
    path: Path | None = None
    description: str = ""
    host: str | None = None
    port: int = DEFAULT_SSH_PORT
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    serial: str | None = None
    runtimes: dict[str, str] = field(default_factory=dict)
    runner: str = "auto"
    threads: int | None = None
    affinity: str | None = None
    workdir: str | None = None
    cooldown_min_s: float = 0.0
    cooldown_max_s: float = 0.0
    fixed_performance: bool = False
    providers: tuple[str, ...] = ()
    max_model_bytes: int | None = None
    max_activation_bytes: int | None = None
    max_layer_bytes: int | None = None
    max_total_bytes: int | None = None
    supported_ops: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``class``: identical devices on different farm hosts share it and stand in for each other
    device_class: str | None = None

    def __post_init__(self) -> None:
        # also for profiles built in code, which skip parse_profile
        check_name(self.name, str(self.path) if self.path else "<profile>")

    @property
    def physical_id(self) -> str:
        """The physical device this profile reaches (see physical_identity)."""
        return physical_identity(self)

    @property
    def lock_key(self) -> str:
        """File-name-safe key of the physical device, for machine-wide locks (see lock_key)."""
        return lock_key(self)


def check_name(name: object, where: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise DeviceProfileError(
            f"{where}: field 'name': expected {NAME_EXPECTED}, got {_shown(name)}"
        )


def _host(host: str | None) -> str:
    # host names are case-insensitive and may end in the root dot; addresses are left as they are
    return (host or "").strip().rstrip(".").lower()


def physical_identity(profile: DeviceProfile) -> str:
    """Which physical device a profile reaches: ``ssh:HOST:PORT``, ``adb:SERIAL`` (a USB serial
    or the HOST:PORT of a network device) or ``local:HOSTNAME``. Two profiles for one device
    (other name, user, threads or runtimes) have the same identity; the SSH user is left out on
    purpose: two accounts on one board still share its CPUs. A host reached under two names
    (an address and a name) is not recognised as one: nothing is resolved here."""
    if profile.transport == "ssh":
        return f"ssh:{_host(profile.host)}:{profile.port}"
    if profile.transport == "adb":
        serial = (profile.serial or "").strip()
        host, sep, port = serial.rpartition(":")
        return f"adb:{_host(host)}:{port}" if sep and port.isdigit() else f"adb:{serial}"
    return f"{profile.transport}:{socket.gethostname().lower()}"


def lock_key(profile: DeviceProfile) -> str:
    """A file name for the device lock, the same for every profile of one physical device on
    this machine: a readable slug of the identity and a sha256 prefix of it, so hostile host
    names or serials can neither escape the lock directory nor collide."""
    identity = physical_identity(profile)
    slug = re.sub("-{2,}", "-", _SLUG_UNSAFE.sub("-", identity))
    slug = slug.strip("-.")[:SLUG_CHARS].strip("-.") or "device"
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:KEY_HASH_CHARS]
    return f"{slug}-{digest}"


def search_dirs(extra: list[Path] | None = None) -> list[Path]:
    dirs = list(extra or [])
    env = os.environ.get(PROFILE_PATH_ENV, "")
    dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(BUILTIN_DIR)
    return dirs


def available_profiles(extra: list[Path] | None = None) -> dict[str, Path]:
    """Profile name -> file; earlier directories win, so a user's profile shadows a shipped one."""
    found: dict[str, Path] = {}
    for d in search_dirs(extra):
        if d.is_dir():
            for f in sorted(d.glob("*.toml")):
                found.setdefault(f.stem, f)
    return found


def find_profile(name_or_path: str, extra: list[Path] | None = None) -> Path:
    candidate = Path(name_or_path)
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        if candidate.is_file():
            return candidate
        raise DeviceProfileError(f"device profile file {name_or_path} does not exist")
    profiles = available_profiles(extra)
    if name_or_path in profiles:
        return profiles[name_or_path]
    names = ", ".join(sorted(profiles)) or "none"
    raise DeviceProfileError(
        f"no device profile named {name_or_path!r} (known: {names}); write "
        f"devices/{name_or_path}.toml, put it in a directory named by ${PROFILE_PATH_ENV}, "
        "or pass --device path/to/profile.toml"
    )


def load_profile(name_or_path: str, extra: list[Path] | None = None) -> DeviceProfile:
    path = find_profile(name_or_path, extra)
    return parse_profile(read_profile_table(path), path)


def _read_bounded(path: Path) -> bytes:
    """At most MAX_PROFILE_BYTES of ``path``; DeviceProfileError when it holds more or cannot
    be read."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise DeviceProfileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_PROFILE_BYTES:
        raise DeviceProfileError(
            f"{path}: not a device profile: it holds more than {MAX_PROFILE_BYTES} bytes"
        )
    return data


def _depth(value: Any) -> int:
    """How deep tables and lists nest in ``value`` (a scalar is 0), walked without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            stack.extend((v, level + 1) for v in item)
    return deepest


def read_profile_table(path: Path) -> dict[str, Any]:
    """The TOML table of the profile file ``path``; DeviceProfileError naming the file when it
    cannot be read, is too large, is not UTF-8 text, is not TOML or nests too deep."""
    data = _read_bounded(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeviceProfileError(
            f"{path}: not a device profile: not UTF-8 text (byte {exc.start}); a profile is a "
            "TOML file such as devices/local.toml"
        ) from None
    try:
        table = tomllib.loads(text)
    except RecursionError:
        raise DeviceProfileError(
            f"{path}: not a device profile: it nests deeper than {MAX_TABLE_DEPTH} levels"
        ) from None
    except ValueError as exc:  # TOMLDecodeError, and int()'s refusal of thousands of digits
        raise DeviceProfileError(f"{path}: not valid TOML: {exc}") from exc
    if _depth(table) > MAX_TABLE_DEPTH:
        raise DeviceProfileError(
            f"{path}: not a device profile: it nests deeper than {MAX_TABLE_DEPTH} levels"
        )
    return table


class _Fields:
    """Typed access to a profile table that turns every mistake into a DeviceProfileError."""

    def __init__(self, data: dict[str, Any], path: Path | None) -> None:
        self.data = data
        self.where = str(path) if path else "<profile>"
        self.used: set[str] = set()

    def fail(self, key: str, expected: str) -> DeviceProfileError:
        got = _shown(self.data.get(key))
        return DeviceProfileError(f"{self.where}: field '{key}': expected {expected}, got {got}")

    def get(
        self, key: str, kind: type | tuple[type, ...], expected: str, default: Any = None
    ) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            raise self.fail(key, expected)
        if not isinstance(value, kind):
            raise self.fail(key, expected)
        if isinstance(value, str) and not _is_text(value):
            raise self.fail(key, f"{expected} ({TEXT_EXPECTED})")
        return value

    def required(self, key: str, kind: type, expected: str) -> Any:
        if key not in self.data:
            raise DeviceProfileError(f"{self.where}: field '{key}' is missing: expected {expected}")
        return self.get(key, kind, expected)


def _shown(value: Any) -> str:
    """``repr(value)``, cut to SHOWN_CHARS: a message quotes what it got, not all of it."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _key(key: str) -> str:
    """A key of the file as a message names it: as written when it is plain, else quoted."""
    return key if _is_text(key) and len(key) <= SHOWN_CHARS else _shown(key)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _is_text(value: object) -> bool:
    """A string a field may hold: at most MAX_TEXT_CHARS, no control characters."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_TEXT_CHARS
        and _CONTROL_RE.search(value) is None
    )


#: How much of a wrong value a message quotes.
SHOWN_CHARS = 80
#: What _is_text asks of a string, for messages.
TEXT_EXPECTED = f"at most {MAX_TEXT_CHARS} characters, no control characters"


def parse_profile(data: dict[str, Any], path: Path | None = None) -> DeviceProfile:
    """A profile's TOML table as a DeviceProfile; DeviceProfileError names the first bad field.

    Fields are checked in a fixed order (the first mistake is the one reported).
    """
    f = _Fields(data, path)
    name = _profile_name(f, path)
    transport, host, serial, port = _connection(f)
    runtimes = _runtimes(f)
    runner = f.get("runner", str, f"one of {', '.join(RUNNERS)}", "auto")
    if runner not in RUNNERS:
        raise f.fail("runner", f"one of {', '.join(RUNNERS)}")
    threads_expected = f"a positive integer of at most {MAX_THREADS}"
    threads = f.get("threads", int, threads_expected)
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise f.fail("threads", threads_expected)
    affinity = _affinity(f)
    workdir = _workdir(f, transport)
    cmin, cmax = _cooldown(f)
    limits, ops = _constraints(f)
    providers = f.get("providers", list, "a list of ONNX Runtime execution providers", [])
    if not all(_is_text(p) and p for p in providers):
        raise f.fail("providers", "a list of ONNX Runtime execution providers")
    fixed = f.get("fixed_performance", bool, "true or false", False)
    description = f.get("description", str, "a string", "")
    user = f.get("user", str, "a user name")
    key_file = f.get("key_file", str, "a path to a private key")
    known_hosts = f.get("known_hosts", str, "a path to a known_hosts file")
    device_class = f.get("class", str, "a device class name such as 'pixel4'")
    if device_class is not None and not DEVICE_CLASS_RE.match(device_class):
        raise f.fail("class", "a name of letters, digits, '.', '_' or '-'")
    extra = _extra_fields(f)
    return DeviceProfile(
        name=name,
        transport=transport,
        path=path,
        description=description,
        host=host,
        port=port,
        user=user,
        key_file=_expand(key_file, path),
        known_hosts=_expand(known_hosts, path),
        serial=serial,
        runtimes=dict(runtimes),
        runner=runner,
        threads=threads,
        affinity=affinity,
        workdir=workdir,
        cooldown_min_s=cmin,
        cooldown_max_s=cmax,
        fixed_performance=fixed,
        providers=tuple(providers),
        max_model_bytes=limits["max_model_bytes"],
        max_activation_bytes=limits["max_activation_bytes"],
        max_layer_bytes=limits["max_layer_bytes"],
        max_total_bytes=limits["max_total_bytes"],
        supported_ops=tuple(ops) if ops is not None else None,
        extra=extra,
        device_class=device_class,
    )


def _profile_name(f: _Fields, path: Path | None) -> str:
    """``name``, else the file's stem."""
    default_name = path.stem if path else None
    name: str | None = f.get("name", str, "a string", default_name)
    if not name:
        raise DeviceProfileError(f"{f.where}: field 'name' is missing: expected a string")
    check_name(name, f.where)
    return name


def _connection(f: _Fields) -> tuple[str, str | None, str | None, int]:
    """``transport`` and what it needs to reach the device: (transport, host, serial, port)."""
    transport = f.required("transport", str, f"one of {', '.join(TRANSPORTS)}")
    if transport not in TRANSPORTS:
        raise f.fail("transport", f"one of {', '.join(TRANSPORTS)}")
    host = f.get("host", str, "a host name or address")
    serial = f.get("serial", str, "an adb serial (adb devices) or host:port")
    if transport == "ssh" and not host:
        raise DeviceProfileError(f"{f.where}: field 'host' is missing: expected the SSH host")
    if transport == "adb" and not serial:
        raise DeviceProfileError(f"{f.where}: field 'serial' is missing: expected an adb serial")
    port = f.get("port", int, "an integer port 1-65535", DEFAULT_SSH_PORT)
    if not 0 < port < 65536:
        raise f.fail("port", "an integer port 1-65535")
    return transport, host, serial, port


def _runtimes(f: _Fields) -> dict[str, str]:
    """``[runtimes]``: known runtime names, each a non-empty path."""
    runtimes: dict[str, str] = f.get("runtimes", dict, "a table of runtime = path", {})
    for key, value in runtimes.items():
        if key not in RUNTIME_KEYS:
            raise DeviceProfileError(
                f"{f.where}: field 'runtimes.{_key(key)}': expected one of "
                f"{', '.join(RUNTIME_KEYS)}"
            )
        if not _is_text(value) or not value:
            raise DeviceProfileError(
                f"{f.where}: field 'runtimes.{key}': expected a path string ({TEXT_EXPECTED})"
            )
    return runtimes


def _affinity(f: _Fields) -> str | None:
    """``affinity``: a non-zero hexadecimal taskset mask."""
    affinity: str | None = f.get("affinity", str, "a hexadecimal taskset mask such as 'f0'")
    if affinity is not None:
        try:
            if int(affinity, 16) <= 0:
                raise ValueError
        except ValueError:
            raise f.fail("affinity", "a hexadecimal taskset mask such as 'f0'") from None
    return affinity


def _workdir(f: _Fields, transport: str) -> str | None:
    """``workdir``: an absolute path (or ``~/...`` over SSH), defaulting by transport."""
    default_workdir = {"adb": DEFAULT_ADB_WORKDIR, "ssh": DEFAULT_SSH_WORKDIR}.get(transport)
    # over SSH, ``~/...`` is the device user's home, resolved on the device by the transport
    home_ok = transport == "ssh"
    where_ok = "an absolute path" + (" or ~/... (the device user's home)" if home_ok else "")
    workdir: str | None = f.get("workdir", str, where_ok, default_workdir)
    if workdir is not None and not (
        workdir.startswith("/") or (home_ok and (workdir == "~" or workdir.startswith("~/")))
    ):
        raise f.fail("workdir", where_ok)
    return workdir


def _cooldown(f: _Fields) -> tuple[float, float]:
    """``[cooldown]``: (min_s, max_s), numbers of seconds from 0 to MAX_COOLDOWN_S; max_s
    defaults to min_s."""
    cooldown = f.get("cooldown", dict, "a table with min_s and max_s", {})
    cmin = cooldown.get("min_s", 0.0)
    cmax = cooldown.get("max_s", cmin)
    for key, val in (("min_s", cmin), ("max_s", cmax)):
        number = not isinstance(val, bool) and isinstance(val, (int, float))
        if not number or not 0 <= val <= MAX_COOLDOWN_S:  # NaN fails the range too
            raise DeviceProfileError(
                f"{f.where}: field 'cooldown.{key}': expected a non-negative number of seconds, "
                f"at most {MAX_COOLDOWN_S:g}, got {_shown(val)}"
            )
    return float(cmin), float(cmax)


def _constraints(f: _Fields) -> tuple[dict[str, int | None], list[str] | None]:
    """``[constraints]``: the byte limits (None where unset) and ``supported_ops``."""
    constraints = f.get("constraints", dict, "a table of limits", {})
    limits: dict[str, int | None] = {}
    for key in CONSTRAINT_LIMITS:
        val = constraints.get(key)
        whole = isinstance(val, int) and not isinstance(val, bool)
        if val is not None and not (whole and 0 < val <= MAX_LIMIT_BYTES):
            raise DeviceProfileError(
                f"{f.where}: field 'constraints.{key}': expected a positive integer of bytes, "
                f"at most {MAX_LIMIT_BYTES}"
            )
        limits[key] = val
    stray = sorted(set(constraints) - set(CONSTRAINT_LIMITS) - {"supported_ops"})
    if stray:
        raise DeviceProfileError(
            f"{f.where}: unknown field 'constraints.{_key(stray[0])}'; expected one of "
            f"{', '.join((*CONSTRAINT_LIMITS, 'supported_ops'))}"
        )
    ops = constraints.get("supported_ops")
    if ops is not None and (not isinstance(ops, list) or not all(_is_text(o) for o in ops)):
        raise DeviceProfileError(
            f"{f.where}: field 'constraints.supported_ops': expected a list of operator names"
        )
    return limits, ops


def _extra_fields(f: _Fields) -> dict[str, Any]:
    """The fields no reader took: only ``notes`` may be among them (anything else is a typo).

    Call it after every other field has been read."""
    extra = {k: v for k, v in f.data.items() if k not in f.used}
    unknown = sorted(set(extra) - {"notes"})
    if unknown:
        raise DeviceProfileError(
            f"{f.where}: unknown field '{_key(unknown[0])}'; check its spelling"
        )
    return extra


def _expand(value: str | None, path: Path | None) -> str | None:
    """``~`` and environment variables expand; a relative path is relative to the profile."""
    if value is None:
        return None
    expanded = Path(os.path.expandvars(os.path.expanduser(value)))
    if not expanded.is_absolute() and path is not None:
        expanded = path.parent / expanded
    return str(expanded)
