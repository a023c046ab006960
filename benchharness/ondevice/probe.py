"""The one environment probe: a POSIX ``sh`` script and the parser of what it prints.

Shipped to devices with the runner and imported by the host, so every reader of a device's
environment (the python runner before and after a model, the native tools' shell round trip,
``bench devices check`` and the cooldown) runs the same script and gets the same keys. It is a
shell script, not Python, because devices driven by native tools have no Python; the python
runner runs it with ``sh`` too. Standard library only, and nothing from ``benchharness``.

``environment(parse(text), pinned)`` gives the keys every result row uses: governors and clocks
are read for the CPUs the job is pinned to (all online CPUs when it is not pinned), so
``CLOCKS_UNLOCKED`` means the same thing whichever runner measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Starts every section line of the probe's output; nothing a kernel file holds starts so.
MARK = "@@bh-probe:"
#: Kernel thermal zones report millidegrees Celsius, cpufreq kHz.
MILLI = 1000.0
#: Readings outside this range (°C) are sensors that are off or report nonsense (-273, 1e6).
PLAUSIBLE_C = (-40.0, 150.0)
#: /proc/cpuinfo keys naming the CPU, most specific first (x86, then ARM boards and phones).
CPU_MODEL_KEYS = ("model name", "Hardware", "Model", "Processor", "cpu model", "uarch")
#: Android properties naming the SoC, most specific first.
SOC_PROPS = ("ro.soc.manufacturer", "ro.soc.model", "ro.board.platform", "ro.product.model")

#: Every command may fail on its own (no getprop off Android, no cpufreq in a VM): each prints
#: its section marker first, so a missing file leaves an empty section, never a shifted one.
SCRIPT = "; ".join(
    [
        f"echo {MARK}uname; uname -srm 2>/dev/null",
        f"echo {MARK}android; getprop ro.build.version.release 2>/dev/null",
        f"echo {MARK}soc; for p in {' '.join(SOC_PROPS)}; do "
        'v=$(getprop $p 2>/dev/null); [ -n "$v" ] && echo "$p=$v"; done',
        f"echo {MARK}cpuinfo; grep -E '^(model name|Hardware|Model|CPU part|Processor|"
        "cpu model|uarch)' /proc/cpuinfo 2>/dev/null",
        f"echo {MARK}cpus; for c in /sys/devices/system/cpu/cpu[0-9]*; do "
        '[ -d "$c" ] || continue; '
        'echo "${c##*/} $(cat $c/online 2>/dev/null || echo 1) '
        "$(cat $c/cpufreq/scaling_governor 2>/dev/null || echo -) "
        "$(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null || echo -) "
        '$(cat $c/cpufreq/scaling_cur_freq 2>/dev/null || echo -)"; done',
        f"echo {MARK}thermal; for z in /sys/class/thermal/thermal_zone*; do "
        '[ -r "$z/temp" ] || continue; '
        'echo "$(cat $z/type 2>/dev/null || echo ${z##*/}) $(cat $z/temp 2>/dev/null)"; done',
        f"echo {MARK}load; cat /proc/loadavg 2>/dev/null",
        f"echo {MARK}stat; grep -E '^cpu ' /proc/stat 2>/dev/null",
        f"echo {MARK}mem; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo 2>/dev/null",
        f"echo {MARK}end",
    ]
)

#: The keys of ``environment()``: what a result carries about the device it ran on.
ENVIRONMENT_KEYS = (
    "cpu_model", "soc", "os", "cpus", "pinned", "governor", "max_freq_mhz", "cur_freq_mhz",
    "temp_c", "loadavg", "mem_total_kb", "mem_available_kb", "cpu_ticks", "steal_ticks",
)  # fmt: skip
#: Fields of /proc/stat's ``cpu`` line (user nice system idle iowait irq softirq steal): the
#: eighth is the time a hypervisor gave this machine's CPUs to other guests (steal), which a
#: process's latency feels but its own CPU time does not show.
STEAL_FIELD = 7


def sections(text: str) -> dict[str, list[str]]:
    """The probe's output by section; lines outside any section (a login banner) are dropped."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if line.startswith(MARK):
            current = out.setdefault(line[len(MARK) :].strip(), [])
        elif current is not None and line.strip():
            current.append(line.strip())
    return out


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse(text: str) -> dict[str, Any]:
    """Everything the probe printed, structured; an absent reading is None or an empty list.

    ``cpus``: one dict per CPU (``index``, ``online``, ``governor``, ``max_khz``, ``cur_khz``);
    ``zones``: ``[name, °C]`` for each plausible thermal zone.
    """
    s = sections(text)
    if not s:
        return {}
    uname = next(iter(s.get("uname", [])), None)
    android = next(iter(s.get("android", [])), None)
    props = dict(line.partition("=")[::2] for line in s.get("soc", []))
    cpu_lines = s.get("cpuinfo", [])
    cpu_model = None
    for key in CPU_MODEL_KEYS:
        for line in cpu_lines:
            if line.lower().startswith(key.lower()) and ":" in line:
                value = line.split(":", 1)[1].strip()
                if value:
                    cpu_model = value
                    break
        if cpu_model:
            break
    if cpu_model is None:
        parts = sorted({ln.split(":", 1)[1].strip() for ln in cpu_lines if "CPU part" in ln})
        if parts:
            cpu_model = "ARM CPU parts " + ", ".join(parts)
    soc_parts = [props[k] for k in ("ro.soc.manufacturer", "ro.soc.model") if props.get(k)]
    soc = " ".join(soc_parts) or props.get("ro.board.platform") or props.get("ro.product.model")
    cpus: list[dict[str, Any]] = []
    for line in s.get("cpus", []):
        f = line.split()
        if len(f) != 5 or not f[0].startswith("cpu") or not f[0][3:].isdigit():
            continue
        cpus.append(
            {
                "index": int(f[0][3:]),
                "online": f[1] != "0",
                "governor": None if f[2] == "-" else f[2],
                "max_khz": int(f[3]) if f[3].isdigit() else None,
                "cur_khz": int(f[4]) if f[4].isdigit() else None,
            }
        )
    cpus.sort(key=lambda c: c["index"])
    zones = []
    for line in s.get("thermal", []):
        name, _, value = line.rpartition(" ")
        milli = _number(value)
        if milli is None:
            continue
        celsius = milli / MILLI
        if PLAUSIBLE_C[0] <= celsius <= PLAUSIBLE_C[1]:
            zones.append([name or "zone", celsius])
    load = (s.get("load") or [""])[0].split()
    ticks = [int(v) for v in (s.get("stat") or [""])[0].split()[1:] if v.isdigit()]
    mem = {}
    for line in s.get("mem", []):
        key, _, rest = line.partition(":")
        value = rest.split()[0] if rest.split() else ""
        if value.isdigit():
            mem[key] = int(value)
    os_name = uname
    if android:
        os_name = "Android " + android + (" (" + uname + ")" if uname else "")
    return {
        "os": os_name,
        "android_release": android,
        "soc": soc or None,
        "cpu_model": cpu_model,
        "cpus": cpus,
        "zones": zones,
        "loadavg": _number(load[0]) if load else None,
        "mem_total_kb": mem.get("MemTotal"),
        "mem_available_kb": mem.get("MemAvailable"),
        "cpu_ticks": sum(ticks) if len(ticks) > STEAL_FIELD else None,
        "steal_ticks": ticks[STEAL_FIELD] if len(ticks) > STEAL_FIELD else None,
    }


