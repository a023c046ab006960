"""Fuzzing the known_hosts reader: any file loads (bad lines skipped with a bounded number of
KnownHostsWarnings) or is a HostKeyError, never another exception, within the deadline; what
loads can be handed to a paramiko client and looked up.

Inputs are random lines made of the pieces of real ones (names, hashed names, markers, key
types, valid, damaged and random base64 keys), lines far longer than any key, a real file
damaged byte by byte, and random bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import warnings
from pathlib import Path

import paramiko
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchharness.errors import HostKeyError
from benchharness.transport.known_hosts import (
    MAX_LINE_CHARS,
    MAX_WARNINGS,
    KnownHostsWarning,
    load_known_hosts,
)
from tests.fuzz.budget import ci_share
from tests.fuzz.mutations import mutated_bytes, record
from tests.fuzz.refusals import record_refusal

#: Inputs per test under the ci profile (tests/fuzz/budget.py).
EXAMPLES = 80

READER = "known_hosts"

#: Public keys of three types (fixed, so the inputs are the same on every run).
KEYS = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAu1oWyHVLDXBV4vNQ1cmBTgvVxvs679xg8hD8B8HqVu",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBCEmoJH85mm01ynrG1X3"
    "/4uw+cK3EP1sAQcaKtsxXbrk3ewaWFwi1e8lW9uE3/2ZPhzaCSs02W7mOQNF6BwPu40=",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDMG99FePfnvmMp1MiX+jDbLKoUZKRzVPEUJmbGfmLwnkgFyGWVDl0K"
    "JcV44kKRltlYpIf3kmEZGcdacuzB8rSLG9Nv9lpbq5XQ8/Fj5DtXqw/A48futyn0zeLRdYIB9WdHQErhcoLJqaTr41dnb"
    "WUzkJx7JkLac4BXwAyVCA1JTQ==",
]
KEY_TYPES = [k.split()[0] for k in KEYS] + ["ssh-dss", "sk-ssh-ed25519@openssh.com", "x", ""]
HOSTS = ["board", "10.0.0.7", "[board]:2222", "*", "*.lan", "!bad", "", "a,b", "h\u00e9"]


def hashed(host: str, salt: bytes = b"0123456789abcdefghij") -> str:
    """``|1|salt|hash`` as OpenSSH's HashKnownHosts writes the name."""
    digest = hmac.new(salt, host.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


SEED = "\n".join(
    [
        "# known hosts",
        f"board,10.0.0.7 {KEYS[0]}",
        f"[board]:2222 {KEYS[1]}",
        f"{hashed('board')} {KEYS[2]}",
        f"@revoked * {KEYS[2]}",
        f"@cert-authority *.lan {KEYS[0]}",
        "",
    ]
)

blobs = st.one_of(
    st.sampled_from([k.split()[1] for k in KEYS]),
    st.sampled_from([k.split()[1] for k in KEYS]).flatmap(
        lambda b: mutated_bytes(base64.b64decode(b)).map(lambda r: base64.b64encode(r).decode())
    ),
    st.binary(max_size=200).map(lambda r: base64.b64encode(r).decode()),
    st.text(alphabet="ABCDEFabcdef0123456789+/=", max_size=60),
)
names = st.one_of(
    st.lists(st.sampled_from(HOSTS), min_size=1, max_size=4).map(",".join),
    st.sampled_from(HOSTS).map(hashed),
    st.text(max_size=20).filter(lambda t: " " not in t and "\t" not in t),
    st.sampled_from(["|1|", "|1|!!|@@", "|2|a|b"]),
)


@st.composite
def line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["entry", "entry", "marker", "long", "noise"]))
    if kind == "entry":
        fields = [draw(names), draw(st.sampled_from(KEY_TYPES)), draw(blobs)]
        fields += draw(st.lists(st.text(max_size=10), max_size=2))  # a comment, more fields
        return draw(st.sampled_from([" ", "\t", "  "])).join(fields)
    if kind == "marker":
        marker = draw(st.sampled_from(["@revoked", "@cert-authority", "@", "@x"]))
        return f"{marker} {draw(names)} {draw(st.sampled_from(KEYS))}"
    if kind == "long":  # around the bound, and far past it
        size = draw(st.sampled_from([MAX_LINE_CHARS - 50, MAX_LINE_CHARS + 1, 200_000]))
        return f"h ssh-rsa {'A' * size}"
    return draw(st.text(max_size=60))


def load_or_refuse(data: bytes, folder: Path) -> None:
    path = folder / "known_hosts"
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            known = load_known_hosts(str(path))
        except HostKeyError as exc:
            record_refusal(READER, exc)
            return
    record(READER, None)
    assert all(w.category is KnownHostsWarning for w in caught), [str(w) for w in caught]
    assert len(caught) <= MAX_WARNINGS + 1
    client = paramiko.SSHClient()
    known.install(client)
    for host in ("board", "[board]:2222", "10.0.0.7"):
        known.known_types(host)
        client.get_host_keys().lookup(host)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("known-hosts-fuzz")


def test_the_seed_loads(folder: Path) -> None:
    path = folder / "seed"
    path.write_text(SEED)
    with pytest.warns(KnownHostsWarning, match="cert-authority"):
        known = load_known_hosts(str(path))
    assert len(known.entries) == 2 and len(known.revoked) == 1
    assert known.known_types("board") == ["ssh-ed25519"]  # the RSA key is revoked


@ci_share(EXAMPLES)
@given(lines=st.lists(line(), max_size=20), newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_random_lines(folder: Path, lines: list[str], newline: str) -> None:
    load_or_refuse(newline.join(lines).encode("utf-8", errors="surrogatepass"), folder)


@ci_share(EXAMPLES)
@given(data=st.one_of(mutated_bytes(SEED.encode()), st.binary(max_size=2000)))
def test_damaged_or_random_bytes(folder: Path, data: bytes) -> None:
    load_or_refuse(data, folder)
