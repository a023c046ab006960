"""SSHTransport's files: push and pull over SFTP, each bounded by its size (Bounds), a pull
capped and refused for anything but a regular file, and failures explained: the device's disk,
this host's disk, a stalled SFTP server, or a login shell whose text corrupts SFTP."""

from __future__ import annotations

import contextlib
import errno
import posixpath
import stat
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path

import paramiko

from benchharness.errors import DeviceUnreachableError, TransportError
from benchharness.transport.base import DEFAULT_MAX_PULL_BYTES, Transport, quote_argv
from benchharness.transport.files import (
    CappedWriter,
    HostWriteError,
    SizeCapExceeded,
    describe_mode,
    host_write_error,
    landing,
    not_regular_error,
    size_cap_error,
)
from benchharness.transport.watchdog import Watchdog

#: Time allowed for the command that asks the device why an upload failed.
DIAGNOSE_TIMEOUT_S = 10.0

#: errno -> what to do about it, for file transfers.
_TRANSFER_ADVICE = {
    errno.ENOSPC: "no space left on the device; free space there or point the profile's "
    "workdir at a larger file system",
    errno.EROFS: "the file system is read-only; point the profile's workdir at a writable place",
    errno.EACCES: "permission denied; check that the SSH user may write there (owner, mode) or "
    "change the profile's workdir",
    errno.ENOENT: "no such file or directory",
}
#: paramiko's words when the SFTP stream does not start with an SFTP packet.
_GARBAGE = "Garbage packet"
#: Exceptions paramiko raises for a connection or SFTP session that went wrong.
_SSH_ERRORS = (paramiko.SSHException, paramiko.SFTPError, OSError, EOFError)


