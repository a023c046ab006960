"""``bench farm certs``: a CA of the farm's own and the certificates its members present.

One CA per farm, never a public one: Dask lets in any peer whose certificate the CA signed, so
the CA *is* the farm's membership list. Its key stays in the directory it was made in (keep that
directory off the workers; it signs new members); each machine gets the CA certificate, one
certificate and that certificate's key.

Keys are ECDSA P-256 (made in milliseconds, accepted by every TLS 1.2+ stack); each leaf may
authenticate either end of a connection, since a Dask worker both listens and connects.
Dask does not check host names, so no certificate names one.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from benchharness.errors import UsageError
from benchharness.farm.security import DEFAULT_DAYS

#: The CA outlives the certificates it signs, so renewing a member never means a new CA.
CA_DAYS_FACTOR = 5
#: A member's name becomes a file name and a certificate's common name.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Owner-only: a key file anyone else can read is a farm anyone can join.
KEY_MODE = 0o600
CA_CERT, CA_KEY = "ca.pem", "ca.key"
#: Every member may be either end of a TLS connection: a worker listens and connects.
BOTH_ENDS = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
#: x509's key usages, in KeyUsage's order; a certificate is granted the ones it names.
KEY_USAGES = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)  # fmt: skip


@dataclass(frozen=True)
class Member:
    """A certificate to make: its file stem and what it is for (shown in the summary)."""

    name: str
    role: str


def members(workers: Sequence[str], clients: Sequence[str]) -> list[Member]:
    """The scheduler, then each worker and client named (``worker``, ``client`` if none)."""
    out = [Member("scheduler", "scheduler")]
    out += [Member(n, "worker") for n in (workers or ["worker"])]
    out += [Member(n, "client") for n in (clients or ["client"])]
    names = [m.name for m in out]
    for name in names:
        if not NAME_RE.match(name) or name == "ca":
            raise UsageError(f"{name!r} cannot name a certificate: letters, digits, '.', '_', '-'")
    if len(set(names)) != len(names):
        raise UsageError(f"a certificate is named twice: {', '.join(names)}")
    return out


def make_certificates(
    directory: Path, to_make: Sequence[Member], days: int = DEFAULT_DAYS
) -> list[Path]:
    """The CA (made unless ``directory`` has one) and a certificate and key per member; the
    files written. An existing member file is never overwritten."""
    if days < 1:
        raise UsageError("--days must be at least 1")
    clashes = [p for m in to_make for p in _pair(directory, m.name) if p.exists()]
    if clashes:
        raise UsageError(
            f"{clashes[0]} exists; remove it first, or name the new certificate differently"
        )
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    ca_cert, ca_key = directory / CA_CERT, directory / CA_KEY
    if ca_cert.exists() != ca_key.exists():
        missing = ca_key if ca_cert.exists() else ca_cert
        raise UsageError(f"{missing} is missing: the CA needs both {CA_CERT} and {CA_KEY}")
    if not ca_cert.exists():
        _write_ca(ca_cert, ca_key, days * CA_DAYS_FACTOR)
        written += [ca_cert, ca_key]
    authority = _load_ca(ca_cert, ca_key)
    for member in to_make:
        cert_path, key_path = _pair(directory, member.name)
        _write_leaf(authority, member, cert_path, key_path, days)
        written += [cert_path, key_path]
    return written


def _pair(directory: Path, name: str) -> tuple[Path, Path]:
    return directory / f"{name}.pem", directory / f"{name}.key"


@dataclass(frozen=True)
class _Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _key_usage(*granted: str) -> x509.KeyUsage:
    return x509.KeyUsage(**{usage: usage in granted for usage in KEY_USAGES})


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_ca(cert_path: Path, key_path: Path, days: int) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "benchharness farm CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks a little apart
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(cert_path, cert)


def _load_ca(cert_path: Path, key_path: Path) -> _Authority:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"cannot read the CA in {cert_path.parent}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(f"{key_path} is not an EC key as `bench farm certs` makes")
    return _Authority(cert, key)


def _write_leaf(
    authority: _Authority, member: Member, cert_path: Path, key_path: Path, days: int
) -> None:
    ca_cert, ca_key = authority.cert, authority.key
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, member.name),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"benchharness farm {member.role}"),
    ])  # fmt: skip
    now = _now()
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature", "key_agreement"), critical=True)
        .add_extension(x509.ExtendedKeyUsage(BOTH_ENDS), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(cert_path, cert)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # a worker starts unattended: nobody types a passphrase
    )
    # created owner-only: the key is never readable by others, not even for a moment
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
