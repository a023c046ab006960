"""known_hosts read the way OpenSSH reads it, for paramiko.

paramiko's own loader stops at the first line it cannot decode (``InvalidHostKey``, a traceback)
and knows nothing of markers, so a ``@revoked`` line is misread or ignored. OpenSSH skips a line
it cannot parse (it says so with ``-v``) and refuses a revoked key outright. This module does the
same: malformed lines are skipped with a KnownHostsWarning naming file and line, hashed names
(``|1|salt|hash``) match as they do in OpenSSH, ``@revoked`` keys are refused for every host (a
revoked key is no good whichever host offers it), and ``@cert-authority`` lines, which paramiko
cannot use, are skipped with a warning.

The file is the user's, but anything may have written it: it is read within bounds (at most
MAX_KNOWN_HOSTS_BYTES, lines of at most MAX_LINE_CHARS, MAX_WARNINGS warnings), in time linear
in its size, and any bytes either load or are a HostKeyError.
"""

from __future__ import annotations

import base64
import binascii
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
from benchharness.profiles.device_profile import DEFAULT_SSH_PORT, DeviceProfile

#: How long to wait for the TCP connection, the SSH banner and authentication; a board on the
#: LAN answers in well under a second, so 10 s means it is off or unreachable.
CONNECT_TIMEOUT_S = 10.0
#: Where OpenSSH keeps the user's known hosts when a profile names none.
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
#: A larger file is no list of hosts a person keeps (it would hold ~100,000 ed25519 lines).
MAX_KNOWN_HOSTS_BYTES = 16 * 2**20
#: OpenSSH's longest key line is a 16384-bit RSA key (~2,800 base64 characters) after a few names;
#: a longer line is skipped unread, so no huge key is decoded.
MAX_LINE_CHARS = 8192
#: Malformed lines warned about one by one; the rest are counted in one last warning, so a file
#: of garbage does not flood the output.
MAX_WARNINGS = 10
#: A hashed host name: ``|1|`` then the salt and the HMAC-SHA1 of the name, both base64.
HASH_MAGIC = "|1|"
#: Bytes of the salt and of the hash: SHA-1's digest size (paramiko asserts the salt's).
HASH_BYTES = 20


class KnownHostsWarning(UserWarning):
    """A known_hosts line was skipped (malformed, or a marker paramiko cannot use)."""


class _IndexedHostKeys(paramiko.HostKeys):
    """paramiko's HostKeys whose ``add`` finds a (name, key type) already there in an index:
    paramiko's scans every entry, which made loading 20,000 hosts take 13 s. Only ``add`` may
    change it (the index knows nothing of other changes)."""

    def __init__(self) -> None:
        super().__init__()
        self._index: dict[tuple[str, str], HostKeyEntry] = {}

    def add(self, hostname: str, keytype: str, key: Any) -> None:
        entry = self._index.get((hostname, keytype))
        if entry is not None:
            entry.key = key  # a later line for the same name and type wins, as in paramiko
            return
        entry = HostKeyEntry([hostname], key)
        self._entries.append(entry)
        self._index[(hostname, keytype)] = entry

    def copy_into(self, target: paramiko.HostKeys) -> None:
        """Add every entry to ``target`` as ``target.add`` would, in linear time.

        paramiko has no bulk add, and its ``add`` scans every entry: the entries new to
        ``target`` are appended to its entry list (``_entries``, the same since paramiko 1.x).
        """
        present = {
            (name, e.key.get_name())
            for e in target._entries
            if e.key is not None
            for name in e.hostnames
        }
        for entry in self._entries:
            pair = (entry.hostnames[0], entry.key.get_name())
            if pair in present:
                target.add(*pair, entry.key)
            else:
                target._entries.append(HostKeyEntry([pair[0]], entry.key))
                present.add(pair)


@dataclass
class KnownHosts:
    """The usable entries of one known_hosts file, and its revoked keys."""

    path: str
    #: usable (parsed, not revoked) entries in file order
    entries: list[HostKeyEntry] = field(default_factory=list)
    keys: _IndexedHostKeys = field(default_factory=_IndexedHostKeys)
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
        self.keys.copy_into(client.get_host_keys())


_FIELDS = re.compile(r"[ \t]+")


@dataclass
class _Skipped:
    """The lines of one file skipped: the first MAX_WARNINGS are warned about one by one, the
    rest counted in one warning at the end."""

    path: str
    count: int = 0

    def skip(self, lineno: int, why: str) -> None:
        self.count += 1
        if self.count <= MAX_WARNINGS:
            warnings.warn(f"{self.path}:{lineno}: {why}", KnownHostsWarning, stacklevel=4)

    def finish(self) -> None:
        more = self.count - MAX_WARNINGS
        if more > 0:
            warnings.warn(
                f"{self.path}: {more} more lines skipped", KnownHostsWarning, stacklevel=3
            )


