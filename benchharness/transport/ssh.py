"""Run on a board or host over SSH (paramiko): one connection per transport, SFTP for files.

Host keys are checked against a known_hosts file read as OpenSSH reads it (known_hosts.py) and
never accepted silently: an unknown key raises HostKeyError saying how to trust it (``bench
devices trust NAME``, which calls ``trust_host``); a changed key, a key of another type than the
known one, and a revoked key raise HostKeyError and refuse to go on.

Every remote call has a bound: paramiko waits an hour to open a channel and forever for an exec
or subsystem reply or an SFTP answer, so each such call runs under a watchdog that closes its
channel when its bound (``Bounds``) passes, and the stalled call returns with an error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import select
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

import paramiko

from benchharness.devices.profile import DEFAULT_SSH_PORT, DeviceProfile
from benchharness.errors import (
    CommandTimeoutError,
    DeviceUnreachableError,
    HostKeyError,
    RunnerError,
    TransportError,
)
from benchharness.transport.base import (
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_PULL_BYTES,
    Bounds,
    CommandResult,
    Transport,
    quote_argv,
)
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
from benchharness.transport.known_hosts import (
    CONNECT_TIMEOUT_S,
    DEFAULT_KNOWN_HOSTS,
    RefuseUnknown,
    bad_key_error,
    fetch_host_key,
    known_hosts_entry,
    load_known_hosts,
    trust_host,
)
from benchharness.transport.pipes import flood_message
from benchharness.transport.remote_shell import (
    new_token,
    reap_command_line,
    reap_left,
    remote_command_line,
    split_pid_marker,
)

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_KNOWN_HOSTS",
    "SSHTransport",
    "fetch_host_key",
    "known_hosts_entry",
    "trust_host",
]

#: Keepalive interval: a dead link is noticed between two jobs rather than on the next command.
KEEPALIVE_S = 15
#: Read size for command output; large enough that a chatty runner costs few wake-ups.
READ_CHUNK = 65536
#: Longest wait in one select() on the channel, so a dropped connection is noticed promptly.
POLL_S = 0.2
#: How long output may still arrive after the exit status: what the command wrote is in
#: flight for milliseconds; longer means a background child holds its stdout open.
EOF_GRACE_S = 2.0
#: Time allowed for the follow-up command that kills a timed-out, flooding or interrupted one.
KILL_TIMEOUT_S = 10.0
#: Output cap of the small bookkeeping commands (kill, reap): they print a line or two.
CONTROL_OUTPUT_BYTES = 2**20

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


class _Watchdog:
    """Runs ``on_fire`` (which closes the channel a call waits on) if the ``with`` block has
    not ended within ``seconds``; ``fired`` says whether it did."""

    def __init__(self, seconds: float, on_fire: Callable[[], object]) -> None:
        self.fired = False
        self._on_fire = on_fire
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(Exception):
            self._on_fire()

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()


class _Output:
    """Output of one command as it arrives (kept when the command is interrupted)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()

    @property
    def size(self) -> int:
        return len(self.out) + len(self.err)


