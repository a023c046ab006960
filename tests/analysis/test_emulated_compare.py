"""No change is ever called between a row measured under CPU translation (the EMULATED flag:
qemu-user, Rosetta) and a native one, whatever the caller allows; two emulated rows compare as
any two rows do."""

from __future__ import annotations

import pytest

from benchharness.analysis.comparison import EMULATED_FLAG, gate
from benchharness.results.schema import RunRow, SampleRow
from benchharness.stats.summary import FLAG_ADVICE, FLAGS
from tests.analysis.test_comparison import compare_one, measure


def _emulated(measured: tuple[RunRow, list[SampleRow]]) -> tuple[RunRow, list[SampleRow]]:
    row, samples = measured
    flags = ";".join([*row.flag_list, EMULATED_FLAG])
    return row.replace(flags=flags, cpu_model="Test CPU (aarch64 under qemu-user)"), samples


def test_the_flag_is_known_and_advised() -> None:
    assert EMULATED_FLAG in FLAGS
    assert "never compare with native rows" in FLAG_ADVICE[EMULATED_FLAG]


@pytest.mark.parametrize("emulated_side", ["a", "b"])
def test_emulated_against_native_calls_no_change(emulated_side: str) -> None:
    a = measure("resnet18", seed=1)
    b = measure("resnet18", seed=2, scale=3.0)  # 3x slower: a sure "slower" otherwise
    if emulated_side == "a":
        a = _emulated(a)
    else:
        b = _emulated(b)
    result = compare_one(a, b, allow_mismatch=True)
    (m,) = result.matches
    assert m.verdict == "unreliable"
    assert any("CPU translation" in note for note in m.notes)
    # not even a gate that counts unreliable matches fails on it
    assert not gate(result, 0.05)
    assert not gate(result, 0.05, include_unreliable=True)


def test_two_emulated_rows_compare() -> None:
    a = _emulated(measure("resnet18", seed=1))
    b = _emulated(measure("resnet18", seed=2, scale=3.0))
    result = compare_one(a, b)
    (m,) = result.matches
    assert m.verdict == "slower"
    assert gate(result, 0.05)


def test_a_cross_architecture_mismatch_names_both_architectures() -> None:
    a, sa = measure("resnet18", seed=1)
    b, sb = _emulated(measure("resnet18", seed=2))
    a = a.replace(arch="x86_64")
    b = b.replace(arch="aarch64", emulated="qemu-user")
    result = compare_one((a, sa), (b, sb), allow_mismatch=True)
    (m,) = result.matches
    text = " ".join(m.notes + [str(w) for w in getattr(result, "warnings", [])])
    assert "arch x86_64 -> aarch64 (qemu-user)" in text, text


def test_peak_memory_is_not_compared_across_emulation() -> None:
    """qemu-user's own memory is in an emulated process's peak: it grew 1.2-2.3x against the
    native rows of the same models on this machine, which says nothing of the model."""
    from benchharness.analysis.memory_compare import compare_memory, memory_gate

    base = {"status": "ok", "device": "d", "format": "onnx", "precision": "fp32",
            "model": "m", "job_id": "m", "median_ms": 1.0, "mem_source": "vmhwm"}  # fmt: skip
    native = RunRow.from_values({**base, "mem_peak_bytes": 20 << 20, "arch": "x86_64"})
    emulated = RunRow.from_values({**base, "mem_peak_bytes": 47 << 20, "arch": "aarch64",
                                   "emulated": "qemu-user", "flags": EMULATED_FLAG})  # fmt: skip
    (m,) = compare_memory([native], [emulated])
    assert m.verdict == "not comparable" and "qemu-user" in m.note
    assert memory_gate([m], 0.05) == []
    (same,) = compare_memory([emulated], [emulated.replace(mem_peak_bytes=60 << 20)])
    assert same.verdict == "grew"  # two emulated rows compare as any two rows do
