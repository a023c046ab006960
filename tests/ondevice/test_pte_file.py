"""The .pte reader: what a program holds, and bounded work on a file that lies about it."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from benchharness.ondevice import pte_file
from tests.ondevice import pte_builder as B

#: A real program (``tiny_mixed`` exported by the harness): three XNNPACK partitions and two
#: operators left on ExecuTorch's kernels.
REAL_PTE = Path(__file__).parents[1] / "fuzz" / "data" / "tiny_mixed.pte"
#: The bound a refused file is held to: memory a few dozen times its size, and well under a
#: second, whatever it claims to hold.
MEMORY_PER_FILE_BYTE = 50
SECONDS = 2.0


def test_a_program_reads_back() -> None:
    data = B.program_of(
        B.plan(
            "forward", [("aten::add", "out"), ("executorch_prim::et_view", "")], ["XnnpackBackend"]
        ),
        B.plan("other"),
    )
    summary = pte_file.summarize(data)
    assert summary.methods == ["forward", "other"]
    assert summary.operators == ["aten::add.out", "executorch_prim::et_view"]
    assert summary.provider == "XNNPACK+portable"


def test_a_real_program_reads_back() -> None:
    summary = pte_file.summarize_file(str(REAL_PTE))
    assert summary.methods == ["forward"] and summary.delegates == ["XnnpackBackend"] * 3
    assert summary.portable_operators == ["aten::cumsum.out", "aten::mean.out"]


def test_a_program_that_shares_its_strings_reads_back() -> None:
    # a FlatBuffer builder may write a repeated string once: sharing alone is not an attack
    xnnpack = B.Str("XnnpackBackend")
    delegates = B.Vec([B.Table({pte_file.DELEGATE_ID: xnnpack}) for _ in range(200)])
    plan = B.Table({pte_file.PLAN_NAME: B.Str("forward"), pte_file.PLAN_DELEGATES: delegates})
    data = B.program(B.Table({pte_file.PROGRAM_EXECUTION_PLAN: B.Vec([plan])}))
    assert pte_file.summarize(data).delegates == ["XnnpackBackend"] * 200


def test_a_small_file_claiming_a_huge_program_is_refused_in_bounded_memory(
    tmp_path: Path,
) -> None:
    # 1500 plans that are one plan, whose 1500 operators are one operator of a 500-character
    # name: 13 KB on disk, 2.25 million names (1.5 GB) if every entry is followed
    data = B.shared_entries(1500, 500)
    assert len(data) < 13_000
    path = tmp_path / "crafted.pte"
    path.write_bytes(data)
    for read in (lambda: pte_file.summarize(data), lambda: pte_file.summarize_file(str(path))):
        tracemalloc.start()
        start = time.perf_counter()
        try:
            with pytest.raises(pte_file.PteFormatError, match="over and over"):
                read()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert time.perf_counter() - start < SECONDS
        assert peak < MEMORY_PER_FILE_BYTE * len(data), f"{peak} bytes for a {len(data)}-byte file"
