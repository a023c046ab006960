"""An ARM64 board and an ARM64 phone on this x86 machine: a Debian arm64 user space run under
qemu-user (binfmt_misc), reached over a real OpenSSH server and the real ``adb`` client.

The root file system is built once per machine with ``debootstrap`` and ``pip`` (numpy,
onnxruntime, ai-edge-litert: the runner's aarch64 wheels) and kept in the per-user cache,
``~/.cache/benchharness/arm64-root-<key>``, the key hashing everything that goes into it (suite,
Debian packages, pip requirements, the build steps' version). Every process in it is an
aarch64 binary that the kernel hands to ``qemu-aarch64-static`` through binfmt_misc, so the
runner, its runtimes and their ARM kernels run for real, only slowly and on translated
instructions: every row measured there says so (``arch``, ``emulated``, the EMULATED flag).

Sessions (the board's sshd, each command of the phone) run in a private mount namespace with a
fresh ``proc`` and the host's ``/dev`` mounted into the root, so nothing stays mounted on the
host when they end. ``/sys`` is deliberately not mounted: with the host's x86 topology there,
onnxruntime's cpuinfo crashes (and a translated process has no cpufreq of its own to read).

Used by ``scripts/arm64_board.py`` (a board and a phone for ``bench run --device arm64-board``)
and by the tests in ``tests/arm64``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tests.support.adbd import EmulatedDevice
from tests.support.sshd import SSHServer

#: Debian's name of the architecture and the release whose python (3.11) matches this host's.
DEBIAN_ARCH = "arm64"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
#: The smallest root that runs the runner: minbase has sh, coreutils, grep (the probe) already.
APT_PACKAGES = ("python3", "python3-pip")
#: The runner's runtimes, pinned to what this host's .venv runs, so an x86 row and an aarch64
#: row differ by the machine only. ExecuTorch is left out: no quick aarch64 wheel to install.
PIP_REQUIREMENTS = ("numpy==2.4.6", "onnxruntime==1.32.0", "ai-edge-litert==2.3.0")
#: Bumped whenever the build steps change what lands in the root (part of the cache key).
BUILD_FORMAT = 1
#: The python the runner is started with inside the root (pip installed into the system's).
PYTHON = "/usr/bin/python3"
#: debootstrap's options: the smallest variant, with the packages above.
DEBOOTSTRAP_OPTIONS = (
    f"--arch={DEBIAN_ARCH}",
    "--variant=minbase",
    f"--include={','.join(APT_PACKAGES)}",
)
#: pip inside the root: wheels only (an sdist would compile under emulation for hours), into
#: Debian's own python (the root is this one program's), no cache to keep.
PIP_OPTIONS = (
    "--no-cache-dir",
    "--break-system-packages",
    "--disable-pip-version-check",
    "--only-binary=:all:",
)
#: The environment of a command run in the root from this host: none of the host's variables.
ROOT_ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root"}
#: Set to 1 to let the tests build a missing root (minutes); otherwise they skip.
BUILD_ENV = "BENCH_ARM64_BUILD"
#: An explicit root directory (one built elsewhere, or a place with more room).
ROOT_ENV = "BENCH_ARM64_ROOT"
#: Written last by a successful build: a root without it is unfinished and never used.
READY_FILE = "etc/benchharness-root.json"

QEMU = "/usr/bin/qemu-aarch64-static"
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_ENTRY = "qemu-aarch64"
#: The registration line qemu-user-static ships (the F flag opens the interpreter at
#: registration, so it runs inside a chroot that has no qemu of its own).
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
#: A build that takes longer is stuck (a cold one took 12 min on a busy 2-core VM).
BUILD_TIMEOUT_S = 1800
#: The host's CA bundle, copied in so pip inside the root reaches PyPI over TLS.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: What every session mounts into the root, in its own mount namespace, before it enters it:
#: a fresh /proc, the host's /dev, and a /sys that holds only the CPU lists (``possible``,
#: ``present``, ``online``: the host's, as an ARM board's kernel lists its cores). The runtimes'
#: cpuinfo needs those lists: without them XNNPACK does not start (LiteRT's interpreter then
#: silently runs its reference kernels, its CompiledModel refuses), while the host's whole /sys
#: (an x86 topology) crashes onnxruntime's ARM cpuinfo. Read-only, as sysfs is to a user.
SESSION_MOUNTS = " && ".join(
    [
        'mount -t proc proc "$0/proc"',
        'mount --rbind /dev "$0/dev"',
        'mount -t tmpfs -o size=64k,mode=755 bh-sys "$0/sys"',
        'c="$0/sys/devices/system/cpu"',
        'mkdir -p "$c"',
        'for f in possible present online; do cat "/sys/devices/system/cpu/$f" > "$c/$f"; done',
        'for d in /sys/devices/system/cpu/cpu[0-9]*; do mkdir "$c/${d##*/}"; done',
        'mount -o remount,ro "$0/sys"',
        'exec "$@"',
    ]
)
#: The private mount namespace every session runs in (its mounts vanish with it).
NAMESPACE = ("unshare", "--mount", "--propagation", "private")


def log_line(text: str) -> None:
    print(f"[arm64] {text}", flush=True)


# --------------------------------------------------------------------------- what is missing


def emulation_missing_reason() -> str | None:
    """Why aarch64 binaries cannot run here (None when they can): registers qemu-aarch64
    with binfmt_misc (mounting it first) when qemu-user-static is installed but not yet
    registered, as on a machine where systemd-binfmt never ran."""
    if os.geteuid() != 0:
        return "the emulated ARM64 devices need root (chroot, mount namespaces)"
    if not Path(QEMU).exists():
        return f"{QEMU} is missing (apt-get install -y qemu-user-static)"
    for tool in ("unshare", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install -y util-linux coreutils)"
    if not (BINFMT_DIR / "register").exists():
        done = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            return f"cannot mount binfmt_misc: {done.stderr.strip() or done.returncode}"
    return _register_qemu()


def _register_qemu() -> str | None:
    entry = BINFMT_DIR / BINFMT_ENTRY
    if not entry.exists():
        if not BINFMT_CONF.exists():
            return f"{BINFMT_CONF} is missing (apt-get install -y qemu-user-static)"
        try:
            (BINFMT_DIR / "register").write_text(BINFMT_CONF.read_text().strip())
        except OSError as exc:
            if not entry.exists():  # another process may have registered it meanwhile
                return f"cannot register {BINFMT_ENTRY} with binfmt_misc: {exc.strerror}"
    text = entry.read_text()
    if not text.startswith("enabled"):
        return f"binfmt_misc's {BINFMT_ENTRY} is disabled (echo 1 > {entry})"
    flags = next((ln.split(":", 1)[1] for ln in text.splitlines() if ln.startswith("flags:")), "")
    if "F" not in flags:
        # without F the interpreter path is looked up inside the chroot, which has none
        return f"binfmt_misc's {BINFMT_ENTRY} lacks the F flag (re-register {BINFMT_CONF})"
    return None


def build_missing_reason() -> str | None:
    """Why a root cannot be built here, or None."""
    if shutil.which("debootstrap") is None:
        return "debootstrap is missing (apt-get install -y debootstrap)"
    return emulation_missing_reason()


# --------------------------------------------------------------------------- the root


def root_key() -> str:
    """What goes into the root, hashed: a change builds a new root beside the old one."""
    spec = {
        "arch": DEBIAN_ARCH,
        "suite": SUITE,
        "apt": sorted(APT_PACKAGES),
        "pip": sorted(PIP_REQUIREMENTS),
        "format": BUILD_FORMAT,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def cache_base() -> Path:
    """``$XDG_CACHE_HOME/benchharness`` or ``~/.cache/benchharness`` (as the exports' cache)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "benchharness"


def root_dir() -> Path:
    explicit = os.environ.get(ROOT_ENV)
    return Path(explicit) if explicit else cache_base() / f"arm64-root-{root_key()}"


def is_built(root: Path) -> bool:
    return (root / READY_FILE).is_file()


def root_info(root: Path) -> dict[str, object]:
    """What the build recorded: key, seconds each step took, installed versions."""
    return dict(json.loads((root / READY_FILE).read_text()))


def session_argv(root: Path, argv: Sequence[str]) -> list[str]:
    """``argv`` run on this host in a private mount namespace whose ``root`` has its session
    mounts (``SESSION_MOUNTS``): how the board's sshd is started."""
    return [*NAMESPACE, "sh", "-c", SESSION_MOUNTS, str(root), *argv]


def in_root_argv(root: Path, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside ``root`` (chroot), with its session mounts."""
    return session_argv(root, ["chroot", str(root), *argv])


def run_in_root(
    root: Path, argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        in_root_argv(root, argv),
        env={**ROOT_ENVIRONMENT, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """One build per key at a time, across processes (a second waits, then finds it built)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_root(log: Callable[[str], None] = log_line) -> Path:
    """The built root, building it first if needed (minutes; logs each step's time)."""
    root = root_dir()
    if is_built(root):
        return root
    reason = build_missing_reason()
    if reason:
        raise RuntimeError(f"cannot build the arm64 root: {reason}")
    with _build_lock(root.with_name(root.name + ".lock")):
        if not is_built(root):
            build_root(root, log)
    return root


def _step(log: Callable[[str], None], what: str, argv: Sequence[str], **kw: object) -> float:
    log(f"{what} ...")
    t0 = time.monotonic()
    done = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        **kw,  # type: ignore[call-overload]
    )
    took = time.monotonic() - t0
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{tail}")
    log(f"{what}: {took:.0f} s")
    return took


def build_root(root: Path, log: Callable[[str], None] = log_line) -> None:
    """debootstrap an arm64 Debian into ``root`` and pip the runner's runtimes into it.

    Built in a ``.partial`` folder renamed into place at the end, so an interrupted build is
    never mistaken for a root (and is started over)."""
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        _remove_root(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    steps: dict[str, float] = {}
    steps["debootstrap"] = _step(
        log,
        f"debootstrap {SUITE} {DEBIAN_ARCH} into {partial}",
        # its own mount namespace: the /proc and /sys debootstrap mounts into the target vanish
        # with it, even when it is killed half-way
        [*NAMESPACE, "debootstrap", *DEBOOTSTRAP_OPTIONS, SUITE, str(partial), MIRROR],
    )
    # name resolution and TLS for pip: the host's, copied (the root has no ca-certificates)
    shutil.copyfile("/etc/resolv.conf", partial / "etc/resolv.conf")
    (partial / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CA_BUNDLE, partial / "etc/ssl/certs/ca-certificates.crt")
    (partial / "data/local/tmp").mkdir(parents=True, exist_ok=True)  # the phone's work place
    steps["pip"] = _step(
        log,
        f"pip install {' '.join(PIP_REQUIREMENTS)} (aarch64 wheels, emulated pip)",
        in_root_argv(partial, [PYTHON, "-m", "pip", "install", *PIP_OPTIONS, *PIP_REQUIREMENTS]),
        env={**ROOT_ENVIRONMENT, "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"},
    )
    # the .debs debootstrap fetched are not needed again: ~100 MB less to keep
    for deb in (partial / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    versions = run_in_root(partial, [PYTHON, "-c", _VERSIONS_SCRIPT], timeout=300)
    info = {
        "key": root_key(),
        "suite": SUITE,
        "arch": DEBIAN_ARCH,
        "apt": list(APT_PACKAGES),
        "pip": list(PIP_REQUIREMENTS),
        "versions": versions.stdout.strip(),
        "step_s": {k: round(v, 1) for k, v in steps.items()},
        "build_s": round(time.monotonic() - t0, 1),
    }
    (partial / READY_FILE).write_text(json.dumps(info, indent=1) + "\n")
    if root.exists():
        _remove_root(root)
    partial.rename(root)
    log(f"arm64 root built in {info['build_s']} s: {root}")


def mounts_below(path: Path) -> list[str]:
    """Mount points on this host inside ``path`` (none, unless a session leaked one)."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1].replace("\\040", " ") for line in fh]
    return [p for p in points if p.startswith(prefix)]


def _remove_root(path: Path) -> None:
    """Delete a (partial) root, never descending into something still mounted in it (a
    debootstrap of an older harness, killed with /proc mounted in the target)."""
    for point in sorted(mounts_below(path), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    left = mounts_below(path)
    if left:
        raise RuntimeError(f"cannot remove {path}: still mounted: {', '.join(left)}")
    shutil.rmtree(path)


_VERSIONS_SCRIPT = (
    "import platform, numpy, onnxruntime; from importlib import metadata; "
    "print(platform.machine(), platform.python_version(), 'numpy', numpy.__version__, "
    "'onnxruntime', onnxruntime.__version__, 'ai-edge-litert', metadata.version('ai-edge-litert'))"
)


# --------------------------------------------------------------------------- the devices

BOARD_NAME = "arm64-board"
PHONE_NAME = "arm64-phone"
#: The loopback ports ``scripts/arm64_board.py serve`` uses, named by devices/arm64-*.toml.
BOARD_PORT = 22064
PHONE_PORT = 22065
#: The board's sshd keys and known_hosts, where devices/arm64-board.toml looks for them.
BOARD_STATE_DIR = Path.home() / ".cache" / "benchharness" / "arm64-board"
#: The served board's home inside the root: one place, so its artifacts outlive a restart.
BOARD_HOME = "/home/arm64-board"
#: The work place devices/arm64-board.toml names (the transport resolves ``~`` on the board).
BOARD_WORKDIR = "~/.cache/benchharness"
#: What every emulated profile says of itself.
DESCRIPTION = (
    "Emulated ARM64 {kind}: Debian {suite} arm64 under qemu-user on this host, "
    "aarch64 runtimes and kernels, timings of the translator (EMULATED)"
)


def board_server(
    directory: Path, root: Path, port: int | None = None, session_home: str | None = None
) -> SSHServer:
    """A real sshd (not started) whose sessions run inside the aarch64 root."""
    return SSHServer(
        directory,
        port,
        chroot=root,
        session_home=session_home,
        start_under=session_argv(root, []),
    )


def phone_device(root: Path, port: int | None = None) -> EmulatedDevice:
    """The emulated adb device (not started) whose shell runs inside the aarch64 root."""
    return EmulatedDevice(
        root / "data" / "local" / "tmp", root=root, port=port, model="BenchEmu-arm64"
    )


def _toml_value(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def _toml(header: str, fields: dict[str, object]) -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{k} = {_toml_value(v)}" for k, v in fields.items()]
    lines += ["", "[runtimes]", f"python = {_toml_value(PYTHON)}", ""]
    # a translated CPU does not heat up between models the way a phone does
    lines += ["[cooldown]", "min_s = 0", "max_s = 0", ""]
    return "\n".join(lines)


def board_profile(
    *,
    port: int,
    key_file: str,
    known_hosts: str,
    workdir: str,
    name: str = BOARD_NAME,
    user: str = "root",
    host: str = "127.0.0.1",
) -> str:
    """The device profile (TOML) of a board served on ``host:port``."""
    return _toml(
        "An emulated ARM64 board (scripts/arm64_board.py serve): a real sshd on loopback whose\n"
        "sessions run in a Debian arm64 root under qemu-user. Every row it gives is EMULATED.",
        {
            "name": name,
            "description": DESCRIPTION.format(kind="board", suite=SUITE),
            "transport": "ssh",
            "host": host,
            "port": port,
            "user": user,
            "key_file": key_file,
            "known_hosts": known_hosts,
            "workdir": workdir,
        },
    )


def server_profile(server: SSHServer, *, name: str = BOARD_NAME) -> str:
    """The profile of a running board, its work place in the sessions' home."""
    return board_profile(
        port=server.port,
        key_file=str(server.client_key),
        known_hosts=str(server.known_hosts),
        workdir=f"{server.session_home}/work",
        name=name,
        user=server.user,
        host=server.host,
    )


def phone_profile(serial: str, *, name: str = PHONE_NAME, workdir: str = "") -> str:
    """The device profile (TOML) of the emulated ARM64 phone at ``serial`` (HOST:PORT)."""
    return _toml(
        "An emulated ARM64 phone (scripts/arm64_board.py serve): the emulated adb device of\n"
        "tests/support/adbd.py, driven by the real adb client, its shell in the arm64 root.",
        {
            "name": name,
            "description": DESCRIPTION.format(kind="phone", suite=SUITE),
            "transport": "adb",
            "serial": serial,
            "workdir": workdir or "/data/local/tmp/benchharness",
        },
    )
