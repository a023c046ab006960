"""known_hosts as OpenSSH reads it, against a real sshd: malformed lines are skipped with a
warning, hashed names match, ``@revoked`` keys are refused, and a host known only by another key
type is not trusted on the strength of a key nobody has checked."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from benchharness.errors import HostKeyError
from benchharness.transport.ssh import SSHTransport, trust_host
from tests.support.sshd import SSHServer

pytest_plugins = ["tests.support.fixtures"]

#: Base64 whose length is one more than a multiple of 4: paramiko raises InvalidHostKey on it.
BAD_BASE64 = "AAAAC3NzaC1lZDI1NTE5AAAAI"


def _key_of(pub: Path) -> str:
    return " ".join(pub.read_text().split()[:2])


def test_malformed_line_is_skipped_with_a_warning(sshd_server: SSHServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(
        "# a comment\n"
        f"[{sshd_server.host}]:{sshd_server.port} ssh-ed25519 {BAD_BASE64}\n"
        f"{sshd_server.host_key_line}\n"
    )
    profile = sshd_server.profile(known_hosts=known)
    with pytest.warns(UserWarning, match=rf"{known}:2: .*skipped"), SSHTransport(profile) as t:
        assert t.run(["true"], timeout=10).ok
    with pytest.warns(UserWarning, match=rf"{known}:2"):
        assert trust_host(profile).startswith("ssh-ed25519 ")
    assert len(known.read_text().splitlines()) == 3  # the good key was found: nothing added


def test_hashed_entries_are_matched(sshd_server: SSHServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"{sshd_server.host_key_line}\n")
    # the real OpenSSH tool hashes the names, as HashKnownHosts=yes does
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True, capture_output=True)
    assert known.read_text().startswith("|1|")
    profile = sshd_server.profile(known_hosts=known)
    with SSHTransport(profile) as t:
        assert t.run(["true"], timeout=10).ok
    trust_host(profile)
    assert len(known.read_text().splitlines()) == 1


@pytest.mark.parametrize("also_listed", [True, False])
def test_revoked_key_is_refused(sshd_server: SSHServer, tmp_path: Path, also_listed: bool) -> None:
    known = tmp_path / "known_hosts"
    listed = f"{sshd_server.host_key_line}\n" if also_listed else ""
    known.write_text(f"{listed}@revoked * {_key_of(sshd_server.host_key.with_suffix('.pub'))}\n")
    before = known.read_text()
    profile = sshd_server.profile(known_hosts=known)
    for trust_new in (False, True):
        with (
            pytest.raises(HostKeyError, match=r"REVOKED.*known_hosts:\d") as err,
            SSHTransport(profile, trust_new_host=trust_new) as t,
        ):
            t.run(["true"], timeout=10)
        assert "ssh-ed25519 SHA256:" in str(err.value)  # which key, so it can be checked
    with pytest.raises(HostKeyError, match="REVOKED"):
        trust_host(profile)
    assert known.read_text() == before


def test_host_known_only_by_another_key_type_is_not_trusted(
    sshd_factory: Callable[..., SSHServer], tmp_path: Path
) -> None:
    # the host was trusted with an ed25519 key; now it offers only an rsa one. OpenSSH with
    # StrictHostKeyChecking=yes refuses ("No RSA host key is known for ..."); we refuse too, even
    # when asked to trust new hosts: this is no new host, and the old key cannot vouch for the new.
    server = sshd_factory(host_key_type="rsa")
    known = tmp_path / "known_hosts"
    other = _key_of(server.client_key.with_suffix(".pub"))  # some ed25519 key
    known.write_text(f"[{server.host}]:{server.port} {other}\n")
    profile = server.profile(known_hosts=known)
    for trust_new in (False, True):
        with (
            pytest.raises(HostKeyError, match=r"only by ssh-ed25519.*offered ssh-rsa") as err,
            SSHTransport(profile, trust_new_host=trust_new) as t,
        ):
            t.run(["true"], timeout=10)
        assert "ssh-keygen -R" in str(err.value)
    with pytest.raises(HostKeyError, match="DIFFERENT host key"):
        trust_host(profile)
    assert known.read_text() == f"[{server.host}]:{server.port} {other}\n"
