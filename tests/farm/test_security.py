"""The farm's address check and security settings (no scheduler): TLS unless loopback or
--insecure, refused before any packet; the config file; and ``bench farm certs``."""

from __future__ import annotations

import socket
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509

from benchharness.cli.farm import farm_group
from benchharness.errors import FarmError, UsageError
from benchharness.farm.security import (
    CONFIG_ENV,
    FarmSecurity,
    endpoint,
    is_loopback,
    load_config,
    settings,
    split_address,
)
from tests.support.farm import Certs

OFF_LOOPBACK = ["tcp://10.1.2.3:8786", "10.1.2.3", "lab1.example", "tcp://lab1:9000",
                "tcp://[2001:db8::1]:8786", "tcp://127.0.0.1.example:8786"]  # fmt: skip


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any attempt to resolve a name or open a connection is recorded and fails."""
    tried: list[str] = []

    def refuse(*args: Any, **kw: Any) -> Any:
        tried.append(repr(args))
        raise AssertionError(f"network used: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tried


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.mark.parametrize("address", OFF_LOOPBACK)
def test_plain_tcp_off_loopback_is_refused_before_any_packet(
    address: str, no_network: list[str]
) -> None:
    with pytest.raises(FarmError) as refused:
        endpoint(address, FarmSecurity())
    text = str(refused.value)
    assert "refusing plain tcp://" in text and "bench farm certs" in text
    assert "--tls-ca" in text and "--insecure" in text and "tls://" in text
    assert not no_network


def test_the_farm_client_refuses_too_before_any_packet(no_network: list[str]) -> None:
    pytest.importorskip("distributed")
    from benchharness.farm.client import Farm

    with pytest.raises(FarmError, match="refusing plain tcp://"):
        Farm.connect("tcp://10.1.2.3:8786", FarmSecurity())
    assert not no_network


def test_insecure_allows_plain_tcp_anywhere_and_loopback_never_needs_it() -> None:
    assert endpoint("10.1.2.3", FarmSecurity(insecure=True)).address == "tcp://10.1.2.3:8786"
    for host in ("127.0.0.1", "localhost", "[::1]:9000", "127.8.9.10"):
        assert endpoint(host, FarmSecurity()).address.startswith("tcp://")
    assert endpoint("[::1]:9000", FarmSecurity()).address == "tcp://[::1]:9000"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("LOCALHOST.", True), ("10.0.0.1", False), ("0.0.0.0", False),
     ("lab1", False), ("localhost.example", False), ("::", False)],
)  # fmt: skip
def test_loopback_is_judged_from_the_text_alone(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_addresses_take_a_scheme_and_the_default_port() -> None:
    assert split_address("lab1") == (None, "lab1", 8786)
    assert split_address("tls://[fe80::1]:9000") == ("tls", "fe80::1", 9000)
    assert split_address("fe80::1") == (None, "fe80::1", 8786)
    for bad in ("", "tcp://lab1:x", "tcp://lab1:70000", "tcp://:8786"):
        with pytest.raises(UsageError):
            split_address(bad)
    with pytest.raises(UsageError, match="tls:// or tcp://"):
        endpoint("ws://lab1:8786", FarmSecurity())


def test_tls_needs_all_three_files_and_certificates_make_tls_the_default(
    certs: Certs, no_network: list[str]
) -> None:
    with pytest.raises(UsageError, match="--tls-ca and --tls-cert and --tls-key are not set"):
        endpoint("tls://10.1.2.3", FarmSecurity())
    cert, key = certs.pair("client")
    security = FarmSecurity(certs.ca, cert, key)
    farm = endpoint("10.1.2.3", security)  # no scheme: TLS, since certificates are set
    assert farm.address == "tls://10.1.2.3:8786" and farm.secure
    with pytest.raises(UsageError, match="plain tcp://, but certificates are set"):
        endpoint("tcp://10.1.2.3", security)
    with pytest.raises(UsageError, match="cannot use the farm's certificates"):
        endpoint("tls://10.1.2.3", FarmSecurity(certs.ca, cert, certs.pair("worker")[1]))
    assert not no_network


def test_the_config_file_gives_what_the_command_line_leaves_unset(
    certs: Certs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_config: None
) -> None:
    assert load_config() == FarmSecurity(source=str(tmp_path / "config/benchharness/farm.toml"))
    monkeypatch.setenv(CONFIG_ENV, str(certs.config("client")))
    from_file = settings()
    assert from_file.ca == certs.ca and from_file.cert == certs.pair("client")[0]
    assert from_file.source == str(certs.config("client"))
    # certificate files come all from the command line or all from the file, never mixed
    worker_cert, worker_key = certs.pair("worker")
    given = settings(str(certs.ca), str(worker_cert), str(worker_key))
    assert (given.cert, given.key) == (worker_cert, worker_key)
    assert settings(insecure=True).insecure and settings(insecure=True).cert == from_file.cert
    bad = tmp_path / "bad.toml"
    for text, match in (
        ('tls_cart = "x"', "unknown key 'tls_cart'"),
        ("insecure = 1", "insecure must be true or false"),
        ("tls_ca = 3", "tls_ca must be a path"),
        ("tls_ca = ", "cannot read"),
    ):
        bad.write_text(text)
        with pytest.raises(UsageError, match=match):
            load_config(bad)  # fmt: skip
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(UsageError, match="not a file"):
        settings()


# --- bench farm certs ---------------------------------------------------------------------------


def _verify(ca: Path, cert: Path) -> x509.Certificate:
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    authority = x509.load_pem_x509_certificate(ca.read_bytes())
    loaded.verify_directly_issued_by(authority)
    return loaded


def test_bench_farm_certs_makes_a_ca_and_a_certificate_per_member(tmp_path: Path) -> None:
    out = tmp_path / "farm"
    result = CliRunner().invoke(farm_group, ["certs", str(out), "--worker", "lab2",
                                             "--worker", "lab3"])  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["ca.pem", "ca.key", "scheduler.pem", "scheduler.key", "lab2.pem",
                            "lab2.key", "lab3.pem", "lab3.key", "client.pem", "client.key"])  # fmt: skip
    for key in out.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for name in ("scheduler", "lab2", "lab3", "client"):
        cert = _verify(out / "ca.pem", out / f"{name}.pem")
        context = ssl.create_default_context(cafile=str(out / "ca.pem"))
        context.load_cert_chain(str(out / f"{name}.pem"), str(out / f"{name}.key"))
        ca_flag = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert not ca_flag
    assert "dask scheduler" in result.output and "--tls-ca-file" in result.output
    assert "bench worker --scheduler tls://" in result.output and "tls_cert" in result.output

    # a CA already there: only the new member, signed by it; nothing is overwritten
    again = CliRunner().invoke(farm_group, ["certs", str(out), "--client", "bob"])
    assert again.exit_code == 0, again.output
    _verify(out / "ca.pem", out / "bob.pem")
    clash = CliRunner().invoke(farm_group, ["certs", str(out), "--worker", "lab2"])
    assert clash.exit_code != 0 and "lab2.pem exists" in str(clash.exception)
    nothing = CliRunner().invoke(farm_group, ["certs", str(out)])
    assert nothing.exit_code != 0 and "name the new --worker" in str(nothing.exception)
    badname = CliRunner().invoke(farm_group, ["certs", str(tmp_path / "x"), "--worker", "a/b"])
    assert badname.exit_code != 0 and not (tmp_path / "x").exists()