class SFTPFiles(Transport):
    """push and pull over SFTP; SSHTransport supplies the connection."""

    _sftp: paramiko.SFTPClient | None = None

    @abstractmethod
    def _alive(self) -> bool:
        """Whether the SSH connection is up."""

    @abstractmethod
    def _drop(self) -> None:
        """Close the connection (the next call reconnects)."""

    @abstractmethod
    def _open_channel(self) -> paramiko.Channel:
        """A new session channel, reconnecting once if needed."""

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None or not self._alive():
            for attempt in (1, 2):
                try:
                    self._sftp = self._open_sftp()
                    break
                except (paramiko.SSHException, OSError, EOFError) as exc:
                    self._drop()
                    if attempt == 2:
                        raise DeviceUnreachableError(
                            f"cannot open SFTP on {self.where}: {exc}; check that the device's "
                            "sshd_config has a 'Subsystem sftp' line"
                        ) from exc
        assert self._sftp is not None
        return self._sftp

    def _open_sftp(self) -> paramiko.SFTPClient:
        channel = self._open_channel()
        with Watchdog(self.bounds.control_s, channel.close) as dog:
            try:
                channel.invoke_subsystem("sftp")
                return paramiko.SFTPClient(channel)
            except paramiko.SFTPError as exc:
                channel.close()
                if _GARBAGE in str(exc):
                    raise TransportError(
                        f"cannot open SFTP on {self.where}: the login shell there most likely "
                        "prints text for non-interactive sessions too (an echo in ~/.bashrc, "
                        "~/.profile or similar), which corrupts SFTP (paramiko: "
                        f"{exc}); make it print only in interactive shells, e.g. inside "
                        "`case $- in *i*) ... ;; esac`"
                    ) from exc
                raise TransportError(f"SFTP on {self.where} failed: {exc}") from exc
            except (paramiko.SSHException, OSError, EOFError):
                if not dog.fired:
                    raise
        self._drop()
        raise TransportError(
            f"the SFTP server on {self.where} did not answer within {self.bounds.control_s:g} s "
            "(subsystem request); its sshd is stuck. The connection was dropped; check the device "
            "and retry"
        )

    @contextlib.contextmanager
    def _bounded(self, sftp: paramiko.SFTPClient, seconds: float) -> Iterator[Watchdog]:
        """Close the SFTP session if the block runs past ``seconds``; a session that was closed
        so is never used again."""
        channel = sftp.get_channel()
        dog = Watchdog(seconds, channel.close if channel is not None else lambda: None)
        try:
            with dog:
                yield dog
        finally:
            if dog.fired and self._sftp is sftp:
                self._sftp = None

    def _stalled(self, what: str, src: str, dst: str, bound: float, size: int | None) -> str:
        allowance = (
            f"{self.bounds.transfer_floor_s:g} s plus {size} bytes at "
            f"{self.bounds.transfer_min_rate / 1024:.0f} KiB/s"
        )
        return (
            f"{what} {src} -> {dst} on {self.where} did not finish within {bound:.0f} s "
            f"({allowance}): the device's SFTP server stopped answering (overloaded, stopped, "
            "disk hung?); check the device and retry"
        )

    def _makedirs(self, sftp: paramiko.SFTPClient, directory: str) -> None:
        if directory in ("", "/", "."):
            return
        try:
            if stat.S_ISDIR(sftp.stat(directory).st_mode or 0):
                return
        except OSError:
            pass
        self._makedirs(sftp, posixpath.dirname(directory))
        with contextlib.suppress(OSError):  # an error shows up when the file is written
            sftp.mkdir(directory)

    def push(self, local: Path, remote: str) -> None:
        local = Path(local)
        if not local.is_file():
            raise TransportError(f"cannot push {local}: no such local file")
        size = local.stat().st_size
        bound = self.bounds.transfer_s(size)
        sftp = self._sftp_client()
        with self._bounded(sftp, bound) as dog:
            try:
                self._makedirs(sftp, posixpath.dirname(remote))
                sftp.put(str(local), remote)
                return
            except _SSH_ERRORS as exc:
                failure: BaseException = exc
        if dog.fired:
            self._remove_quietly(remote)
            raise TransportError(self._stalled("push", str(local), remote, bound, size))
        with self._bounded(sftp, self.bounds.control_s), contextlib.suppress(Exception):
            sftp.remove(remote)  # leave no truncated file that looks like a good one
        raise self._transfer_error("push", str(local), remote, failure, size) from failure

    def _remove_quietly(self, remote: str) -> None:
        """Remove a half-pushed file through a fresh SFTP session (the old one was stuck)."""
        with contextlib.suppress(Exception):
            sftp = self._sftp_client()
            with self._bounded(sftp, self.bounds.control_s):
                sftp.remove(remote)

    def pull(
        self, remote: str, local: Path, *, max_bytes: int | None = DEFAULT_MAX_PULL_BYTES
    ) -> None:
        local = Path(local)
        sftp = self._sftp_client()
        info: paramiko.SFTPAttributes | None = None
        with self._bounded(sftp, self.bounds.control_s) as dog:
            try:
                info = sftp.stat(remote)
            except _SSH_ERRORS as exc:
                failure: BaseException = exc
        if info is None:
            if dog.fired:
                raise TransportError(self._stalled("pull", remote, str(local), 0, None))
            raise self._transfer_error("pull", remote, str(local), failure, None) from failure
        mode, size = info.st_mode or 0, info.st_size or 0
        if not stat.S_ISREG(mode):
            raise not_regular_error(remote, self.where, describe_mode(mode))
        if max_bytes is not None and size > max_bytes:
            raise size_cap_error(remote, self.where, size, max_bytes)
        bound = self.bounds.transfer_s(size)
        with landing(local) as part:
            try:
                # unbuffered, so every failed write on this host surfaces in CappedWriter
                fh = part.open("wb", buffering=0)
            except OSError as exc:
                raise host_write_error(local, exc) from exc
            with fh, self._bounded(sftp, bound) as dog:
                try:
                    sftp.getfo(remote, CappedWriter(fh, max_bytes))
                    return
                except HostWriteError as exc:
                    raise host_write_error(local, exc) from exc
                except SizeCapExceeded as exc:
                    assert max_bytes is not None
                    raise size_cap_error(remote, self.where, exc.size, max_bytes) from exc
                except _SSH_ERRORS as exc:
                    failure = exc
            if dog.fired:
                raise TransportError(self._stalled("pull", remote, str(local), bound, size))
            raise self._transfer_error("pull", remote, str(local), failure, size) from failure

    def _transfer_error(
        self, what: str, src: str, dst: str, exc: BaseException, size: int | None
    ) -> TransportError:
        remote = dst if what == "push" else src
        code = exc.errno if isinstance(exc, OSError) else None
        if isinstance(exc, (paramiko.SSHException, paramiko.SFTPError, EOFError)) or (
            not self._alive()
        ):
            self._drop()
            return TransportError(
                f"SSH connection to {self.where} broke during {what} of {src}: {exc}; "
                "check the device and retry"
            )
        if code is None and what == "push":
            # SFTP v3 reports ENOSPC and EROFS only as a generic "Failure": ask the device why.
            code = self._diagnose_write(posixpath.dirname(remote) or "/", size)
        advice = _TRANSFER_ADVICE.get(code or -1, str(exc))
        if code == errno.ENOENT and what == "pull":
            advice = "no such file on the device"
        elif code == errno.ENOENT:
            advice = "the directory could not be created (check the profile's workdir)"
        return TransportError(f"{what} {src} -> {dst} on {self.where} failed: {advice}")

    def _diagnose_write(self, directory: str, size: int | None) -> int | None:
        """errno that best explains a failed upload into ``directory``, found on the device."""
        probe = posixpath.join(directory, ".benchharness-probe")
        script = (
            f"d={quote_argv([directory])}; p={quote_argv([probe])}; "
            '[ -d "$d" ] || { echo ENOENT; exit 0; }; '
            'msg=$( (: > "$p") 2>&1 ); rm -f "$p" 2>/dev/null; '
            'case "$msg" in *Read-only*) echo EROFS;; *ermission*) echo EACCES;; '
            '*"No space"*) echo ENOSPC;; *) df -Pk "$d" | tail -n 1;; esac'
        )
        try:
            result = self.run(["sh", "-c", script], timeout=DIAGNOSE_TIMEOUT_S)
        except TransportError:
            return None
        text = result.stdout.strip()
        if text in ("ENOENT", "EROFS", "EACCES", "ENOSPC"):
            return int(getattr(errno, text))
        fields = text.split()
        if len(fields) >= 4 and fields[3].isdigit():
            free = int(fields[3]) * 1024
            if size is None or free < size + 4096:
                return errno.ENOSPC
        return None
