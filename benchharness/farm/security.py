"""Who may talk to the farm: mutual TLS with a CA of the farm's own, and the address check.

Dask's protocol trusts every peer: a worker runs whatever function a client sends it, and each
end unpickles what the other sends. A farm is therefore exactly as safe as the set of machines
that can open a connection to its scheduler. On loopback that set is this host; anywhere else it
is narrowed by mutual TLS: the scheduler, every ``bench worker`` and every coordinator present a
certificate signed by the farm's CA (``bench farm certs``), and a peer without one is refused
during the handshake, before a single message is read. Dask checks the CA, not host names or
roles, so every certificate of that CA is a key to the whole farm.

A plain ``tcp://`` scheduler off loopback is refused before any connection is tried (not even a
name is resolved) unless ``--insecure`` says the network itself is trusted.

The settings come from the command line (``--tls-ca``, ``--tls-cert``, ``--tls-key``,
``--insecure``), else from the farm config file (``$BENCH_FARM_CONFIG``, else
``~/.config/benchharness/farm.toml``)::

    tls_ca = "ca.pem"          # paths relative to this file
    tls_cert = "client.pem"
    tls_key = "client.key"
    # insecure = true          # plain tcp:// off loopback: only on a network you trust
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchharness.errors import FarmError, UsageError

if TYPE_CHECKING:
    from distributed.security import Security

#: The environment variable naming the farm config file (tests, several farms on one machine).
CONFIG_ENV = "BENCH_FARM_CONFIG"
#: The config file's place under the user's config directory ($XDG_CONFIG_HOME or ~/.config).
CONFIG_NAME = Path("benchharness") / "farm.toml"
#: The keys a farm config file may hold.
CONFIG_KEYS = ("tls_ca", "tls_cert", "tls_key", "insecure")
#: The Dask scheduler's default port (``dask scheduler``'s own default).
DEFAULT_SCHEDULER_PORT = 8786
#: Schemes a scheduler address may have: Dask's TCP, plain or inside TLS.
PLAIN, SECURE = "tcp", "tls"
#: Seconds the handshake check waits for the scheduler's first bytes after TLS is set up.
HANDSHAKE_TIMEOUT_S = 10.0
#: Days a certificate of ``bench farm certs`` is valid: a lab's farm for a couple of years; a
#: lost laptop's client certificate stops working by then even if nobody rebuilds the CA.
DEFAULT_DAYS = 730
#: How to get certificates, for every message that asks for them.
HOW_TO_CERTS = (
    "make a CA and certificates with `bench farm certs DIR`, start the scheduler with "
    "`dask scheduler --tls-ca-file DIR/ca.pem --tls-cert DIR/scheduler.pem --tls-key "
    "DIR/scheduler.key`, and give this command --tls-ca DIR/ca.pem --tls-cert DIR/client.pem "
    "--tls-key DIR/client.key (a worker: worker.pem and worker.key), or set them in "
    "~/.config/benchharness/farm.toml"
)


@dataclass(frozen=True)
class FarmSecurity:
    """How this process proves itself to the farm and checks its peers."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    #: plain tcp:// is allowed off loopback: the network itself is trusted
    insecure: bool = False
    #: where the settings came from, for messages ("the command line", a config file)
    source: str = "the command line"

    @property
    def has_tls(self) -> bool:
        return self.ca is not None or self.cert is not None or self.key is not None

    def merged_over(self, config: FarmSecurity) -> FarmSecurity:
        """These settings over ``config``'s: the certificate files all from here when any is
        given here (never a certificate of one with the key of another), else all from it."""
        insecure = self.insecure or config.insecure
        if self.has_tls:
            return replace(self, insecure=insecure)
        return replace(config, insecure=insecure)


@dataclass(frozen=True)
class FarmEndpoint:
    """A scheduler address checked against the security settings, ready for Dask."""

    address: str
    security: FarmSecurity

    @property
    def secure(self) -> bool:
        return self.address.startswith(f"{SECURE}://")

    def dask_security(self) -> Security | None:
        """Dask's Security object for a TLS address (None for plain tcp://)."""
        return dask_security(self.security) if self.secure else None


# --- the config file ---------------------------------------------------------------------------


