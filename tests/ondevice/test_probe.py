"""The environment probe on canned outputs: a translated CPU (qemu-user, Rosetta 2) is told from
a native one and said in ``arch``/``emulated``/``cpu_model``; a real ARM /proc/cpuinfo (which
has no "model name") names its cores from their part numbers."""

from __future__ import annotations

import json

import pytest

from benchharness.ondevice import probe
from benchharness.ondevice.protocol import Environment, RunnerResult, decode, encode

M = probe.MARK

#: What the probe prints inside the aarch64 root under qemu-user on this project's x86 VM:
#: uname is qemu's (aarch64), the kernel's arch sysctl and /proc/cpuinfo are the host's.
QEMU_AARCH64 = f"""\
{M}uname
Linux 6.18.44-fc-v1300 aarch64
{M}cpuinfo
vendor_id	: AuthenticAMD
model name	: AMD EPYC 7B13
vendor_id	: AuthenticAMD
model name	: AMD EPYC 7B13
{M}cpubrand
{M}translated
{M}arch
aarch64
{M}kernel_arch
x86_64
{M}binfmt
{M}load
0.50 0.40 0.30 1/100 42
{M}end
"""

#: A Raspberry Pi 4 on a generic arm64 kernel: no model name, four Cortex-A72 by part number.
ARM_BOARD = (
    f"{M}uname\nLinux 6.1.0-rpi7-rpi-v8 aarch64\n{M}cpuinfo\n"
    + "CPU implementer\t: 0x41\nCPU part\t: 0xd08\n" * 4
    + f"{M}arch\naarch64\n{M}kernel_arch\naarch64\n{M}end\n"
)

#: macOS on Apple silicon running an x86_64 python under Rosetta 2.
ROSETTA = f"""\
{M}uname
Darwin 23.4.0 x86_64
{M}cpubrand
Apple M1
{M}translated
1
{M}arch
x86_64
{M}kernel_arch
arm64
{M}end
"""

NATIVE_X86 = f"""\
{M}uname
Linux 6.1.0 x86_64
{M}cpuinfo
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Platinum 8375C
{M}translated
{M}arch
x86_64
{M}kernel_arch
x86_64
{M}binfmt
qemu-aarch64
register
status
{M}end
"""


def test_qemu_user_is_seen_and_said() -> None:
    parsed = probe.parse(QEMU_AARCH64)
    env = probe.environment(parsed)
    assert env["arch"] == "aarch64"
    assert env["emulated"] == "qemu-user"
    # the host's CPU does the work, and the name says it does so translated
    assert env["cpu_model"] == "AMD EPYC 7B13 (aarch64 under qemu-user)"


def test_qemu_user_without_the_kernels_arch_sysctl_is_seen_from_cpuinfo() -> None:
    """An older kernel has no /proc/sys/kernel/arch: the passed-through x86 cpuinfo tells."""
    text = QEMU_AARCH64.replace(f"{M}kernel_arch\nx86_64\n", f"{M}kernel_arch\n")
    assert probe.parse(text)["emulated"] == "qemu-user"


def test_a_native_host_with_qemu_registered_is_not_emulated() -> None:
    env = probe.environment(probe.parse(NATIVE_X86))
    assert env["arch"] == "x86_64" and env["emulated"] is None
    assert env["cpu_model"] == "Intel(R) Xeon(R) Platinum 8375C"


def test_a_real_arm_board_names_its_cores() -> None:
    env = probe.environment(probe.parse(ARM_BOARD))
    assert env["arch"] == "aarch64" and env["emulated"] is None
    assert env["cpu_model"] == "ARM Cortex-A72"


@pytest.mark.parametrize(
    ("cores", "expected"),
    [
        ([(0x41, 0xD05)] * 4 + [(0x41, 0xD0B)] * 4, "ARM 4x Cortex-A55 + 4x Cortex-A76"),
        (
            [(0x51, 0x805)] * 4 + [(0x51, 0x804)] * 4,
            "Qualcomm 4x Kryo 4xx Silver + 4x Kryo 4xx Gold",
        ),
        ([(0x41, 0xD99)], "ARM implementer 0x41 part 0xd99"),
        ([(0x99, 0x001)], "ARM implementer 0x99 part 0x001"),
        ([(0x41, 0xD03)] * 2 + [(0x51, 0x001)], "2x ARM Cortex-A53 + 1x Qualcomm Oryon"),
    ],
)
def test_arm_part_numbers(cores: list[tuple[int, int]], expected: str) -> None:
    lines = []
    for implementer, part in cores:
        lines += [f"CPU implementer\t: 0x{implementer:02x}", f"CPU part\t: 0x{part:03x}"]
    assert probe.arm_cpu_name(lines) == expected


