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
import os
import select
import socket
import time

import paramiko

from benchharness.errors import (
    DeviceUnreachableError,
    HostKeyError,
    TransportError,
)
from benchharness.profiles.device_profile import DEFAULT_SSH_PORT, DeviceProfile
from benchharness.transport.base import (
    Bounds,
    Command,
    CommandResult,
    RemoteTransport,
    quote_argv,
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
from benchharness.transport.pipes import cut_short
from benchharness.transport.remote_shell import (
    new_token,
    reap_command_line,
    reap_left,
    remote_command_line,
    split_pid_marker,
)
from benchharness.transport.ssh_files import SFTPFiles
from benchharness.transport.watchdog import Watchdog

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


class _Output:
    """Output of one command as it arrives (kept when the command is interrupted)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()

    @property
    def size(self) -> int:
        return len(self.out) + len(self.err)


class SSHTransport(SFTPFiles, RemoteTransport):
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
        with Watchdog(self.bounds.control_s, channel.close) as dog:
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

    def execute(self, command: Command) -> CommandResult:
        argv, timeout, cap = command.argv, command.timeout, command.max_output_bytes
        token = new_token()
        line = remote_command_line(argv, token=token, env=command.env, cwd=command.cwd)
        channel = self._open_channel()
        output = _Output()
        try:
            self._exec(channel, line)
            status, timed_out, flooded = self._collect(channel, output, timeout, cap)
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
        if flooded or timed_out:
            self._kill(token, pid)
            raise cut_short(argv, self.where, flooded=flooded, cap=cap, timeout=timeout)
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

    def _kill_all(self, tokens: list[str]) -> None:
        left = reap_left(self._control(reap_command_line(tokens), KILL_TIMEOUT_S))
        if left != 0:
            raise TransportError(
                f"{left if left is not None else 'some'} process(es) of an earlier command on "
                f"{self.where} could not be killed (kill -9 failed); log in and check `ps`, or "
                "reboot the device, before running more jobs there"
            )

    def close(self) -> None:
        self._drop()
