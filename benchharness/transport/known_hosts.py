"""known_hosts read the way OpenSSH reads it, for paramiko.

paramiko's own loader stops at the first line it cannot decode (``InvalidHostKey``, a traceback)
and knows nothing of markers, so a ``@revoked`` line is misread or ignored. OpenSSH skips a line
it cannot parse (it says so with ``-v``) and refuses a revoked key outright. This module does the
same: malformed lines are skipped with a KnownHostsWarning naming file and line, hashed names
(``|1|salt|hash``) match as they do in OpenSSH, ``@revoked`` keys are refused for every host (a
revoked key is no good whichever host offers it), and ``@cert-authority`` lines, which paramiko
cannot use, are skipped with a warning.
"""

from __future__ import annotations

import os
import re
import socket
import warnings
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from paramiko.hostkeys import HostKeyEntry

from benchharness.errors import DeviceUnreachableError, HostKeyError, TransportError
from benchharness.profiles.schema import DEFAULT_SSH_PORT, DeviceProfile

#: How long to wait for the TCP connection, the SSH banner and authentication; a board on the
#: LAN answers in well under a second, so 10 s means it is off or unreachable.
CONNECT_TIMEOUT_S = 10.0
#: Where OpenSSH keeps the user's known hosts when a profile names none.
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


class KnownHostsWarning(UserWarning):
    """A known_hosts line was skipped (malformed, or a marker paramiko cannot use)."""


@dataclass
class KnownHosts:
    """The usable entries of one known_hosts file, and its revoked keys."""

    path: str
    #: usable (parsed, not revoked) entries in file order
    entries: list[HostKeyEntry] = field(default_factory=list)
    keys: paramiko.HostKeys = field(default_factory=paramiko.HostKeys)
    #: (key type, base64 blob) -> line number of the ``@revoked`` line
    revoked: dict[tuple[str, str], int] = field(default_factory=dict)

    def revoked_line(self, key: Any) -> int | None:
        """The line that revokes ``key``, or None."""
        return self.revoked.get((key.get_name(), key.get_base64()))

    def known_types(self, host_entry: str) -> list[str]:
        """Key types this file trusts for ``host_entry`` (``host`` or ``[host]:port``)."""
        found = self.keys.lookup(host_entry)
        return sorted(found.keys()) if found else []

    def install(self, client: paramiko.SSHClient) -> None:
        """Make these entries the keys ``client`` checks servers against."""
        target = client.get_host_keys()
        for entry in self.entries:
            for name in entry.hostnames:
                target.add(name, entry.key.get_name(), entry.key)


_FIELDS = re.compile(r"[ \t]+")


def _warn(path: str, lineno: int, why: str) -> None:
    warnings.warn(f"{path}:{lineno}: {why}", KnownHostsWarning, stacklevel=3)


def _parse(line: str, path: str, lineno: int) -> HostKeyEntry | None:
    fields = _FIELDS.split(line)
    if len(fields) < 3:
        _warn(path, lineno, "malformed line skipped (expected: names keytype base64-key)")
        return None
    try:
        # None for a key type paramiko does not know: OpenSSH may know it, so no warning
        entry: HostKeyEntry | None = HostKeyEntry.from_line(" ".join(fields[:3]), lineno)
    except Exception as exc:  # InvalidHostKey, SSHException, ValueError: all mean a bad line
        reason = exc.args[1] if len(exc.args) > 1 else exc
        _warn(path, lineno, f"malformed line skipped ({reason}); fix or delete it")
        return None
    return entry


def load_known_hosts(path: str) -> KnownHosts:
    """Read ``path`` (a missing file is an empty one); raise HostKeyError if it cannot be read."""
    known = KnownHosts(path)
    file = Path(path)
    if not file.exists():
        return known
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HostKeyError(f"cannot read known_hosts {path}: {exc.strerror or exc}") from exc
    entries: list[HostKeyEntry] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            marker, _, rest = line.partition(" ")
            if marker == "@revoked":
                revoked = _parse(rest.strip(), path, lineno)
                if revoked is not None:
                    known.revoked[(revoked.key.get_name(), revoked.key.get_base64())] = lineno
            elif marker == "@cert-authority":
                _warn(path, lineno, "@cert-authority line skipped (host certificates are not "
                      "supported here; list the host's own key)")  # fmt: skip
            else:
                _warn(path, lineno, f"unknown marker {marker!r}: line skipped")
            continue
        entry = _parse(line, path, lineno)
        if entry is not None:
            entries.append(entry)
    for entry in entries:
        if known.revoked_line(entry.key) is not None:
            continue  # revoked wins over a listing of the same key, as in OpenSSH
        known.entries.append(entry)
        for name in entry.hostnames:
            known.keys.add(name, entry.key.get_name(), entry.key)
    return known


def append_known_host(path: str, entry: str, key: Any) -> None:
    """Append one line, keeping the user's other entries, comments and hashed names untouched
    (paramiko's HostKeys.save would rewrite the whole file)."""
    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        text = file.read_text(encoding="utf-8") if file.exists() else ""
        with file.open("a", encoding="utf-8") as fh:
            if text and not text.endswith("\n"):
                fh.write("\n")
            fh.write(f"{entry} {key.get_name()} {key.get_base64()}\n")
    except OSError as exc:
        raise HostKeyError(f"cannot add the host key to {path}: {exc.strerror or exc}") from exc


def fingerprint(key: Any) -> str:
    return str(key.fingerprint) if hasattr(key, "fingerprint") else key.get_base64()[:16]