def test_a_named_soc_still_wins_over_part_numbers() -> None:
    """Android prints the SoC as Hardware: the name it has always had stays."""
    lines = ["CPU implementer\t: 0x51", "CPU part\t: 0x804", "Hardware\t: Qualcomm SM8150"]
    assert probe.parse(f"{M}cpuinfo\n" + "\n".join(lines) + "\n")["cpu_model"] == (
        "Qualcomm SM8150"
    )


def test_rosetta_says_so_itself() -> None:
    env = probe.environment(probe.parse(ROSETTA))
    assert env["arch"] == "x86_64" and env["emulated"] == "rosetta"
    assert env["cpu_model"] == "Apple M1 (x86_64 under rosetta)"


def test_rosetta_for_linux_is_named_by_its_binfmt_entry() -> None:
    text = (
        f"{M}cpuinfo\nCPU implementer\t: 0x61\nCPU part\t: 0x023\n{M}arch\nx86_64\n"
        f"{M}kernel_arch\naarch64\n{M}binfmt\nregister\nrosetta\nstatus\n{M}end\n"
    )
    env = probe.environment(probe.parse(text))
    assert env["emulated"] == "rosetta"
    assert env["cpu_model"] == "Apple M1 Firestorm (x86_64 under rosetta)"


@pytest.mark.parametrize(
    ("arch", "kernel_arch", "cpu_family", "expected"),
    [
        ("aarch64", "aarch64", None, None),
        ("armv7l", "aarch64", None, None),  # a 32-bit ARM process on a 64-bit ARM kernel
        ("i686", "x86_64", None, None),
        ("aarch64", None, None, None),  # nothing to compare with: never called emulated
        ("mystery", "x86_64", None, None),
        ("aarch64", None, "x86", "qemu-user"),
        ("riscv64", "x86_64", None, "qemu-user"),
        ("x86_64", "aarch64", None, "translated"),  # FEX, box64...: named only by binfmt
    ],
)
def test_emulation_rule(
    arch: str, kernel_arch: str | None, cpu_family: str | None, expected: str | None
) -> None:
    assert probe.emulation(arch, kernel_arch, cpu_family) == expected


def test_the_runners_own_machine_wins_over_the_probe_shell() -> None:
    """A translated python whose probe shell runs natively is still called emulated."""
    native_shell = QEMU_AARCH64.replace(f"{M}arch\naarch64\n", f"{M}arch\nx86_64\n")
    parsed = probe.parse(native_shell)
    assert parsed["emulated"] is None
    env = probe.environment(parsed, machine="aarch64")
    assert (env["arch"], env["emulated"]) == ("aarch64", "qemu-user")
    assert env["cpu_model"] == "AMD EPYC 7B13 (aarch64 under qemu-user)"
    assert probe.environment(parsed, machine="x86_64")["emulated"] is None


def test_this_host_is_native() -> None:
    env = probe.read_local()
    assert env["arch"] and env["emulated"] is None


def test_the_protocol_carries_arch_and_emulated_and_old_peers_cope() -> None:
    env = Environment(**probe.environment(probe.parse(QEMU_AARCH64)))
    result = RunnerResult(samples_ms=[1.0], env_start=env)
    back = decode(encode(result))
    assert back is not None and back.env_start is not None
    assert (back.env_start.arch, back.env_start.emulated) == ("aarch64", "qemu-user")
    # an older runner's environment has neither: both read as None
    data = json.loads(result.to_json())
    for key in ("arch", "emulated"):
        del data["env_start"][key]
    old = decode("BENCHHARNESS_RESULT " + json.dumps(data))
    assert old is not None and old.env_start is not None
    assert old.env_start.arch is None and old.env_start.emulated is None