def config_path() -> Path:
    """The farm config file: ``$BENCH_FARM_CONFIG``, else the user's config directory's."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / CONFIG_NAME


def load_config(path: Path | None = None) -> FarmSecurity:
    """The settings of the farm config file (none when it does not exist)."""
    path = path or config_path()
    if not path.is_file():
        if os.environ.get(CONFIG_ENV) and path == config_path():
            raise UsageError(f"${CONFIG_ENV} names {path}, which is not a file")
        return FarmSecurity(source=str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read the farm config {path}: {exc}") from None
    return parse_config(data, path)


def parse_config(data: Mapping[str, Any], path: Path) -> FarmSecurity:
    """A farm config table as settings; UsageError names the first bad key."""
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise UsageError(
            f"{path}: unknown key {unknown[0]!r}; expected one of {', '.join(CONFIG_KEYS)}"
        )
    files: dict[str, Path | None] = {}
    for key in ("tls_ca", "tls_cert", "tls_key"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise UsageError(f"{path}: {key} must be a path")
        files[key] = _relative_to(value, path) if value else None
    insecure = data.get("insecure", False)
    if not isinstance(insecure, bool):
        raise UsageError(f"{path}: insecure must be true or false")
    return FarmSecurity(files["tls_ca"], files["tls_cert"], files["tls_key"], insecure, str(path))


def _relative_to(value: str, config: Path) -> Path:
    expanded = Path(os.path.expandvars(os.path.expanduser(value)))
    return expanded if expanded.is_absolute() else config.parent / expanded


def settings(
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    insecure: bool = False,
    config: FarmSecurity | None = None,
) -> FarmSecurity:
    """The command line's settings over the config file's (read when ``config`` is None)."""
    given = FarmSecurity(
        ca=Path(ca).expanduser() if ca else None,
        cert=Path(cert).expanduser() if cert else None,
        key=Path(key).expanduser() if key else None,
        insecure=insecure,
    )
    return given.merged_over(config if config is not None else load_config())


# --- the address -------------------------------------------------------------------------------


def split_address(value: str) -> tuple[str | None, str, int]:
    """``[scheme://]HOST[:PORT]`` as (scheme or None, host, port); IPv6 in brackets."""
    address = value.strip()
    if not address:
        raise UsageError("--scheduler is empty: give tls://HOST:8786")
    scheme: str | None = None
    if "://" in address:
        scheme, address = address.split("://", 1)
        scheme = scheme.lower()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise UsageError(f"--scheduler {value}: expected [IPv6]:PORT")
    elif address.count(":") > 1:  # a bare IPv6 literal has no port
        host, port_text = address, ""
    else:
        host, _, port_text = address.partition(":")
    if not host:
        raise UsageError(f"--scheduler {value}: no host")
    try:
        port = int(port_text) if port_text else DEFAULT_SCHEDULER_PORT
    except ValueError:
        raise UsageError(f"--scheduler {value}: the port must be a number") from None
    if not 0 < port < 65536:
        raise UsageError(f"--scheduler {value}: the port must be 1-65535")
    return scheme, host, port


def join_address(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine's loopback, judged from the text alone: ``localhost``
    or a 127/8 or ::1 literal. Any other name counts as off loopback (resolving it would send
    a query before the address is judged, and a name can resolve anywhere)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def endpoint(scheduler: str, security: FarmSecurity) -> FarmEndpoint:
    """The scheduler's Dask address under these settings, or why it may not be used.

    No scheme: ``tls://`` when certificates are set, else ``tcp://``. ``tls://`` needs the CA,
    a certificate and its key, all readable. ``tcp://`` off loopback needs ``insecure``.
    """
    scheme, host, port = split_address(scheduler)
    scheme = scheme or (SECURE if security.has_tls else PLAIN)
    address = join_address(scheme, host, port)
    if scheme == SECURE:
        check_files(security, address)
    elif scheme == PLAIN:
        if security.has_tls:
            raise UsageError(
                f"the scheduler {address} is plain tcp://, but certificates are set (from "
                f"{security.source}): write {join_address(SECURE, host, port)} to use "
                "them, or drop them for a scheduler on loopback"
            )
        if not is_loopback(host) and not security.insecure:
            raise FarmError(
                f"refusing plain tcp:// to {address}: off this host, anyone who reaches the "
                "scheduler's port runs code on every worker and on this machine. Use TLS: "
                f"{HOW_TO_CERTS}; then give {join_address(SECURE, host, port)}. "
                "Only on a network you trust entirely, --insecure (or insecure = true in the "
                "farm config) allows plain tcp://"
            )
    else:
        raise UsageError(f"--scheduler {scheduler}: the scheme must be tls:// or tcp://")
    return FarmEndpoint(address, security)


def check_files(security: FarmSecurity, address: str) -> None:
    """The CA, certificate and key a TLS address needs: set, and readable by ssl."""
    missing = [
        option
        for option, value in (("--tls-ca", security.ca), ("--tls-cert", security.cert),
                              ("--tls-key", security.key))
        if value is None
    ]  # fmt: skip
    if missing:
        raise UsageError(
            f"{address} is TLS, and {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
            f" not set (looked in "
            f"{security.source}): {HOW_TO_CERTS}"
        )
    assert security.ca is not None and security.cert is not None and security.key is not None
    try:
        context = ssl.create_default_context(cafile=str(security.ca))
        context.load_cert_chain(str(security.cert), str(security.key))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"cannot use the farm's certificates (CA {security.ca}, certificate "
            f"{security.cert}, key {security.key}): {exc}"
        ) from None


def dask_security(security: FarmSecurity) -> Security:
    """Dask's settings for one process of the farm: its certificate in every role it may take
    (a worker listens and connects; a coordinator connects), encryption required."""
    from distributed.security import Security

    cert = str(security.cert) if security.cert else None
    key = str(security.key) if security.key else None
    return Security(
        require_encryption=True,
        tls_ca_file=str(security.ca) if security.ca else None,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
    )


def check_handshake(farm: FarmEndpoint, role: str = "worker") -> None:
    """One TLS handshake with the scheduler, so a certificate either side refuses is said now
    (Dask would retry until its timeout and then report only that). A scheduler that cannot be
    reached yet is left to Dask's own wait."""
    security = farm.dask_security()
    if security is None:
        return
    context = security.get_connection_args(role)["ssl_context"]
    _, host, port = split_address(farm.address)
    try:
        sock = socket.create_connection((host, port), HANDSHAKE_TIMEOUT_S)
    except OSError:
        return
    with contextlib.closing(sock):
        try:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                # under TLS 1.3 the scheduler judges our certificate after the handshake: its
                # refusal, or its first message (Dask speaks first), is the next thing to read
                tls.recv(1)
        except ssl.SSLError as exc:
            raise FarmError(
                f"the scheduler at {farm.address} and this machine do not accept each other's "
                f"certificates ({exc.reason or exc}): both must be of the farm's CA; this machine "
                f"uses CA {farm.security.ca} and certificate {farm.security.cert}"
            ) from None
        except OSError:
            return