def mask_cpus(mask: str | None) -> list[int] | None:
    """The CPU indices of a taskset hex mask (``f0`` -> 4..7); None for no mask."""
    if not mask:
        return None
    try:
        value = int(mask, 16)
    except ValueError:
        return None
    return [i for i in range(value.bit_length()) if value >> i & 1]


def environment(parsed: dict[str, Any], pinned: Sequence[int] | None = None) -> dict[str, Any]:
    """The result keys (``ENVIRONMENT_KEYS``) of one probe, for the CPUs in ``pinned``.

    ``governor`` joins the distinct governors of those CPUs with ``;`` (in CPU order);
    ``max_freq_mhz`` is the highest of their maximum clocks and ``cur_freq_mhz`` the lowest of
    their current clocks (the slowest core bounds a multi-threaded inference). ``temp_c`` is the
    hottest zone.
    """
    if not parsed:
        return {}
    cpus = [c for c in parsed.get("cpus", []) if c["online"]]
    chosen = [c for c in cpus if pinned is None or c["index"] in set(pinned)] or cpus
    governors = list(dict.fromkeys(c["governor"] for c in chosen if c["governor"]))
    max_khz = [c["max_khz"] for c in chosen if c["max_khz"]]
    cur_khz = [c["cur_khz"] for c in chosen if c["cur_khz"]]
    temps = [t for _, t in parsed.get("zones", [])]
    return {
        "cpu_model": parsed.get("cpu_model"),
        "soc": parsed.get("soc"),
        "os": parsed.get("os"),
        "cpus": len(cpus) or None,
        "pinned": [c["index"] for c in chosen] if pinned is not None else None,
        "governor": ";".join(governors) or None,
        "max_freq_mhz": max(max_khz) / MILLI if max_khz else None,
        "cur_freq_mhz": min(cur_khz) / MILLI if cur_khz else None,
        "temp_c": max(temps) if temps else None,
        "loadavg": parsed.get("loadavg"),
        "mem_total_kb": parsed.get("mem_total_kb"),
        "mem_available_kb": parsed.get("mem_available_kb"),
        "cpu_ticks": parsed.get("cpu_ticks"),
        "steal_ticks": parsed.get("steal_ticks"),
    }


def steal_share(start: dict[str, Any] | None, end: dict[str, Any] | None) -> float | None:
    """The share of all CPU time between two probes that the hypervisor gave to other guests
    (0..1); None where /proc/stat has no steal field or no time passed."""
    if not start or not end:
        return None
    t0, t1 = start.get("cpu_ticks"), end.get("cpu_ticks")
    s0, s1 = start.get("steal_ticks"), end.get("steal_ticks")
    if t0 is None or t1 is None or s0 is None or s1 is None or t1 <= t0 or s1 < s0:
        return None
    return float(s1 - s0) / float(t1 - t0)


def read_local(pinned: Sequence[int] | None = None) -> dict[str, Any]:
    """Run the probe here (the python runner on its device) and return ``environment()``."""
    import subprocess

    try:
        done = subprocess.run(
            ["sh", "-c", SCRIPT], capture_output=True, text=True, timeout=LOCAL_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return environment(parse(done.stdout), pinned)


#: The probe reads a few small files; seconds mean a hung sysfs read, not a slow device.
LOCAL_TIMEOUT_S = 20.0
