"""Hostile inputs for the readers: mutations of real, valid files, and random structures.

Byte mutations (flips, cuts, insertions, overwritten 32-bit words, random bytes) suit binary
files and damage text files the way a disk or a copy does. JSON mutations replace, drop or add
one value anywhere in a document, with values a reader must survive: huge and negative numbers,
``NaN``, ``1e999``, integers of hundreds of digits, long text, lone surrogates, deep nesting,
the wrong type. Every strategy is driven by hypothesis's draws, so a failure shrinks and
replays.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

#: What each reader was given and did with it, for ``benchmarks/fuzz_long.py`` to print:
#: (reader, outcome) -> count, outcome ``loaded`` or ``refused: <what the error said>``.
OUTCOMES: Counter[tuple[str, str]] = Counter()


def record(reader: str, error: BaseException | None, file: object = "") -> None:
    """Count one input of ``reader``: loaded (``error`` None) or refused, the refusal by its
    message with the file named ``FILE``, indices as ``[N]`` and the value found cut off."""
    if error is None:
        OUTCOMES[(reader, "loaded")] += 1
        return
    text = str(error).replace(str(file), "FILE") if file else str(error)
    text = re.sub(r"\d+", "N", text)
    kind = re.split(r": expected|, found|; |: ", text, maxsplit=1)[0]
    OUTCOMES[(reader, f"refused ({type(error).__name__}): {kind[:100]}")] += 1


# --- raw values a JSON reader must survive -------------------------------------------------------

#: JSON text ``json.dumps`` never writes, each a classic way to break a reader.
RAW_JSON = [
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "9" * 400,  # an integer far past float range, under Python's 4300-digit limit
    "9" * 5000,  # past that limit
    "-1",
    "1.5",
    "true",
    "null",
    '"\\ud800"',  # a lone surrogate: not UTF-8
    "[" * 3000 + "]" * 3000,  # deeper than the recursion limit
    "[" * 60 + "]" * 60,
    "{}",
    "[]",
    '""',
    json.dumps("x" * 100_000),
    "0",
    "2147483648",
    "-9223372036854775809",
]


#: Longest text a mutation makes by repeating a value: longer than any field may be.
LONG_TEXT = 20_000


class Raw:
    """A value written into the JSON text as it is (``render`` puts it there)."""

    def __init__(self, text: str) -> None:
        self.text = text


#: Values a drawn JSON document may hold (RAW ones are rendered as their text).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(RAW_JSON).map(Raw),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)


def render(value: Any) -> str:
    """``value`` as JSON text, each ``Raw`` as its own text and floats as Python writes them."""
    raws: list[str] = []

    def encode(v: Any) -> Any:
        if isinstance(v, Raw):
            raws.append(v.text)
            return f"\0raw{len(raws) - 1}\0"
        if isinstance(v, dict):
            return {k: encode(x) for k, x in v.items()}
        if isinstance(v, list):
            return [encode(x) for x in v]
        return v

    text = json.dumps(encode(value))
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\0raw{i}\0"), raw)
    return text


# --- JSON documents ------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def paths(doc: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every place in ``doc`` that holds a value (the root too)."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def _parent(doc: Any, path: Path_) -> Any:
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def _near(value: Any) -> st.SearchStrategy[Any]:
    """Values close to ``value`` that a schema must still judge: off by one, another sign,
    another type of the same look, the bounds of its kind."""
    if isinstance(value, bool):
        return st.sampled_from([not value, int(value), str(value)])
    if isinstance(value, int):
        return st.sampled_from([value + 1, value - 1, -value - 1, 0, -1, 2**31, float(value)])
    if isinstance(value, float):
        whole = round(value) if math.isfinite(value) and abs(value) < 1e18 else 0
        return st.sampled_from([-value, value * 1e300, 0.0, whole])
    if isinstance(value, str):
        return st.sampled_from(["", (value * 50)[:LONG_TEXT], value[:-1], 0, None])
    if isinstance(value, list):
        return st.sampled_from([[], value[:-1], value + value, {}])
    return st.sampled_from([{}, [], None])


@st.composite
def mutated_json(draw: st.DrawFn, doc: Any, doc_paths: list[Path_], n: int = 3) -> str:
    """``doc`` (not changed) with 1 to ``n`` values replaced, dropped or added, as JSON text."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, n))):
        path = draw(st.sampled_from(doc_paths))
        how = draw(st.sampled_from(["replace", "near", "drop", "add"]))
        if not path:
            doc = draw(json_values) if how == "replace" else doc
            continue
        try:
            parent = _parent(doc, path)
            value = parent[path[-1]]
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed the place
            continue
        if how == "replace":
            parent[path[-1]] = draw(json_values)
        elif how == "near":
            parent[path[-1]] = draw(_near(value))
        elif how == "drop":
            del parent[path[-1]]
        elif isinstance(value, list):
            value.insert(draw(st.integers(0, len(value))), draw(json_values))
        elif isinstance(value, dict):
            value[draw(st.text(max_size=10))] = draw(json_values)
    return render(doc)


# --- bytes ---------------------------------------------------------------------------------------

#: 32-bit words that make a FlatBuffer offset or count point nowhere, at itself or everywhere.
WORDS = [0, 1, 4, 8, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC]


def _flip(data: bytearray, draw: st.DrawFn) -> None:
    if data:
        i = draw(st.integers(0, len(data) - 1))
        data[i] ^= 1 << draw(st.integers(0, 7))


def _cut(data: bytearray, draw: st.DrawFn) -> None:
    del data[draw(st.integers(0, len(data))) :]


def _insert(data: bytearray, draw: st.DrawFn) -> None:
    i = draw(st.integers(0, len(data)))
    data[i:i] = draw(st.binary(min_size=1, max_size=64))


def _delete(data: bytearray, draw: st.DrawFn) -> None:
    i = draw(st.integers(0, len(data)))
    del data[i : i + draw(st.integers(1, 64))]


def _word(data: bytearray, draw: st.DrawFn) -> None:
    if len(data) >= 4:
        i = draw(st.integers(0, (len(data) - 4) // 4)) * 4  # FlatBuffer fields are aligned
        word = draw(st.one_of(st.sampled_from(WORDS), st.integers(0, len(data) + 8)))
        struct.pack_into("<I", data, i, word)


def _splice(data: bytearray, draw: st.DrawFn) -> None:
    """A chunk copied over another place: a file's own offsets, pointing at the wrong things."""
    if len(data) >= 8:
        i, j = draw(st.integers(0, len(data) - 4)), draw(st.integers(0, len(data) - 4))
        n = draw(st.integers(4, 64))
        data[j : j + n] = data[i : i + n]


BYTE_MUTATIONS: dict[str, Callable[[bytearray, st.DrawFn], None]] = {
    "flip": _flip,
    "cut": _cut,
    "insert": _insert,
    "delete": _delete,
    "word": _word,
    "splice": _splice,
}


@st.composite
def mutated_bytes(draw: st.DrawFn, seed: bytes, n: int = 4) -> bytes:
    """``seed`` with 1 to ``n`` byte mutations."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, n))):
        BYTE_MUTATIONS[draw(st.sampled_from(sorted(BYTE_MUTATIONS)))](data, draw)
    return bytes(data)
