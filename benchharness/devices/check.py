"""``bench devices check``: is a device reachable, what is it, and are its runtimes there?

Everything is read through the Transport interface in one shell round trip (a POSIX ``sh``
script whose sections start with ``@@NAME`` lines), so the same code serves this host, an SSH
board and an Android phone, and a slow link costs one latency, not twenty.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from benchharness.devices.profile import DeviceProfile
from benchharness.errors import TransportError
from benchharness.transport.base import Transport, quote_argv

#: The whole probe reads a few small files; 60 s covers a phone waking up over Wi-Fi adb.
CHECK_TIMEOUT_S = 60.0
#: Marker that starts each section of the probe's output.
SECTION = "@@"
#: Where free space is measured when a profile names no workdir (local runs use temp files).
DEFAULT_PROBE_DIR = "/tmp"
#: Kernel thermal zones report millidegrees Celsius.
MILLI = 1000.0
#: Hex digits of a native tool's sha256 shown as its version (the same as runs.csv records).
VERSION_HASH_CHARS = 16
#: Readings outside this range (°C) are sensors that are off or report nonsense (-273, 0, 1e6).
PLAUSIBLE_C = (-40.0, 150.0)

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
        f"echo {SECTION}uname; uname -srm 2>/dev/null",
        f"echo {SECTION}android; getprop ro.build.version.release 2>/dev/null",
        f"echo {SECTION}soc; for p in ro.soc.manufacturer ro.soc.model ro.board.platform "
        'ro.product.model; do echo "$p=$(getprop $p 2>/dev/null)"; done',
        f"echo {SECTION}cpuinfo; grep -E '^(model name|Hardware|Model|CPU part|Processor)' "
        "/proc/cpuinfo 2>/dev/null",
        f"echo {SECTION}cpus; for c in /sys/devices/system/cpu/cpu[0-9]*; do "
        '[ -d "$c" ] || continue; '
        'echo "${c##*/} $(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null || echo -) '
        '$(cat $c/cpufreq/scaling_governor 2>/dev/null || echo -)"; done',
        f"echo {SECTION}thermal; for z in /sys/class/thermal/thermal_zone*; do "
        '[ -r "$z/temp" ] || continue; '
        'echo "$(cat $z/type 2>/dev/null || echo ${z##*/}) $(cat $z/temp 2>/dev/null)"; done',
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


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(SECTION):
            current = out.setdefault(line[len(SECTION) :].strip(), [])
        elif current is not None and line.strip():
            current.append(line.rstrip())
    return out


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
    s = _sections(text)
    report.os = next(iter(s.get("uname", [])), None)
    release = next(iter(s.get("android", [])), None)
    if release:
        report.android_release = release
        report.os = f"Android {release}" + (f" ({report.os})" if report.os else "")
    props = dict(line.partition("=")[::2] for line in s.get("soc", []))
    soc = " ".join(v for k in ("ro.soc.manufacturer", "ro.soc.model") if (v := props.get(k)))
    report.soc = soc or props.get("ro.board.platform") or None
    cpu_lines = s.get("cpuinfo", [])
    for key in ("model name", "Model", "Hardware", "Processor"):
        value = next((ln.split(":", 1)[1].strip() for ln in cpu_lines if ln.startswith(key)), "")
        if value:
            report.cpu_model = value
            break
    if report.cpu_model is None:
        parts = sorted({ln.split(":", 1)[1].strip() for ln in cpu_lines if "CPU part" in ln})
        if parts:
            report.cpu_model = "ARM CPU parts " + ", ".join(parts)
    if report.soc is None and props.get("ro.product.model"):
        report.soc = props["ro.product.model"]
    cpus = []
    for line in s.get("cpus", []):
        fields = line.split()
        if len(fields) == 3 and fields[0].startswith("cpu") and fields[0][3:].isdigit():
            cpus.append((int(fields[0][3:]), fields[1], fields[2]))
    cpus.sort()
    report.cores = len(cpus) or None
    report.max_freq_khz = [int(f) if f.isdigit() else None for _, f, _ in cpus]
    report.governors = [g if g != "-" else None for _, _, g in cpus]
    for line in s.get("thermal", []):
        name, _, value = line.rpartition(" ")
        try:
            celsius = int(value) / MILLI
        except ValueError:
            continue
        if PLAUSIBLE_C[0] <= celsius <= PLAUSIBLE_C[1]:
            key, n = name or "zone", 1
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
