"""Fuzzing the device-profile loader: every file loads as a profile whose every field is in
range, or is refused as a DeviceProfileError naming the file, never another exception, within
the deadline.

Inputs are the shipped ``devices/*.toml`` with a value made hostile (``nan``, ``inf``, huge and
negative numbers, thousands of digits, deep nesting, control characters, another type), lines
dropped, repeated or added, the file cut or damaged byte by byte; and random profiles of the
known keys with any values.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchharness.errors import DeviceProfileError
from benchharness.profiles import device_profile as schema
from benchharness.profiles.device_profile import BUILTIN_DIR, DeviceProfile, load_profile
from tests.fuzz.budget import ci_share
from tests.fuzz.mutations import mutated_bytes, record
from tests.fuzz.refusals import record_refusal

#: Inputs per test under the ci profile (tests/fuzz/budget.py).
EXAMPLES = 80

READER = "device profile"

#: TOML values a field must be judged on: out of range, of the wrong type, or hostile text.
HOSTILE_VALUES = [
    "nan", "inf", "-inf", "1e999", "-1", "0", "1e9", "9" * 30, "9" * 5000, "0x7fffffffffffffff",
    "true", '""', '"x"', '"' + "x" * 5000 + '"', '"\\u0000"', '"~a\\u0000b"', '"\\u001b[31m"',
    '"$HOME/${X}"', '"~/k"', '"/abs"', '"f0"', '"zz"', '"ssh"', '"adb"', '"local"',
    "[" * 40 + "]" * 40, "[1, 2]", '["a", 1]', "{a = 1}", "1979-05-27T07:32:00Z", "12:00:00",
]  # fmt: skip
#: The keys a profile may hold, top level and in its tables.
KEYS = [
    "name", "description", "transport", "host", "port", "user", "key_file", "known_hosts",
    "serial", "runner", "threads", "affinity", "workdir", "fixed_performance", "providers",
    "class", "notes", "runtimes.python", "runtimes.benchmark_model", "runtimes.java",
    "cooldown.min_s", "cooldown.max_s", "constraints.max_model_bytes",
    "constraints.supported_ops", "constraints.max_ram", "cooldown", "constraints",
]  # fmt: skip
#: What a lock key may be made of (a file name on any system).
LOCK_KEY_RE = re.compile(r"[A-Za-z0-9.-]{1,80}")

values = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=30).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)


@functools.cache
def seeds() -> tuple[str, ...]:
    return tuple(p.read_text(encoding="utf-8") for p in sorted(BUILTIN_DIR.glob("*.toml")))


@st.composite
def key_value(draw: st.DrawFn) -> str:
    """``key = value`` for a known key (a dotted one as a table line), any value."""
    key = draw(st.sampled_from(KEYS))
    table, _, field = key.rpartition(".")
    line = f"{field} = {draw(values)}"
    return f"[{table}]\n{line}" if table else line


@st.composite
def mutated_profile(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(seeds())).splitlines()
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["value", "value", "drop", "repeat", "add", "cut"]))
        if how == "value" and " = " in lines[k]:
            lines[k] = lines[k].partition(" = ")[0] + " = " + draw(values)
        elif how == "drop":
            del lines[k]
        elif how == "repeat":
            lines.insert(k, lines[k])
        elif how == "add":
            lines.insert(k, draw(key_value()))
        elif how == "cut":
            del lines[k:]
        if not lines:
            lines.append("")
    return "\n".join(lines) + "\n"


@st.composite
def damaged_profile(draw: st.DrawFn) -> bytes:
    return draw(mutated_bytes(draw(st.sampled_from(seeds())).encode("utf-8")))


def check_in_range(p: DeviceProfile) -> None:
    """What a loaded profile promises the rest of the harness."""
    assert p.threads is None or 1 <= p.threads <= schema.MAX_THREADS
    for s in (p.cooldown_min_s, p.cooldown_max_s):
        assert math.isfinite(s) and 0 <= s <= schema.MAX_COOLDOWN_S
    assert 0 < p.port < 65536
    for limit in (p.max_model_bytes, p.max_activation_bytes, p.max_layer_bytes,
                  p.max_total_bytes):  # fmt: skip
        assert limit is None or 0 < limit <= schema.MAX_LIMIT_BYTES
    for text in (p.host, p.user, p.key_file, p.known_hosts, p.serial, p.workdir, p.affinity,
                 *p.runtimes.values()):  # fmt: skip
        assert text is None or "\0" not in text, text
    assert LOCK_KEY_RE.fullmatch(p.lock_key), p.lock_key


def load_or_refuse(data: bytes, folder: Path) -> None:
    path = folder / "fuzzed.toml"
    path.write_bytes(data)
    try:
        profile = load_profile(str(path))
    except DeviceProfileError as exc:
        assert str(exc).startswith(str(path)), f"the message names no file: {exc}"
        record_refusal(READER, exc, str(path))
        return
    record(READER, None)
    check_in_range(profile)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("profile-fuzz")


def test_the_shipped_profiles_load(folder: Path) -> None:
    for text in seeds():
        load_or_refuse(text.encode("utf-8"), folder)


@ci_share(EXAMPLES)
@given(data=st.data())
def test_mutated_profiles(folder: Path, data: st.DataObject) -> None:
    mutated = mutated_profile().map(lambda t: t.encode("utf-8", "surrogatepass"))
    load_or_refuse(data.draw(st.one_of(mutated, damaged_profile())), folder)


@ci_share(EXAMPLES)
@given(lines=st.lists(key_value(), max_size=12), transport=st.sampled_from(["local", "ssh"]))
def test_random_profiles(folder: Path, lines: list[str], transport: str) -> None:
    text = f'transport = "{transport}"\nhost = "h"\n' + "\n".join(lines) + "\n"
    load_or_refuse(text.encode("utf-8", errors="surrogatepass"), folder)
