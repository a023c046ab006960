"""The one environment probe: a POSIX ``sh`` script and the parser of what it prints.

Shipped to devices with the runner and imported by the host, so every reader of a device's
environment (the python runner before and after a model, the native tools' shell round trip,
``bench devices check`` and the cooldown) runs the same script and gets the same keys. It is a
shell script, not Python, because devices driven by native tools have no Python; the python
runner runs it with ``sh`` too. Standard library only, and nothing from ``benchharness``.

``environment(parse(text), pinned)`` gives the keys every result row uses: governors and clocks
are read for the CPUs the job is pinned to (all online CPUs when it is not pinned), so
``CLOCKS_UNLOCKED`` means the same thing whichever runner measured.

It also says what machine the process runs as (``arch``) and whether a translator runs it
(``emulated``: ``qemu-user``, ``rosetta``): timings taken through one are the translator's, not
the device's (``emulation``). ``cpu_model`` then names the host's CPU and the translation, and
an ARM CPU without a name line is named from its part numbers (``arm_cpu_name``).
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
        f"echo {MARK}cpuinfo; grep -E '^(model name|Hardware|Model|CPU implementer|CPU part|"
        "Processor|cpu model|uarch|vendor_id)' /proc/cpuinfo 2>/dev/null",
        # macOS has no /proc/cpuinfo: the CPU's name, and whether this process is translated
        f"echo {MARK}cpubrand; sysctl -n machdep.cpu.brand_string 2>/dev/null",
        f"echo {MARK}translated; sysctl -n sysctl.proc_translated 2>/dev/null",
        # the machine this process runs as, and the one the kernel runs on: they differ only
        # under a user-mode translator (qemu-user fakes uname, not the kernel's arch sysctl)
        f"echo {MARK}arch; uname -m 2>/dev/null",
        f"echo {MARK}kernel_arch; cat /proc/sys/kernel/arch 2>/dev/null || "
        '{ [ "$(sysctl -n hw.optional.arm64 2>/dev/null)" = 1 ] && echo arm64; }',
        f"echo {MARK}binfmt; ls /proc/sys/fs/binfmt_misc 2>/dev/null",
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
    "arch", "emulated",
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


#: ``uname -m`` (and the kernel's arch sysctl) -> instruction-set family, to tell a translated
#: process from a native one; a machine not listed here is never called emulated.
ARCH_FAMILIES = {
    "x86_64": "x86", "amd64": "x86", "i386": "x86", "i486": "x86", "i586": "x86",
    "i686": "x86", "x86": "x86", "aarch64": "arm", "aarch64_be": "arm", "arm64": "arm",
    "armv6l": "arm", "armv7l": "arm", "armv8l": "arm", "riscv64": "riscv",
    "ppc64le": "power", "ppc64": "power", "s390x": "s390", "loongarch64": "loongarch",
}  # fmt: skip
#: /proc/cpuinfo keys only one family's kernel prints: the CPU the kernel really runs on
#: (qemu-user passes the host's file through, so an aarch64 process reads an x86 one).
CPUINFO_FAMILY_KEYS = (("vendor_id", "x86"), ("CPU implementer", "arm"))
#: ``emulated`` of a process Rosetta 2 translates (its ``sysctl.proc_translated`` is 1 on
#: macOS; Rosetta for Linux VMs registers a binfmt_misc entry of that name), and of one qemu-user
#: translates.
ROSETTA = "rosetta"
QEMU_USER = "qemu-user"
#: What runs foreign code when the binfmt_misc entries do not name it: on an x86 kernel
#: only qemu-user does (Rosetta, FEX and box64 translate x86 code on ARM kernels).
UNKNOWN_TRANSLATOR = "translated"
#: ARM's "CPU implementer" codes, and the "CPU part" numbers of common cores (from the
#: vendors' manuals, as Linux's arch/arm64/include/asm/cputype.h lists them).
ARM_IMPLEMENTERS = {
    0x41: "ARM", 0x42: "Broadcom", 0x43: "Cavium", 0x46: "Fujitsu", 0x48: "HiSilicon",
    0x4E: "NVIDIA", 0x50: "APM", 0x51: "Qualcomm", 0x53: "Samsung", 0x61: "Apple",
    0xC0: "Ampere",
}  # fmt: skip
ARM_PARTS = {
    (0x41, 0xD01): "Cortex-A32", (0x41, 0xD02): "Cortex-A34", (0x41, 0xD03): "Cortex-A53",
    (0x41, 0xD04): "Cortex-A35", (0x41, 0xD05): "Cortex-A55", (0x41, 0xD06): "Cortex-A65",
    (0x41, 0xD07): "Cortex-A57", (0x41, 0xD08): "Cortex-A72", (0x41, 0xD09): "Cortex-A73",
    (0x41, 0xD0A): "Cortex-A75", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD0D): "Cortex-A77", (0x41, 0xD0E): "Cortex-A76AE", (0x41, 0xD40): "Neoverse-V1",
    (0x41, 0xD41): "Cortex-A78", (0x41, 0xD42): "Cortex-A78AE", (0x41, 0xD44): "Cortex-X1",
    (0x41, 0xD46): "Cortex-A510", (0x41, 0xD47): "Cortex-A710", (0x41, 0xD48): "Cortex-X2",
    (0x41, 0xD49): "Neoverse-N2", (0x41, 0xD4A): "Neoverse-E1", (0x41, 0xD4B): "Cortex-A78C",
    (0x41, 0xD4C): "Cortex-X1C", (0x41, 0xD4D): "Cortex-A715", (0x41, 0xD4E): "Cortex-X3",
    (0x41, 0xD4F): "Neoverse-V2", (0x41, 0xD80): "Cortex-A520", (0x41, 0xD81): "Cortex-A720",
    (0x41, 0xD82): "Cortex-X4", (0x41, 0xD84): "Neoverse-V3", (0x41, 0xD85): "Cortex-X925",
    (0x41, 0xD87): "Cortex-A725", (0x41, 0xD8E): "Neoverse-N3",
    (0x51, 0x800): "Kryo 2xx Gold", (0x51, 0x801): "Kryo 2xx Silver",
    (0x51, 0x802): "Kryo 3xx Gold", (0x51, 0x803): "Kryo 3xx Silver",
    (0x51, 0x804): "Kryo 4xx Gold", (0x51, 0x805): "Kryo 4xx Silver",
    (0x51, 0xC00): "Falkor", (0x51, 0x001): "Oryon",
    (0x4E, 0x004): "Carmel", (0x61, 0x022): "M1 Icestorm", (0x61, 0x023): "M1 Firestorm",
    (0xC0, 0xAC3): "Ampere-1", (0x46, 0x001): "A64FX",
}  # fmt: skip


def arch_family(machine: str | None) -> str | None:
    """The instruction-set family of a ``uname -m`` name (``aarch64`` -> ``arm``), or None."""
    if not machine:
        return None
    name = machine.strip().lower()
    if name in ARCH_FAMILIES:
        return ARCH_FAMILIES[name]
    return "arm" if name.startswith("arm") else None


def _cpuinfo_values(cpu_lines: Sequence[str], key: str) -> list[str]:
    """The values of one /proc/cpuinfo key, one per line that has it, in file order."""
    out = []
    for line in cpu_lines:
        name, sep, value = line.partition(":")
        if sep and name.strip() == key and value.strip():
            out.append(value.strip())
    return out


def _cpuinfo_family(cpu_lines: Sequence[str]) -> str | None:
    for key, family in CPUINFO_FAMILY_KEYS:
        if _cpuinfo_values(cpu_lines, key):
            return family
    return None


def _translator(guest_family: str | None, host_family: str | None, binfmt: Sequence[str]) -> str:
    """Name of what translates ``guest_family`` code, from binfmt_misc's entry names."""
    for entry in binfmt:
        name = entry.strip().lower()
        if name.startswith("qemu-") and arch_family(name[len("qemu-") :]) == guest_family:
            return QEMU_USER
        if guest_family == "x86" and ROSETTA in name:
            return ROSETTA
    return QEMU_USER if host_family == "x86" else UNKNOWN_TRANSLATOR


