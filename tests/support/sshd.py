"""A real OpenSSH server on 127.0.0.1 for transport tests.

Each server lives in its own directory with its own host key, config, client key,
``authorized_keys`` and a ``known_hosts`` that trusts it, so tests never touch ``~/.ssh`` or a
system sshd. ``kill()`` takes the server *and its session processes* down (as if the board lost
power), ``restart()`` brings it back on the same port with the same keys, and
``rotate_host_key()`` gives it a new host key (a reinstalled device, or someone in the middle).
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from benchharness.profiles.device_profile import DeviceProfile

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
#: sshd refuses to start without its privilege-separation directory.
PRIVSEP_DIR = Path("/run/sshd")
#: sshd answers within ~50 ms here; 10 s leaves room for a loaded CI machine.
START_TIMEOUT_S = 10.0


def sshd_missing_reason() -> str | None:
    """Why the real-sshd tests cannot run here, or None when they can."""
    if not Path(SSHD).exists():
        return f"{SSHD} is missing (apt-get install -y openssh-server)"
    if shutil.which(SSH_KEYGEN) is None:
        return "ssh-keygen is missing (apt-get install -y openssh-client)"
    try:
        PRIVSEP_DIR.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create sshd's {PRIVSEP_DIR}: {exc.strerror}"
    return None


#: Test servers take loopback ports from a block of their pytest-xdist worker's own, below Linux's
#: ephemeral range (32768-60999 by default): a port one worker picked but has not bound yet is
#: never picked by another worker, nor handed out by bind(0) or an outgoing connection.
PORT_BASE = 20000
#: Ports per worker: more than one worker's whole share of the suite takes (~300).
PORT_BLOCK = 1000
_picked = itertools.count()


def _worker_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...; unset without -n
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0


def free_port() -> int:
    """A loopback port nothing listens on, not handed out by this process before (until its
    worker's block wraps round)."""
    base = PORT_BASE + _worker_index() * PORT_BLOCK
    for _ in range(PORT_BLOCK):
        port = base + next(_picked) % PORT_BLOCK
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # in use by a server of this worker, or something else here
                continue
        return port
    raise RuntimeError(f"no free loopback port in {base}-{base + PORT_BLOCK - 1}")


#: sshd's own SFTP server program, run as a separate process (internal-sftp runs inside sshd).
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def _keygen(path: Path, kind: str = "ed25519") -> None:
    for p in (path, path.with_suffix(".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", "benchharness-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


class SSHServer:
    """One throwaway sshd. Use as a context manager, or call start()/stop().

    Sessions get their own home directory, ``self.home`` (sshd's ``SetEnv HOME``), so the
    login shell reads the fixture's rc files, not the real user's: this host's own ~/.bashrc
    (pyenv and the like) would slow every command and share its lock files with other tests.

    ``host_key_type`` picks the one host key it serves (``ed25519`` or ``rsa``);
    ``sftp_server`` is the ``Subsystem sftp`` program (a separate process when it is
    ``SFTP_SERVER``, which a test can stop); ``bashrc`` is written to the sessions'
    ``~/.bashrc`` (Debian's bash reads it for commands run by sshd, so an rc file that prints
    makes the login shell print before every command); ``set_env`` adds to ``SetEnv``.

    ``chroot``: a root file system the sessions run in (sshd's ``ChrootDirectory``; an aarch64
    Debian for the emulated board, ``tests/support/arm64.py``), whose sessions' home
    (``session_home``) is a folder inside it (a fresh one unless given); ``internal-sftp`` (which
    needs no binary in the root) serves files. ``start_under``: the command sshd is started under
    (it must exec its arguments, so the pid stays sshd's), e.g. a private mount namespace that
    mounts /proc and /dev into the root, which vanish with sshd.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        host_key_type: str = "ed25519",
        sftp_server: str = "internal-sftp",
        set_env: dict[str, str] | None = None,
        bashrc: str = "",
        chroot: Path | None = None,
        session_home: str | None = None,
        start_under: Sequence[str] = (),
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.chroot = Path(chroot).resolve() if chroot is not None else None
        self.start_under = list(start_under)
        #: the sessions' HOME as they see it (inside ``chroot`` when there is one)
        self.session_home = str(self.dir / "home")
        if self.chroot is not None:
            self.session_home = session_home or f"/home/bh-sshd-{secrets.token_hex(4)}"
        self.home = self.on_host(self.session_home)
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.home / ".bashrc").write_text(bashrc)
        env = {"HOME": self.session_home, **(set_env or {})}
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.host_key_type = host_key_type
        self.host_key = self.dir / f"host_{host_key_type}"
        self.client_key = self.dir / "client_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.config = self.dir / "sshd_config"
        self.log = self.dir / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        _keygen(self.host_key, host_key_type)
        _keygen(self.client_key)
        (self.dir / "authorized_keys").write_text(self.client_key.with_suffix(".pub").read_text())
        self.write_known_hosts()
        self.config.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.host}:{self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                    "StrictModes no",  # keys under /tmp fail the mode check otherwise
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UseDNS no",
                    f"Subsystem sftp {sftp_server}",
                    " ".join(["SetEnv", *(f'"{k}={v}"' for k, v in env.items())]),
                    *([f"ChrootDirectory {self.chroot}"] if self.chroot else []),
                    "",
                ]
            )
        )

    def on_host(self, session_path: str) -> Path:
        """Where a path the sessions see lies on this host."""
        if self.chroot is None:
            return Path(session_path)
        return self.chroot / session_path.lstrip("/")

    # --- keys --------------------------------------------------------------------------------

    @property
    def host_key_line(self) -> str:
        kind, b64 = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[{self.host}]:{self.port} {kind} {b64}"

    def write_known_hosts(self) -> None:
        self.known_hosts.write_text(self.host_key_line + "\n")

    def rotate_host_key(self) -> None:
        """A new host key, served after the next restart(); known_hosts keeps the old one."""
        _keygen(self.host_key, self.host_key_type)

    def profile(self, *, known_hosts: Path | None = None, **fields: object) -> DeviceProfile:
        """A device profile that reaches this server."""
        kw: dict[str, object] = {
            "name": "test-sshd",
            "transport": "ssh",
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "key_file": str(self.client_key),
            "known_hosts": str(known_hosts or self.known_hosts),
            "workdir": f"{self.session_home}/work" if self.chroot else str(self.dir / "work"),
        }
        kw.update(fields)
        return DeviceProfile(**kw)  # type: ignore[arg-type]

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        reason = sshd_missing_reason()
        if reason:
            raise RuntimeError(reason)
        log = self.log.open("ab")
        # own process group, so stop() never signals the test runner
        self.proc = subprocess.Popen(
            [*self.start_under, SSHD, "-D", "-f", str(self.config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited at start: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"sshd did not answer on port {self.port}: {self.log.read_text()}")

    def kill(self) -> None:
        """Kill the listener and every session it forked (each session is its own process
        group, so the listener's group alone would leave them running)."""
        if self.proc is None:
            return
        # top down, like a power cut: no sshd outlives its command to report how it ended
        for pid in [self.proc.pid, *_descendants(self.proc.pid)[::-1]]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def processes(self, comm: str) -> list[int]:
        """PIDs below the listener whose command name is ``comm`` (``sshd``: the per-connection
        session processes; ``sftp-server``: the SFTP servers of open SFTP sessions)."""
        if self.proc is None:
            return []
        return [pid for pid in _descendants(self.proc.pid) if _comm(pid) == comm]

    def drop_connections(self, *, listener_too: bool = False) -> None:
        """Kill the sshd processes that carry the open connections (and the listener with
        ``listener_too``), but not the commands they started: the network dropped, the board is
        still up and its commands run on, orphaned, as they do on a real board."""
        sessions = self.processes("sshd")
        if listener_too and self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    stop = kill

    def __enter__(self) -> SSHServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


def _descendants(root: int) -> list[int]:
    """PIDs of all processes below ``root``, from /proc (children before their parents)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: fields start after the last ")"
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            out.append(child)
            stack.append(child)
    return out[::-1]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class SilentSSHServer:
    """An SSH server (paramiko's server side) that authenticates any client key and opens
    channels, but never answers an ``exec`` or ``subsystem`` request: a board whose sshd is
    wedged after login. The real sshd cannot be made to do that on purpose."""

    host = "127.0.0.1"

    def __init__(self, directory: Path) -> None:
        import paramiko

        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        key_file = self.dir / "silent_host_ed25519"
        _keygen(key_file)
        self.host_key = paramiko.Ed25519Key.from_private_key_file(str(key_file))
        self.client_key = self.dir / "client_ed25519"
        _keygen(self.client_key)
        self.known_hosts = self.dir / "known_hosts"
        self._listener = socket.socket()
        self._listener.bind((self.host, 0))
        self._listener.listen(8)
        self.port = int(self._listener.getsockname()[1])
        self.known_hosts.write_text(
            f"[{self.host}]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}\n"
        )
        self._released = threading.Event()
        self._transports: list[paramiko.Transport] = []
        #: requests that arrived and were left unanswered ("exec", "subsystem")
        self.requests: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def profile(self) -> DeviceProfile:
        return DeviceProfile(
            name="silent-sshd",
            transport="ssh",
            host=self.host,
            port=self.port,
            user=getpass.getuser(),
            key_file=str(self.client_key),
            known_hosts=str(self.known_hosts),
            workdir=str(self.dir / "work"),
        )

    def _accept(self) -> None:
        import paramiko

        server = self

        class Interface(paramiko.ServerInterface):
            def get_allowed_auths(self, username: str) -> str:
                return "publickey"

            def check_auth_publickey(self, username: str, key: object) -> int:
                return paramiko.AUTH_SUCCESSFUL

            def check_channel_request(self, kind: str, chanid: int) -> int:
                return paramiko.OPEN_SUCCEEDED

            def check_channel_exec_request(self, channel: object, command: bytes) -> bool:
                server.requests.append("exec")
                server._released.wait()  # never answered while the test runs
                return False

            def check_channel_subsystem_request(self, channel: object, name: str) -> bool:
                server.requests.append("subsystem")
                server._released.wait()
                return False

        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(sock)
            transport.add_server_key(self.host_key)
            self._transports.append(transport)
            with contextlib.suppress(Exception):
                transport.start_server(server=Interface())

    def close(self) -> None:
        self._released.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        for transport in self._transports:
            with contextlib.suppress(Exception):
                transport.close()
