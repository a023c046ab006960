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