def emulation(
    arch: str | None,
    kernel_arch: str | None,
    cpu_family: str | None = None,
    translated: str | None = None,
    binfmt: Sequence[str] = (),
) -> str | None:
    """What translates this process's instructions (``qemu-user``, ``rosetta``), or None.

    Rosetta 2 says so itself (``sysctl.proc_translated`` is 1). A user-mode translator on Linux
    shows as a machine (``uname -m``, which qemu-user fakes) of another family than the kernel's
    own arch sysctl, or than the CPU /proc/cpuinfo describes (``cpu_family``: the host's file,
    passed through); unknown machine names and missing files never count as emulation.
    """
    if (translated or "").strip() == "1":
        return ROSETTA
    guest = arch_family(arch)
    host = arch_family(kernel_arch) or cpu_family
    if guest is None or host is None or guest == host:
        return None
    return _translator(guest, host, binfmt)


def _hex(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def arm_cpu_name(cpu_lines: Sequence[str]) -> str | None:
    """The ARM cores of /proc/cpuinfo by name: ``ARM Cortex-A72``, or for a big.LITTLE SoC
    ``ARM 4x Cortex-A55 + 4x Cortex-A76``; a part not in ``ARM_PARTS`` as
    ``ARM implementer 0x41 part 0xd4f``. None when cpuinfo lists no parts."""
    implementer = None
    cores: list[tuple[int | None, int | None, str]] = []
    for line in cpu_lines:
        name, _, value = line.partition(":")
        if name.strip() == "CPU implementer":
            implementer = _hex(value.strip())
        elif name.strip() == "CPU part" and value.strip():
            cores.append((implementer, _hex(value.strip()), value.strip()))
    if not cores:
        return None
    names = [_arm_core_name(impl, part, raw) for impl, part, raw in cores]
    counts = {n: names.count(n) for n in dict.fromkeys(names)}
    vendors = {n.split(" ", 1)[0] for n in counts}
    if len(counts) == 1:
        return names[0]
    if len(vendors) == 1:  # one vendor's cluster: its name once, then the cores
        vendor = vendors.pop()
        return vendor + " " + " + ".join(f"{c}x {n[len(vendor) + 1 :]}" for n, c in counts.items())
    return " + ".join(f"{c}x {n}" for n, c in counts.items())


def _arm_core_name(implementer: int | None, part: int | None, raw: str) -> str:
    vendor = ARM_IMPLEMENTERS.get(implementer or -1)
    known = ARM_PARTS.get((implementer or -1, part or -1))
    if vendor and known:
        return f"{vendor} {known}"
    impl = f"0x{implementer:02x}" if implementer is not None else "?"
    shown = f"0x{part:03x}" if part is not None else raw
    return f"ARM implementer {impl} part {shown}"


def _cpu_model(cpu_lines: Sequence[str]) -> str | None:
    """The CPU's name from /proc/cpuinfo: its own name line where the kernel prints one (x86's
    ``model name``, a board's ``Hardware``), else the ARM cores by part number."""
    for key in CPU_MODEL_KEYS:
        for line in cpu_lines:
            if line.lower().startswith(key.lower()) and ":" in line:
                value = line.split(":", 1)[1].strip()
                if value:
                    return value
    return arm_cpu_name(cpu_lines)


def _as_machine(hints: dict[str, Any], arch: str | None) -> dict[str, Any]:
    """``arch``, ``emulated`` and ``cpu_model`` of a process running as machine ``arch``, from
    the probe's hints (``parse``: the kernel's arch, the CPU's name and family, binfmt_misc)."""
    emulated = emulation(
        arch, hints["kernel_arch"], hints["cpu_family"], hints["translated"], hints["binfmt"]
    )
    cpu_model = hints["cpu_name"]
    if emulated and cpu_model:
        # the host's CPU does the work, but not as itself: the name says so, and keeps these
        # rows apart from its native ones wherever rows are grouped by CPU
        cpu_model = f"{cpu_model} ({arch} under {emulated})"
    return {"arch": arch, "emulated": emulated, "cpu_model": cpu_model}


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
    first = {k: next(iter(s.get(k, [])), None) for k in ("arch", "kernel_arch", "translated")}
    hints = {
        "cpu_name": _cpu_model(cpu_lines) or next(iter(s.get("cpubrand", [])), None),
        "kernel_arch": first["kernel_arch"],
        "cpu_family": _cpuinfo_family(cpu_lines),
        "translated": first["translated"],
        "binfmt": s.get("binfmt", []),
    }
    machine = _as_machine(hints, first["arch"])
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
        **hints,
        **machine,
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


def environment(
    parsed: dict[str, Any], pinned: Sequence[int] | None = None, machine: str | None = None
) -> dict[str, Any]:
    """The result keys (``ENVIRONMENT_KEYS``) of one probe, for the CPUs in ``pinned``.

    ``machine``: what the measuring process itself runs as (the python runner's
    ``platform.machine()``), which wins over the probe's ``uname -m``: the shell that ran the
    probe may run natively while the runner's python is translated, or the other way round.

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
    named = {k: parsed.get(k) for k in ("arch", "emulated", "cpu_model")}
    if machine and machine != named["arch"] and "cpu_family" in parsed:
        named = _as_machine(parsed, machine)
    return {
        **named,
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


def read_local(pinned: Sequence[int] | None = None, machine: str | None = None) -> dict[str, Any]:
    """Run the probe here (the python runner on its device) and return ``environment()``."""
    import subprocess

    try:
        done = subprocess.run(
            ["sh", "-c", SCRIPT], capture_output=True, text=True, timeout=LOCAL_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return environment(parse(done.stdout), pinned, machine)


#: The probe reads a few small files; seconds mean a hung sysfs read, not a slow device.
LOCAL_TIMEOUT_S = 20.0
