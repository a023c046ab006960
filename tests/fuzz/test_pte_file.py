"""Fuzzing the ``.pte`` reader shipped to devices: every input gives a summary or the module's
own PteFormatError, never another exception, in memory a small multiple of the input's size."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchharness.ondevice import pte_file
from tests.fuzz.mutations import mutated_bytes, record
from tests.ondevice import pte_builder as B

READER = ".pte header"
#: A real program exported by the harness (``tiny_mixed``: XNNPACK partitions and two operators
#: on ExecuTorch's kernels).
REAL = (Path(__file__).parent / "data" / "tiny_mixed.pte").read_bytes()
#: A program built here, of two methods.
BUILT = B.program_of(
    B.plan("forward", [("aten::add", "out"), ("aten::mean", "out")], ["XnnpackBackend"] * 3),
    B.plan("init", [("executorch_prim::et_view", "")]),
)
VALID = [REAL, BUILT]
#: Valid programs, and the crafted shared-table pattern (refused) to mutate too.
SEEDS = [*VALID, B.shared_entries(12, 20)]
#: Memory a reader may take per input byte (plus a fixed allowance for the summary's lists).
MEMORY_PER_BYTE = 50
MEMORY_FIXED = 256 << 10


def summarize_or_refuse(data: bytes) -> None:
    tracemalloc.start()
    try:
        try:
            pte_file.summarize(data)
            record(READER, None)
        except pte_file.PteFormatError as exc:
            record(READER, exc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_PER_BYTE * len(data) + MEMORY_FIXED, f"{peak} bytes for {len(data)}"


@pytest.mark.parametrize("seed", range(len(VALID)))
def test_the_valid_seeds_read(seed: int) -> None:
    assert pte_file.summarize(VALID[seed]).methods


@given(data=st.data(), seed=st.sampled_from(SEEDS))
def test_mutated_programs(data: st.DataObject, seed: bytes) -> None:
    summarize_or_refuse(data.draw(mutated_bytes(seed, n=6)))


@given(body=st.binary(max_size=2048), version=st.binary(min_size=2, max_size=2))
def test_random_bytes_with_the_identifier(body: bytes, version: bytes) -> None:
    data = body[:4].ljust(4, b"\0") + pte_file.PTE_IDENTIFIER_PREFIX + version + body[4:]
    summarize_or_refuse(data)


@given(data=st.data())
def test_mapped_files(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    """``summarize_file`` maps the file: an empty or cut file is refused the same way."""
    path = tmp_path_factory.getbasetemp() / "fuzz.pte"
    path.write_bytes(data.draw(mutated_bytes(REAL)))
    try:
        pte_file.summarize_file(str(path))
    except pte_file.PteFormatError as exc:
        record(READER, exc)
    else:
        record(READER, None)
