#!/usr/bin/env python3
"""An ARM64 board and an ARM64 phone on this x86 machine, for ``bench run --device arm64-board``
(and ``--device arm64-phone``): a Debian arm64 user space run under qemu-user.

    sudo apt-get install -y qemu-user-static debootstrap openssh-server adb
    .venv/bin/python scripts/arm64_board.py build     # once per machine: 5-15 min, cached
    .venv/bin/python scripts/arm64_board.py serve     # the board (sshd) and the phone (adb)
    bench run --device arm64-board --models student_net --input-shape 1x3x32x32 --quick

``build`` debootstraps the root file system into the per-user cache
(``~/.cache/benchharness/arm64-root-<key>``, the key hashing the suite, packages and pip
requirements) and pips the runner's aarch64 wheels into it; it logs each step's time. ``serve``
builds it when missing, then starts a real OpenSSH server on 127.0.0.1:22064 whose sessions run
inside the root and the emulated adb phone on 127.0.0.1:22065 whose shell runs there too (the
ports and key paths ``devices/arm64-board.toml`` and ``devices/arm64-phone.toml`` name), and
serves until Ctrl-C. ``profile`` prints the board's profile (``--phone``: the phone's) for other
ports or names. Needs root (chroot, mount namespaces); every row measured there is EMULATED.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

# the emulated devices live with the test suite's real sshd and emulated adbd
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import arm64
from tests.support.sshd import sshd_missing_reason


def _build(_: argparse.Namespace) -> int:
    root = arm64.ensure_root()
    info = arm64.root_info(root)
    print(f"root: {root}\nbuilt in {info['build_s']} s {info['step_s']}\n{info['versions']}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    if args.phone:
        print(arm64.phone_profile(f"127.0.0.1:{args.phone_port}",
                                  name=args.name or arm64.PHONE_NAME))  # fmt: skip
        return 0
    state = arm64.BOARD_STATE_DIR
    print(
        arm64.board_profile(
            port=args.board_port,
            key_file=str(state / "client_ed25519"),
            known_hosts=str(state / "known_hosts"),
            workdir=arm64.BOARD_WORKDIR,
            name=args.name or arm64.BOARD_NAME,
        )
    )
    return 0


def _connect_adb(serial: str) -> None:
    adb = shutil.which("adb")
    if adb is None:
        print("adb is missing (apt-get install -y adb): the phone serves, nothing connects it")
        return
    done = subprocess.run([adb, "connect", serial], capture_output=True, text=True, timeout=30)
    print(f"adb connect {serial}: {done.stdout.strip() or done.stderr.strip()}")


def _serve(args: argparse.Namespace) -> int:
    reason = arm64.emulation_missing_reason() or sshd_missing_reason()
    if reason:
        print(f"cannot serve the emulated ARM64 devices: {reason}", file=sys.stderr)
        return 1
    root = arm64.ensure_root()
    server = arm64.board_server(
        arm64.BOARD_STATE_DIR, root, args.board_port, session_home=arm64.BOARD_HOME
    )
    server.start()
    print(f"board: sshd on {server.host}:{server.port}, sessions in {root}")
    device = None
    if not args.no_phone:
        device = arm64.phone_device(root, args.phone_port)
        device.start()
        print(f"phone: emulated adb device on {device.serial}")
        _connect_adb(device.serial)
    print("serving until Ctrl-C; e.g. bench run --device arm64-board --models student_net "
          "--input-shape 1x3x32x32 --quick")  # fmt: skip
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        if server.proc is not None and server.proc.poll() is not None:
            print(f"sshd exited: {server.log.read_text()[-2000:]}", file=sys.stderr)
            break
    if device is not None:
        device.stop()
    server.kill()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the arm64 root file system (cached)").set_defaults(
        func=_build
    )
    for name, func, text in (
        ("serve", _serve, "serve the board (sshd) and the phone (adb) until Ctrl-C"),
        ("profile", _profile, "print the board's device profile (--phone: the phone's)"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--board-port", type=int, default=arm64.BOARD_PORT)
        cmd.add_argument("--phone-port", type=int, default=arm64.PHONE_PORT)
        cmd.set_defaults(func=func)
        if name == "serve":
            cmd.add_argument("--no-phone", action="store_true", help="the board only")
        else:
            cmd.add_argument("--phone", action="store_true", help="the phone's profile")
            cmd.add_argument("--name", default="", help="the profile's name")
    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