class SSHTransport(Transport):
    """Commands and files on a device reached over SSH.

    Give a profile, or the connection fields explicitly (explicit values win over the profile's).
    The connection opens on first use and is reused; if it has dropped, the next command
    reconnects once before giving up.
    """

    kind = "ssh"

    def __init__(
        self,
        profile: DeviceProfile | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        key_file: str | None = None,
        known_hosts: str | None = None,
        trust_new_host: bool = False,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        bounds: Bounds | None = None,
    ) -> None:
        self.name = profile.name if profile else None
        resolved_host = host or (profile.host if profile else None)
        if not resolved_host:
            raise TransportError("SSH transport needs a host (the profile's 'host' field)")
        self.host: str = resolved_host
        self.port: int = port or (profile.port if profile else DEFAULT_SSH_PORT)
        self.user = user or (profile.user if profile else None)
        self.key_file = key_file or (profile.key_file if profile else None)
        self.known_hosts: str = os.path.expanduser(
            known_hosts or (profile.known_hosts if profile else None) or DEFAULT_KNOWN_HOSTS
        )
        self.trust_new_host = trust_new_host
        self.connect_timeout = connect_timeout
        self.bounds = bounds or Bounds()
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        #: tokens of commands whose end on the device is not confirmed (see reap)
        self._leftovers: list[str] = []

    # --- connection --------------------------------------------------------------------------

    @property
    def where(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.port}"

    def connect(self) -> None:
        """Open the connection now (otherwise the first command does)."""
        self._drop()
        known = load_known_hosts(self.known_hosts)
        client = paramiko.SSHClient()
        known.install(client)
        policy = RefuseUnknown(
            known, self.host, self.port, trust_new=self.trust_new_host, name=self.name
        )
        client.set_missing_host_key_policy(policy)
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.user,
                key_filename=self.key_file,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.bounds.control_s,
                # a key named in the profile is the only key tried; the agent still helps
                look_for_keys=self.key_file is None,
                allow_agent=True,
            )
        except HostKeyError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise bad_key_error(known, self.host, self.port, exc) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            key = f"key {self.key_file}" if self.key_file else "the SSH agent or ~/.ssh keys"
            raise TransportError(
                f"{self.where} refused authentication with {key}: {exc}; check the profile's "
                "'user' and 'key_file' and that the public key is in the device's "
                "~/.ssh/authorized_keys (ssh-copy-id)"
            ) from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise DeviceUnreachableError(self._unreachable_message(exc)) from exc
        except Exception as exc:  # paramiko raises bare Exception for odd known_hosts key types
            client.close()
            raise TransportError(f"cannot connect to {self.where}: {exc}") from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(KEEPALIVE_S)
        self._client = client

    def _unreachable_message(self, exc: BaseException) -> str:
        refused = (paramiko.ssh_exception.NoValidConnectionsError, ConnectionRefusedError)
        if isinstance(exc, refused):
            why = (
                "connection refused or host unreachable: is the device up, sshd running "
                "there, and the profile's 'port' right?"
            )
        elif isinstance(exc, socket.gaierror):
            why = "cannot resolve the host name: check the profile's 'host'"
        elif isinstance(exc, (socket.timeout, TimeoutError)):
            why = (
                f"no answer within {self.connect_timeout:.0f} s: is the device on, on this "
                "network, and not behind a firewall?"
            )
        else:
            why = f"{type(exc).__name__}: {exc}; is the device on and sshd running?"
        return f"cannot connect to {self.where} over SSH: {why}"

    def _alive(self) -> bool:
        if self._client is None:
            return False
        transport = self._client.get_transport()
        return transport is not None and transport.is_active()

    def _ensure(self) -> paramiko.SSHClient:
        if not self._alive():
            self.connect()
        assert self._client is not None
        return self._client

    def _drop(self) -> None:
        if self._sftp is not None:
            with contextlib.suppress(Exception):
                self._sftp.close()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        self._sftp = None
        self._client = None

    def _open_channel(self) -> paramiko.Channel:
        """A session channel, reconnecting once if the connection turns out to be gone (the
        command has not started then, so trying again cannot run it twice)."""
        for attempt in (1, 2):
            client = self._ensure()
            try:
                transport = client.get_transport()
                if transport is None:
                    raise paramiko.SSHException("no transport")
                return transport.open_session(timeout=self.bounds.control_s)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                self._drop()
                if attempt == 2:
                    raise DeviceUnreachableError(self._unreachable_message(exc)) from exc
        raise AssertionError("unreachable")

    def _exec(self, channel: paramiko.Channel, line: str) -> None:
        """Send the exec request; a server that does not answer it within the control bound
        gets its connection dropped (it is wedged) and a TransportError."""
        with _Watchdog(self.bounds.control_s, channel.close) as dog:
            try:
                channel.exec_command(line)
            except (paramiko.SSHException, OSError, EOFError):
                if not dog.fired:
                    raise
        if dog.fired:
            self._drop()
            raise TransportError(
                f"{self.where} did not answer within {self.bounds.control_s:g} s when asked to "
                "run a command (exec request); its sshd is stuck (overloaded, out of memory?). "
                "The connection was dropped; check the device and retry"
            )

    # --- commands ----------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> CommandResult:
        argv = [str(a) for a in argv]
        self.reap()  # nothing left over from an earlier failure may run alongside
        token = new_token()
        line = remote_command_line(argv, token=token, env=env, cwd=cwd)
        channel = self._open_channel()
        output = _Output()
        try:
            self._exec(channel, line)
            status, timed_out, flooded = self._collect(channel, output, timeout, max_output_bytes)
        except TransportError:
            self._leftovers.append(token)  # the exec may have started before the server stuck
            raise
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._drop()
            self._orphaned(token)
            raise TransportError(
                f"the SSH connection to {self.where} broke while running "
                f"{quote_argv(argv)[:200]}: {exc}; check the device and run the job again"
            ) from exc
        except BaseException:
            # Ctrl-C: closing the channel signals nothing to a command without a PTY, so kill it
            channel.close()
            self._kill(token, split_pid_marker(output.out.decode("utf-8", "replace"), token)[0])
            raise
        finally:
            channel.close()
        pid, stdout = split_pid_marker(output.out.decode("utf-8", "replace"), token)
        stderr = output.err.decode("utf-8", "replace")
        if flooded:
            self._kill(token, pid)
            raise RunnerError(flood_message(argv, self.where, max_output_bytes))
        if timed_out:
            self._kill(token, pid)
            raise CommandTimeoutError(
                f"{posixpath.basename(argv[0])} on {self.where} ran past {timeout:g} s and was "
                "killed; raise the job timeout (--timeout) if the model is that slow"
            )
        if status is None:
            self._drop()
            self._orphaned(token)
            raise TransportError(
                f"the SSH connection to {self.where} closed before {quote_argv(argv)[:200]} "
                "finished (no exit status); check the device (reboot, out of memory?) and retry"
            )
        return CommandResult(tuple(argv), status, stdout, stderr)

    def _collect(
        self, channel: paramiko.Channel, output: _Output, timeout: float, cap: int
    ) -> tuple[int | None, bool, bool]:
        """``(status, timed_out, flooded)``; status None: the connection went away."""
        deadline = time.monotonic() + timeout
        exited_at: float | None = None
        while True:
            got = False
            while channel.recv_ready():
                output.out += channel.recv(READ_CHUNK)
                got = True
            while channel.recv_stderr_ready():
                output.err += channel.recv_stderr(READ_CHUNK)
                got = True
            if output.size > cap:
                return None, False, True
            if channel.exit_status_ready():
                # sshd may send the exit status before the last of the output: wait for the
                # end of the output too, but not for a background child that keeps it open
                exited_at = exited_at or time.monotonic()
                ended = channel.eof_received or channel.closed
                if not got and (ended or time.monotonic() - exited_at > EOF_GRACE_S):
                    break
                if not got:
                    select.select([channel], [], [], POLL_S)
                continue
            if not got and (channel.closed or not self._alive()):
                return None, False, False  # connection gone without an exit status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, True, False
            if not got:
                select.select([channel], [], [], min(remaining, POLL_S))
        # the exit status arrives after the output; drain anything still buffered
        while channel.recv_ready():
            output.out += channel.recv(READ_CHUNK)
        while channel.recv_stderr_ready():
            output.err += channel.recv_stderr(READ_CHUNK)
        if output.size > cap:
            return None, False, True
        status = channel.recv_exit_status()
        if status == -1 and not self._alive():
            # the channel closed because the connection died, not because the command ended
            return None, False, False
        # -1 with a live connection: killed by a signal (paramiko drops the signal's number)
        return status, False, False

    def _control(self, line: str, timeout: float) -> str:
        """Run a small bookkeeping script (no reap first, output capped); its stdout."""
        channel = self._open_channel()
        output = _Output()
        try:
            self._exec(channel, line)
            status, _, _ = self._collect(channel, output, timeout, CONTROL_OUTPUT_BYTES)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._drop()
            raise TransportError(f"the SSH connection to {self.where} broke: {exc}") from exc
        finally:
            channel.close()
        if status is None:
            raise TransportError(f"{self.where} did not finish a bookkeeping command")
        return output.out.decode("utf-8", "replace")

    def _kill(self, token: str, pid: int | None) -> None:
        """Kill a command on the device now (its process group and everything carrying its
        token); if that cannot be confirmed, remember it for reap. Never raises: the error that
        follows is the one the user needs to see."""
        try:
            left = reap_left(self._control(reap_command_line([token], pid), KILL_TIMEOUT_S))
        except TransportError:
            left = None
        if left != 0:
            self._leftovers.append(token)

    def _orphaned(self, token: str) -> None:
        """The connection dropped under a running command: remember it, and kill it at once if
        the device can be reached again (else the next run() or reap() does)."""
        self._leftovers.append(token)
        with contextlib.suppress(TransportError):
            self.reap()

    @property
    def leftovers(self) -> tuple[str, ...]:
        return tuple(self._leftovers)

    def reap(self) -> None:
        if not self._leftovers:
            return
        tokens = list(self._leftovers)
        left = reap_left(self._control(reap_command_line(tokens), KILL_TIMEOUT_S))
        if left != 0:
            raise TransportError(
                f"{left if left is not None else 'some'} process(es) of an earlier command on "
                f"{self.where} could not be killed (kill -9 failed); log in and check `ps`, or "
                "reboot the device, before running more jobs there"
            )
        self._leftovers = [t for t in self._leftovers if t not in tokens]

    # --- files -------------------------------------------------------------------------------

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
        with _Watchdog(self.bounds.control_s, channel.close) as dog:
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
    def _bounded(self, sftp: paramiko.SFTPClient, seconds: float) -> Iterator[_Watchdog]:
        """Close the SFTP session if the block runs past ``seconds``; a session that was closed
        so is never used again."""
        channel = sftp.get_channel()
        dog = _Watchdog(seconds, channel.close if channel is not None else lambda: None)
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
            result = self.run(["sh", "-c", script], timeout=KILL_TIMEOUT_S)
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

    def close(self) -> None:
        self._drop()