def revoked_error(known: KnownHosts, where: str, key: Any, line: int) -> HostKeyError:
    return HostKeyError(
        f"the host key of {where} ({key.get_name()} {fingerprint(key)}) is REVOKED in "
        f"{known.path}:{line}; refusing to connect. Ask the device's owner for its new key; do "
        "not remove the @revoked line to get past this"
    )


def known_hosts_entry(host: str, port: int) -> str:
    """The host name as OpenSSH and paramiko write it in known_hosts."""
    return host if port == DEFAULT_SSH_PORT else f"[{host}]:{port}"


def keyscan_hint(host: str, port: int, known_hosts: str, name: str | None) -> str:
    trust = f"run `bench devices trust {name}` or " if name else ""
    return (
        f"{trust}`ssh-keyscan -p {port} {host} >> {known_hosts}` after checking the fingerprint "
        "with the device's owner"
    )


def forget_hint(host: str, port: int, known_hosts: str) -> str:
    return f"`ssh-keygen -R '{known_hosts_entry(host, port)}' -f {known_hosts}`"


@dataclass(eq=False)
class RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """Unknown host key: refuse with a message that says how to trust it (or, with
    ``trust_new``, trust it and append it to the known_hosts file). A revoked key is refused
    either way."""

    known: KnownHosts
    host: str
    port: int
    _: KW_ONLY
    trust_new: bool
    name: str | None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        line = self.known.revoked_line(key)
        if line is not None:
            raise revoked_error(self.known, f"{self.host}:{self.port}", key, line)
        if self.trust_new:
            append_known_host(self.known.path, known_hosts_entry(self.host, self.port), key)
            return
        raise HostKeyError(
            f"the host key of {self.host}:{self.port} ({key.get_name()} {fingerprint(key)}) is "
            f"not in {self.known.path}; to trust it, "
            + keyscan_hint(self.host, self.port, self.known.path, self.name)
        )


def bad_key_error(
    known: KnownHosts, host: str, port: int, exc: paramiko.BadHostKeyException
) -> HostKeyError:
    """The message for a server key that differs from the one known_hosts has for it."""
    line = known.revoked_line(exc.key)
    if line is not None:
        return revoked_error(known, f"{host}:{port}", exc.key, line)
    offered = f"{exc.key.get_name()} {fingerprint(exc.key)}"
    forget = forget_hint(host, port, known.path)
    types = known.known_types(known_hosts_entry(host, port))
    if exc.key.get_name() not in types:
        # OpenSSH with StrictHostKeyChecking=yes refuses this too ("No RSA host key is known
        # for ..."): the key we know cannot vouch for one of another type
        return HostKeyError(
            f"{known.path} knows {host}:{port} only by {', '.join(types) or 'another key type'}, "
            f"but it offered {offered}. Refusing to connect: the device lost its old key "
            "(reinstalled?) or someone in the middle lacks it. Check the new fingerprint with the "
            f"device's owner; if it is right, remove the old line ({forget}) and trust the new key"
        )
    return HostKeyError(
        f"the host key of {host}:{port} CHANGED: {known.path} has "
        f"{exc.expected_key.get_name()} {fingerprint(exc.expected_key)}, the device offered "
        f"{offered}. Refusing to connect: this is either a reinstalled device or someone in the "
        f"middle. If the device was reinstalled, remove the old line ({forget}) and trust the new "
        "key"
    )


def fetch_host_key(
    host: str, port: int = DEFAULT_SSH_PORT, timeout: float = CONNECT_TIMEOUT_S
) -> Any:
    """The host key a server offers (what ``ssh-keyscan`` prints), without authenticating."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise DeviceUnreachableError(
            f"cannot connect to {host}:{port} to fetch its host key: {exc.strerror or exc}; "
            "is the device on and sshd running?"
        ) from exc
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise DeviceUnreachableError(
            f"{host}:{port} did not complete an SSH handshake: {exc}"
        ) from exc
    finally:
        transport.close()


def trust_host(
    profile: DeviceProfile | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    known_hosts: str | None = None,
) -> str:
    """Fetch the device's host key and append it to the known_hosts file (trust on first use).

    Returns ``"<type> <fingerprint>"`` so the caller can show it for checking. A key already
    there is left alone; a *different* key for the same host (of any type) raises HostKeyError
    (changed key) instead of being added next to it, and so does a revoked one.
    """
    host = host or (profile.host if profile else None)
    if not host:
        raise TransportError("trust_host needs a host (the profile's 'host' field)")
    port = port or (profile.port if profile else DEFAULT_SSH_PORT)
    path = os.path.expanduser(
        known_hosts or (profile.known_hosts if profile else None) or DEFAULT_KNOWN_HOSTS
    )
    key = fetch_host_key(host, port)
    entry = known_hosts_entry(host, port)
    described = f"{key.get_name()} {fingerprint(key)}"
    known = load_known_hosts(path)
    line = known.revoked_line(key)
    if line is not None:
        raise revoked_error(known, f"{host}:{port}", key, line)
    existing = known.keys.lookup(entry)
    if existing is not None:
        old = existing.get(key.get_name())
        if old is not None and old == key:
            return described
        if old is not None or existing:
            raise HostKeyError(
                f"{path} already has a DIFFERENT host key for {entry}; the device's key "
                f"changed (now {described}). Not adding it: remove the old line with "
                f"`ssh-keygen -R '{entry}' -f {path}` if the device was reinstalled"
            )
    append_known_host(path, entry, key)
    return described
