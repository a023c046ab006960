"""known_hosts read within bounds: a file of any bytes loads (its bad lines skipped with a few
warnings) or is a HostKeyError, never another exception, in time linear in its size."""

from __future__ import annotations

import base64
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from benchharness.errors import HostKeyError
from benchharness.transport import known_hosts as kh
from benchharness.transport.known_hosts import KnownHostsWarning, load_known_hosts

#: Real public keys (any valid ones will do: nothing connects here).
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
RSA = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDMG99FePfnvmMp1MiX+jDbLKoUZKRzVPEUJmbGfmLwnkgFyGWVDl0K"
    "JcV44kKRltlYpIf3kmEZGcdacuzB8rSLG9Nv9lpbq5XQ8/Fj5DtXqw/A48futyn0zeLRdYIB9WdHQErhcoLJqaTr41dnb"
    "WUzkJx7JkLac4BXwAyVCA1JTQ=="
)


def _load(path: Path) -> tuple[kh.KnownHosts, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        known = load_known_hosts(str(path))
    return known, [str(w.message) for w in caught if w.category is KnownHostsWarning]


class _CountingList(list):  # type: ignore[type-arg]
    """A list that counts the items every scan of it hands out: the work of a lookup by scan."""

    scanned = 0

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            _CountingList.scanned += 1
            yield item


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> type[_CountingList]:
    """Every paramiko HostKeys made from now on keeps its entries in a counting list."""
    made = paramiko.HostKeys.__init__

    def counting(self: paramiko.HostKeys, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self._entries = _CountingList(self._entries)

    monkeypatch.setattr(paramiko.HostKeys, "__init__", counting)
    monkeypatch.setattr(_CountingList, "scanned", 0)
    return _CountingList


def test_thousands_of_hosts_load_in_linear_time(tmp_path: Path, scans: type[_CountingList]) -> None:
    """paramiko's HostKeys.add scans every entry: 20,000 hosts took 13 s to load (quadratic).
    Counted, not timed: the entries scanned stay a small multiple of the hosts."""
    lines = 4000
    path = tmp_path / "known_hosts"
    path.write_text("".join(f"h{i} {KEY}\n" for i in range(lines)))
    known, _ = _load(path)
    assert len(known.entries) == lines and known.known_types(f"h{lines - 1}") == ["ssh-ed25519"]
    assert scans.scanned <= 2 * lines, scans.scanned  # by scan: 8 M


def test_the_counting_list_sees_paramikos_scan(
    tmp_path: Path, scans: type[_CountingList], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: with paramiko's own add, the same load scans quadratically."""
    monkeypatch.setattr(kh._IndexedHostKeys, "add", paramiko.HostKeys.add)
    path = tmp_path / "known_hosts"
    path.write_text("".join(f"h{i} {KEY}\n" for i in range(200)))
    _load(path)
    assert scans.scanned >= 200 * 199 // 2


def test_install_hands_the_client_every_host_in_linear_time(
    tmp_path: Path, scans: type[_CountingList]
) -> None:
    path = tmp_path / "known_hosts"
    path.write_text("".join(f"h{i},alias{i} {KEY}\n" for i in range(6000)) + f"h0 {KEY}\n")
    known, _ = _load(path)
    client = paramiko.SSHClient()
    before = scans.scanned
    known.install(client)
    assert scans.scanned - before <= 4 * 12000, scans.scanned - before  # by scan: 72 M
    keys = client.get_host_keys()
    assert keys.lookup("alias5999") is not None and keys.lookup("h0") is not None
    assert len(keys.keys()) == 12000  # one entry per name, the repeated h0 once


def test_a_file_larger_than_any_known_hosts_is_a_host_key_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"h {KEY}\n" * 10)
    monkeypatch.setattr(kh, "MAX_KNOWN_HOSTS_BYTES", 100)
    with pytest.raises(HostKeyError, match=rf"{path}.*more than 100 bytes"):
        load_known_hosts(str(path))


def test_a_line_longer_than_any_key_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"h1 ssh-rsa {'A' * 1_000_000}\nh2 {KEY}\n")
    known, messages = _load(path)
    assert [e.hostnames for e in known.entries] == [["h2"]]
    (message,) = messages
    assert message.startswith(f"{path}:1: ") and "longer than" in message.removeprefix(str(path))


def test_binary_garbage_loads_nothing_with_a_bounded_number_of_warnings(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_bytes(bytes(range(256)) * 2000 + b"\n".join(b"x y z" for _ in range(5000)))
    known, messages = _load(path)
    assert known.entries == []
    assert len(messages) <= kh.MAX_WARNINGS + 1
    # the last one counts the lines not warned about
    assert "more lines skipped" in messages[-1].removeprefix(str(path))


def test_a_marker_may_be_followed_by_a_tab(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"h {KEY}\n@revoked\t* {KEY}\n")
    known, messages = _load(path)
    assert known.entries == [] and len(known.revoked) == 1 and messages == []


@pytest.mark.parametrize(
    "name",
    [
        "|1|",  # no salt: paramiko's lookup raised AssertionError (found by the fuzz tests)
        "|1|DEyMzQ1Njc4OWFiY2RlZmdoaWo=|RsMMrwZ/XWwUTiDlxHfNOgdptuk=",  # bad padding: binascii
        "|1|AAAA|RsMMrwZ/XWwUTiDlxHfNOgdptuk=",  # a salt of 3 bytes, not 20
        "|2|a|b",  # no hash OpenSSH writes
    ],
)
def test_a_malformed_hashed_name_is_skipped_so_lookups_work(tmp_path: Path, name: str) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"{name} {KEY}\nboard {KEY}\n")
    known, messages = _load(path)
    assert [e.hostnames for e in known.entries] == [["board"]]
    (message,) = messages
    assert message.startswith(f"{path}:1: ") and "hashed" in message.removeprefix(str(path))
    assert known.known_types("board") == ["ssh-ed25519"]  # every entry is matched: none raises
    client = paramiko.SSHClient()
    known.install(client)
    assert client.get_host_keys().lookup("other") is None


def test_a_key_whose_field_runs_past_its_end_is_skipped_at_once(tmp_path: Path) -> None:
    """Found by the fuzz tests: bytes cut from an RSA key made its exponent claim 787,456 bytes;
    paramiko pads a short field with zeros (up to 1 MiB), and loading the key took 40 s."""
    blob = base64.b64decode(RSA.split()[1])
    cut = blob[:11] + (960 << 10).to_bytes(4, "big") + blob[15:]  # the exponent's length
    path = tmp_path / "known_hosts"
    path.write_text(f"@revoked * ssh-rsa {base64.b64encode(cut).decode()}\nboard {KEY}\n")
    known, messages = _load(path)
    assert [e.hostnames for e in known.entries] == [["board"]] and not known.revoked
    (message,) = messages
    assert "runs past its end" in message.removeprefix(str(path))
