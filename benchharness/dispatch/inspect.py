"""``bench devices check``: is a device reachable, what is it, and are its runtimes there?

Everything is read through the Transport interface in one shell round trip: the environment
probe every runner uses (``ondevice/probe.py``) followed by sections of this command's own (free
space, the runtimes), so the same code serves this host, an SSH board and an Android phone, a
slow link costs one latency, not twenty, and what it shows is what the rows will record.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from benchharness.errors import TransportError
from benchharness.ondevice import probe
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.transport.base import Transport, quote_argv

#: The whole probe reads a few small files; 60 s covers a phone waking up over Wi-Fi adb.
CHECK_TIMEOUT_S = 60.0
#: Marker that starts each section of the probe's output (the probe's own).
SECTION = probe.MARK
#: Where free space is measured when a profile names no workdir (local runs use temp files).
DEFAULT_PROBE_DIR = "/tmp"
#: Hex digits of a native tool's sha256 shown as its version (the same as runs.csv records).
VERSION_HASH_CHARS = 16

#: Device-side Python that reports the versions of the runtimes the runner can use.
_PY_VERSIONS = """\
import json, platform
out = {"python": platform.python_version()}
for mod in ("onnxruntime", "ai_edge_litert", "tflite_runtime", "numpy"):
    try:
        m = __import__(mod)
        out[mod] = getattr(m, "__version__", "unknown")
    except Exception:
        out[mod] = None
try:
    import onnxruntime
    out["onnxruntime_providers"] = onnxruntime.get_available_providers()
except Exception:
    pass
try:  # the pte format's runtime; its version from the metadata, as importing it loads torch
    from importlib import metadata
    out["executorch"] = metadata.version("executorch")
except Exception:
    out["executorch"] = None
print(json.dumps(out))
"""


@dataclass
class RuntimeStatus:
    """One runtime of the profile: there or not, and its version when it can tell."""

    path: str
    present: bool
    version: str | None = None
    detail: str = ""


@dataclass
class DeviceReport:
    device: str
    transport: str
    reachable: bool
    error: str | None = None
    os: str | None = None
    android_release: str | None = None
    cpu_model: str | None = None
    soc: str | None = None
    cores: int | None = None
    max_freq_khz: list[int | None] = field(default_factory=list)
    governors: list[str | None] = field(default_factory=list)
    temperatures_c: dict[str, float] = field(default_factory=dict)
    workdir: str | None = None
    free_bytes: int | None = None
    runtimes: dict[str, RuntimeStatus] = field(default_factory=dict)
    python_packages: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def probe_script(profile: DeviceProfile) -> str:
    """The one shell script that gathers everything (each command may fail on its own)."""
    workdir = profile.workdir or DEFAULT_PROBE_DIR
    lines = [
        probe.SCRIPT,
        # free space where the workdir is, or would be created
        f"echo {SECTION}df; d={quote_argv([workdir])}; "
        'while [ ! -d "$d" ]; do d=$(dirname "$d"); done; df -Pk "$d" 2>/dev/null | tail -n 1',
    ]
    for name, path in sorted(profile.runtimes.items()):
        lines.append(f"echo {SECTION}runtime:{name}")
        if name == "python":
            lines.append(
                f"if [ -x {quote_argv([path])} ]; then "
                f"{quote_argv([path, '-c', _PY_VERSIONS])} 2>&1 | tail -n 3; "
                "else echo MISSING; fi"
            )
        else:
            # native tools print no version: their sha256 identifies the build (runners/native.py)
            lines.append(
                f"if [ -x {quote_argv([path])} ]; then echo OK; "
                f"sha256sum {quote_argv([path])} 2>/dev/null; else echo MISSING; fi"
            )
    return "\n".join(lines) + "\n"


def check_device(
    profile: DeviceProfile, transport: Transport, *, timeout: float = CHECK_TIMEOUT_S
) -> DeviceReport:
    """Reach the device and describe it; an unreachable device gives ``reachable=False`` and
    the transport's message (what to check) in ``error`` rather than an exception."""
    report = DeviceReport(
        device=profile.name,
        transport=profile.transport,
        reachable=False,
        workdir=profile.workdir or DEFAULT_PROBE_DIR,
    )
    try:
        result = transport.run(["sh", "-c", probe_script(profile)], timeout=timeout)
    except TransportError as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        return report
    report.reachable = True
    parse_probe(result.stdout, profile, report)
    return report


def parse_probe(text: str, profile: DeviceProfile, report: DeviceReport) -> None:
    s = probe.sections(text)
    parsed = probe.parse(text)
    report.os = parsed.get("os")
    report.android_release = parsed.get("android_release")
    report.soc = parsed.get("soc")
    report.cpu_model = parsed.get("cpu_model")
    cpus = parsed.get("cpus", [])
    report.cores = len(cpus) or None
    report.max_freq_khz = [c["max_khz"] for c in cpus]
    report.governors = [c["governor"] for c in cpus]
    for name, celsius in parsed.get("zones", []):
        key, n = name, 1
        while key in report.temperatures_c:  # several zones may share a type name
            n += 1
            key = f"{name}#{n}"
        report.temperatures_c[key] = celsius
    df = (s.get("df") or [""])[0].split()
    if len(df) >= 4 and df[3].isdigit():
        report.free_bytes = int(df[3]) * 1024
    for name, path in sorted(profile.runtimes.items()):
        lines = s.get(f"runtime:{name}", [])
        report.runtimes[name] = _runtime_status(name, path, lines, report)


def _runtime_status(name: str, path: str, lines: list[str], report: DeviceReport) -> RuntimeStatus:
    if not lines or lines[-1] == "MISSING":
        return RuntimeStatus(path, False, detail=f"{path} is missing or not executable")
    if name != "python":
        digest = lines[1].split()[0] if len(lines) > 1 and lines[1].split() else ""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            return RuntimeStatus(path, True, detail="executable")
        version = f"sha256:{digest[:VERSION_HASH_CHARS]}"
        return RuntimeStatus(path, True, version=version, detail=f"executable, {version}")
    try:
        versions = json.loads(lines[-1])
    except ValueError:
        return RuntimeStatus(path, False, detail="python failed: " + " ".join(lines)[-300:])
    report.python_packages = versions
    found = [
        f"{mod} {ver}"
        for mod in ("onnxruntime", "ai_edge_litert", "tflite_runtime")
        if (ver := versions.get(mod))
    ]
    if not found:
        return RuntimeStatus(
            path,
            False,
            version=versions.get("python"),
            detail=f"python {versions.get('python')} has none of onnxruntime, ai_edge_litert, "
            f"tflite_runtime; install them with `{posixpath.basename(path)} -m pip install "
            "onnxruntime ai-edge-litert numpy` on the device",
        )
    return RuntimeStatus(path, True, version=versions.get("python"), detail=", ".join(found))
