"""Run on an Android device through the ``adb`` client binary.

Why the binary rather than adbutils: it is the tool users already have and debug with (``adb
devices``), it owns USB access, RSA authorisation prompts and ``adb connect`` for Wi-Fi devices,
and its command line has been stable from adb 29 (Debian's) to current releases. adbutils talks to
the same adb server but re-implements the client side (shell v2 fallback, sync), which would be
one more thing that can disagree with what the user sees in a terminal. A subprocess per command
costs ~10 ms, nothing next to a benchmark.

Exit statuses: devices with the ``shell_v2`` feature (Android 7+) report them and keep stderr
separate; legacy devices report neither. Every command therefore runs under a small wrapper that
prints its PID first (so a timed-out command can be killed on the device) and its exit status last
(``RC_MARKER``; the last marker wins): on legacy devices that is the only source of the status,
and on all devices it proves the command ran to its end rather than losing its connection.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from benchharness.errors import (
    DeviceUnreachableError,
    TransportError,
)
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.transport.base import (
    DEFAULT_MAX_PULL_BYTES,
    Bounds,
    Command,
    CommandResult,
    RemoteTransport,
    quote_argv,
)
from benchharness.transport.files import (
    host_write_error,
    landing,
    not_regular_error,
    size_cap_error,
)
from benchharness.transport.pipes import Captured, capture, cut_short
from benchharness.transport.remote_shell import (
    new_token,
    reap_command_line,
    reap_left,
    remote_command_line,
    split_pid_marker,
    split_rc_marker,
)

#: Time for adb's own bookkeeping commands (get-state, features, connect, the kill command).
ADB_CONTROL_TIMEOUT_S = 15.0
#: Longest command line a legacy (``shell:``) device accepts; adb refuses longer ones.
LEGACY_MAX_COMMAND = 4096
#: How often a running transfer is looked at (its bound, the size of what arrived).
TRANSFER_POLL_S = 0.1
#: Start of the line the pull pre-check prints: what the remote path is.
_FILE_TAG = "__BH_FILE__:"
#: ``ls -l`` type letter -> what it is, for refusals.
_KINDS = {
    "d": "directory",
    "c": "character device",
    "b": "block device",
    "p": "named pipe",
    "s": "socket",
    "l": "symbolic link to something that is not a regular file",
}
#: errno of a local write that adb reports as "cannot write '<path>': <strerror>".
_HOST_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES)

#: adb client messages that mean "no such device right now" (the command never reached it).
_GONE = re.compile(
    r"device '.*' not found|device offline|no devices/emulators found|device still connecting|"
    r"device unauthorized|cannot connect|failed to connect|connection refused|closed",
    re.IGNORECASE,
)

#: errno text in adb's transfer errors -> what to do about it.
_TRANSFER_ADVICE = (
    ("No space left", "no space left on the device; delete old files in the workdir or free space"),
    ("Read-only file system", "the file system is read-only; use a workdir under /data/local/tmp"),
    (
        "Permission denied",
        "permission denied on the device; an unrooted phone can write only under /data/local/tmp "
        "(the profile's workdir)",
    ),
    ("does not exist", "no such file on the device"),
    ("No such file", "no such file or directory"),
)


class AdbTransport(RemoteTransport):
    """Commands and files on one Android device, by adb serial (``adb devices``) or host:port."""

    kind = "adb"
    # Android's /data belongs to the system user and /data/local/tmp to shell (0771): apps run
    # under their own uids and cannot enter it, so only the work directory itself is checked.
    check_workdir_parents = False

    def __init__(
        self,
        serial: str,
        adb_path: str = "adb",
        server_port: int | None = None,
        *,
        adb_env: Mapping[str, str] | None = None,
        bounds: Bounds | None = None,
    ) -> None:
        if not serial:
            raise TransportError("adb transport needs a serial (the profile's 'serial' field)")
        self.serial = serial
        self.adb_path = adb_path
        self.server_port = server_port
        self.adb_env = dict(adb_env or {})
        self.bounds = bounds or Bounds()
        self._shell_v2: bool | None = None  # unknown until the device is first reached
        #: tokens of commands whose end on the device is not confirmed (see reap)
        self._leftovers: list[str] = []

    @property
    def where(self) -> str:
        return self.serial

    @classmethod
    def from_profile(cls, profile: DeviceProfile, **opts: object) -> AdbTransport:
        if not profile.serial:
            raise TransportError(f"device profile {profile.name} has no 'serial'")
        return cls(profile.serial, **opts)  # type: ignore[arg-type]

    # --- the adb client ----------------------------------------------------------------------

    def _adb_argv(self, *args: str, device: bool = True) -> list[str]:
        argv = [self.adb_path]
        if self.server_port is not None:
            argv += ["-P", str(self.server_port)]
        if device:
            argv += ["-s", self.serial]
        return argv + list(args)

    def _adb(
        self, *args: str, timeout: float = ADB_CONTROL_TIMEOUT_S, device: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = self._adb_argv(*args, device=device)
        try:
            return subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,  # adb would otherwise forward our stdin to the device
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=self._env(),
            )
        except FileNotFoundError as exc:
            raise self._no_client() from exc
        except subprocess.TimeoutExpired as exc:
            raise DeviceUnreachableError(
                f"`{' '.join(argv)}` hung for {timeout:g} s; check the device (replug USB, "
                "`adb kill-server`)"
            ) from exc

    def _no_client(self) -> TransportError:
        return TransportError(
            f"the adb client {self.adb_path!r} is not installed; install Android platform "
            "tools (apt-get install adb) or set the adb path"
        )

    def _env(self) -> dict[str, str] | None:
        return {**os.environ, **self.adb_env} if self.adb_env else None

    def _missing_message(self, detail: str = "") -> str:
        why = f" ({detail.strip()})" if detail.strip() else ""
        target = self.serial if ":" in self.serial else "HOST:PORT"
        return (
            f"adb devices does not list {self.serial} as a ready device{why}; connect it and "
            "enable USB debugging (accept the authorisation prompt on the phone), or for a "
            f"device on Wi-Fi run `adb connect {target}`"
        )

    def connect(self) -> None:
        """Make sure the device is there (``adb connect`` once for a host:port serial) and learn
        whether it speaks shell v2; raise DeviceUnreachableError when it is not there."""
        state = self._adb("get-state")
        if state.stdout.strip() != "device" and ":" in self.serial:
            # a network device that dropped: adb forgets it, so ask once to reconnect
            self._adb("disconnect", self.serial, device=False)
            self._adb("connect", self.serial, device=False)
            state = self._adb("get-state")
        if state.stdout.strip() != "device":
            raise DeviceUnreachableError(self._missing_message(state.stderr or state.stdout))
        features = self._adb("features")
        self._shell_v2 = features.returncode == 0 and "shell_v2" in features.stdout.split()

    @property
    def shell_v2(self) -> bool:
        if self._shell_v2 is None:
            self.connect()
        return bool(self._shell_v2)

    # --- commands ----------------------------------------------------------------------------

    def execute(self, command: Command) -> CommandResult:
        argv, timeout, cap = list(command.argv), command.timeout, command.max_output_bytes
        token = new_token()
        line = remote_command_line(
            argv, token=token, env=command.env, cwd=command.cwd, rc_marker=True
        )
        for attempt in (1, 2):
            if not self.shell_v2 and len(line) > LEGACY_MAX_COMMAND:
                raise TransportError(
                    f"command line of {len(line)} bytes is too long for this device's legacy adb "
                    f"shell (limit {LEGACY_MAX_COMMAND}); push a script and run that instead"
                )
            out, err, adb_status = self._shell(line, timeout, argv, token, cap)
            pid, stdout = split_pid_marker(out, token)
            if pid is None:
                # the wrapper never started: adb could not reach the device. Nothing ran, so
                # trying once more after reconnecting cannot run the command twice.
                if attempt == 1 and (_GONE.search(err + out) or adb_status != 0):
                    self._shell_v2 = None
                    continue
                raise DeviceUnreachableError(self._missing_message(err or out))
            status, stdout = split_rc_marker(stdout, token)
            if status is None:
                self._shell_v2 = None
                self._orphaned(token)
                raise TransportError(
                    f"the connection to {self.serial} was lost while running "
                    f"{quote_argv(argv)[:200]} (no exit status; adb said {err.strip()[:200]!r}); "
                    "check the cable or Wi-Fi and that the device did not reboot, then retry"
                )
            return CommandResult(tuple(argv), status, stdout, err if self.shell_v2 else "")
        raise AssertionError("unreachable")

    def _shell(
        self, line: str, timeout: float, argv: list[str], token: str, cap: int
    ) -> tuple[str, str, int]:
        cmd = self._adb_argv("shell", line)
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env(),
            )
        except FileNotFoundError as exc:
            raise self._no_client() from exc
        captured = Captured()
        try:
            capture(proc, captured, timeout=timeout, max_bytes=cap)
        except BaseException:
            # Ctrl-C: killing the local client does not stop the command on the device
            _stop(proc)
            self._kill(token, captured)
            raise
        if captured.timed_out or captured.overflowed:
            _stop(proc)
            self._kill(token, captured)
        _close(proc)
        if captured.timed_out or captured.overflowed:
            raise cut_short(
                argv, self.serial, flooded=captured.overflowed, cap=cap, timeout=timeout
            )
        out, err = captured.text()
        return out, err, proc.returncode

    def _kill(self, token: str, captured: Captured) -> None:
        """Kill a command on the device now, by the PID its wrapper printed and by its token; if
        that cannot be confirmed, remember it for reap. Never raises: the error that follows is
        the one the user needs to see."""
        pid, _ = split_pid_marker(captured.out.decode("utf-8", "replace"), token)
        try:
            line = reap_command_line([token], pid)
            left = reap_left(self._adb("shell", line, timeout=ADB_CONTROL_TIMEOUT_S).stdout)
        except TransportError:
            left = None
        if left != 0:
            self._leftovers.append(token)

    def _kill_all(self, tokens: list[str]) -> None:
        if self._shell_v2 is None:
            self.connect()
        done = self._adb("shell", reap_command_line(tokens), timeout=ADB_CONTROL_TIMEOUT_S)
        left = reap_left(done.stdout)
        if left is None:
            self._shell_v2 = None
            raise DeviceUnreachableError(self._missing_message(done.stderr or done.stdout))
        if left:
            raise TransportError(
                f"{left} process(es) of an earlier command on {self.serial} could not be killed "
                "(kill -9 failed); check `adb shell ps -A` or reboot the phone before running "
                "more jobs there"
            )

    # --- files -------------------------------------------------------------------------------

    def push(self, local: Path, remote: str) -> None:
        local = Path(local)
        if not local.is_file():
            raise TransportError(f"cannot push {local}: no such local file")
        size = local.stat().st_size
        try:
            self._transfer("push", str(local), remote, size, shown=remote)
        except TransportError:
            # leave no truncated file that looks like a good one
            with contextlib.suppress(TransportError):
                self._adb("shell", quote_argv(["rm", "-f", remote]))
            raise

    def pull(
        self, remote: str, local: Path, *, max_bytes: int | None = DEFAULT_MAX_PULL_BYTES
    ) -> None:
        local = Path(local)
        size = self._remote_size(remote, local)
        if max_bytes is not None and size > max_bytes:
            raise size_cap_error(remote, self.serial, size, max_bytes)
        with landing(local) as part:
            self._transfer("pull", remote, str(part), size, shown=str(local), cap=max_bytes)
            if not part.is_file():
                raise TransportError(f"adb pull {remote} reported success but {local} is missing")

    def _remote_size(self, remote: str, local: Path) -> int:
        """Size of ``remote``, which must be a regular file: adb would stream a device file such
        as /dev/zero, or a pipe, without end."""
        script = (
            f"p={quote_argv([remote])}; "
            f'if [ -f "$p" ]; then echo "{_FILE_TAG}reg $(stat -L -c %s "$p" 2>/dev/null '
            '|| wc -c < "$p")"; '
            f'elif [ -e "$p" ] || [ -L "$p" ]; then echo "{_FILE_TAG}other $(ls -ldn "$p" '
            '| cut -c1)"; '
            f'else echo "{_FILE_TAG}missing"; fi'
        )
        result = self.run(["sh", "-c", script], timeout=self.bounds.control_s)
        found = re.search(re.escape(_FILE_TAG) + r"(\w+) ?(\S*)", result.stdout)
        if found is None:
            raise TransportError(
                f"cannot tell what {remote} on {self.serial} is: {result.stdout.strip()[-200:]!r}"
            )
        kind, detail = found.groups()
        if kind == "missing":
            raise TransportError(
                f"adb pull {remote} -> {local} on {self.serial} failed: no such file on the device"
            )
        if kind != "reg":
            raise not_regular_error(remote, self.serial, _KINDS.get(detail, "special file"))
        try:
            return int(detail)
        except ValueError:
            raise TransportError(f"cannot tell the size of {remote} on {self.serial}") from None

    def _transfer(
        self, what: str, src: str, dst: str, size: int, *, shown: str, cap: int | None = None
    ) -> None:
        """``adb push|pull src dst`` within the size-scaled bound; for a pull, ``dst`` is
        watched so that a file growing past ``cap`` is stopped. ``shown`` is the path that
        messages name (not the temporary one)."""
        bound = self.bounds.transfer_s(size)
        src_shown, dst_shown = src, shown
        for attempt in (1, 2):
            if self._shell_v2 is None:
                self.connect()
            returncode, text = self._watch(what, src, dst, bound, cap)
            if returncode == 0:
                return
            if returncode is None:
                raise TransportError(
                    f"adb {what} {src_shown} -> {dst_shown} on {self.serial} did not finish "
                    f"within {bound:.0f} s ({self.bounds.transfer_floor_s:g} s plus {size} bytes "
                    f"at {self.bounds.transfer_min_rate / 1024:.0f} KiB/s): the link stalled; "
                    "replug the cable (or check Wi-Fi) and retry"
                )
            if returncode == -1:
                assert cap is not None  # the file grew past its cap while arriving
                raise size_cap_error(src, self.serial, max(_size(Path(dst)), cap + 1), cap)
            if what == "pull" and f"'{dst}'" in text:
                # adb: "cannot write '<local path>': No space left on device" is THIS host
                code = next((c for c in _HOST_ERRNOS if os.strerror(c) in text), None)
                if code is not None:
                    raise host_write_error(Path(shown), OSError(code, os.strerror(code)))
                raise TransportError(f"cannot write {shown} on this host: {text.splitlines()[0]}")
            if attempt == 1 and _GONE.search(text) and "remote" not in text:
                self._shell_v2 = None
                continue
            advice = next((a for key, a in _TRANSFER_ADVICE if key in text), None)
            first = text.splitlines()[0] if text else f"exit status {returncode}"
            detail = f"{advice} (adb: {first})" if advice else f"adb: {first}"
            raise TransportError(
                f"adb {what} {src_shown} -> {dst_shown} on {self.serial} failed: {detail}"
            )

    def _watch(
        self, what: str, src: str, dst: str, bound: float, cap: int | None
    ) -> tuple[int | None, str]:
        """Run the adb client for one transfer: ``(status, text)``, status None when it ran
        past ``bound``, -1 when the pulled file passed ``cap``; either way the client is killed."""
        argv = self._adb_argv(what, src, dst)
        try:
            # adb 29 prints transfer errors on stdout, newer ones on stderr: keep both, merged
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=self._env())  # fmt: skip
        except FileNotFoundError as exc:
            raise self._no_client() from exc
        captured = Captured()
        deadline = time.monotonic() + bound
        outcome: int | None = 0
        try:
            while True:
                capture(proc, captured, timeout=TRANSFER_POLL_S, max_bytes=2**20)
                if not captured.timed_out:
                    outcome = proc.returncode
                    break
                captured.timed_out = False
                if time.monotonic() > deadline:
                    outcome = None
                    break
                if cap is not None and what == "pull" and _size(Path(dst)) > cap:
                    outcome = -1
                    break
        finally:
            if proc.poll() is None:
                _stop(proc)
            _close(proc)
        return outcome, captured.out.decode("utf-8", "replace").strip()

    def close(self) -> None:
        # adb keeps no per-transport connection: the adb server owns it, and other tools share it
        self._shell_v2 = None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


def _close(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