def _b64_bytes(text: str) -> int | None:
    """How many bytes the base64 ``text`` holds, or None when it is no base64."""
    try:
        return len(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return None


def _is_hashed_name(name: str) -> bool:
    """``|1|salt|hash`` with a salt and a hash of HASH_BYTES each, as OpenSSH writes it."""
    parts = name.split("|")
    return (
        name.startswith(HASH_MAGIC)
        and len(parts) == 4
        and _b64_bytes(parts[2]) == HASH_BYTES
        and _b64_bytes(parts[3]) == HASH_BYTES
    )


def _framed(key: str) -> bool:
    """Whether the base64 key ``key`` is a sequence of length-prefixed fields (SSH's wire
    format), each within the key. paramiko reads a field that runs past the end as padded with
    zeros (up to 1 MiB): an RSA exponent of a million bytes then took 40 s to load."""
    try:
        blob = base64.decodebytes(key.encode("ascii", errors="replace"))
    except (binascii.Error, ValueError):
        return True  # not base64: paramiko refuses it itself
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            return False
        offset += 4 + int.from_bytes(blob[offset : offset + 4], "big")
    return offset == len(blob)


def _parse(line: str, skipped: _Skipped, lineno: int) -> HostKeyEntry | None:
    fields = _FIELDS.split(line)
    if len(fields) < 3:
        skipped.skip(lineno, "malformed line skipped (expected: names keytype base64-key)")
        return None
    if not _framed(fields[2]):
        skipped.skip(lineno, "malformed key skipped (a field of it runs past its end); fix or "
                     "delete the line")  # fmt: skip
        return None
    # paramiko decodes a hashed name's salt at every lookup, and raises on a bad one
    # (AssertionError, binascii.Error): such a line is skipped here, as OpenSSH skips it
    if any(n.startswith("|") and not _is_hashed_name(n) for n in fields[0].split(",")):
        skipped.skip(lineno, "malformed hashed host name skipped (expected |1|salt|hash); fix "
                     "or delete the line")  # fmt: skip
        return None
    try:
        # None for a key type paramiko does not know: OpenSSH may know it, so no warning
        entry: HostKeyEntry | None = HostKeyEntry.from_line(" ".join(fields[:3]), lineno)
    except Exception as exc:  # InvalidHostKey, SSHException, ValueError: all mean a bad line
        reason = str(exc.args[1] if len(exc.args) > 1 else exc)[:QUOTE_CHARS]
        skipped.skip(lineno, f"malformed line skipped ({reason}); fix or delete it")
        return None
    return entry


#: How much of a line or an error a warning quotes.
QUOTE_CHARS = 120


def _read(path: str) -> str | None:
    """The text of ``path`` (None when there is no file); HostKeyError when it cannot be read or
    holds more than MAX_KNOWN_HOSTS_BYTES."""
    file = Path(path)
    if not file.exists():
        return None
    try:
        with file.open("rb") as fh:
            data = fh.read(MAX_KNOWN_HOSTS_BYTES + 1)
    except OSError as exc:
        raise HostKeyError(f"cannot read known_hosts {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_KNOWN_HOSTS_BYTES:
        raise HostKeyError(
            f"known_hosts {path} holds more than {MAX_KNOWN_HOSTS_BYTES} bytes: no list of hosts "
            "is that long; is it the right file?"
        )
    return data.decode("utf-8", errors="replace")


def _marker_line(known: KnownHosts, line: str, skipped: _Skipped, lineno: int) -> None:
    """A line with a marker: a revoked key is recorded, anything else skipped with a warning."""
    marker, _, rest = line.replace("\t", " ").partition(" ")
    if marker == "@revoked":
        revoked = _parse(rest.strip(), skipped, lineno)
        if revoked is not None:
            known.revoked[(revoked.key.get_name(), revoked.key.get_base64())] = lineno
    elif marker == "@cert-authority":
        skipped.skip(lineno, "@cert-authority line skipped (host certificates are not "
                     "supported here; list the host's own key)")  # fmt: skip
    else:
        skipped.skip(lineno, f"unknown marker {marker[:QUOTE_CHARS]!r}: line skipped")


def load_known_hosts(path: str) -> KnownHosts:
    """Read ``path`` (a missing file is an empty one); raise HostKeyError if it cannot be read."""
    known = KnownHosts(path)
    text = _read(path)
    if text is None:
        return known
    skipped = _Skipped(path)
    entries: list[HostKeyEntry] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LINE_CHARS:
            skipped.skip(lineno, f"line longer than {MAX_LINE_CHARS} characters skipped (no key "
                         "is that long)")  # fmt: skip
        elif line.startswith("@"):
            _marker_line(known, line, skipped, lineno)
        elif (entry := _parse(line, skipped, lineno)) is not None:
            entries.append(entry)
    skipped.finish()
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
