"""The diagnosis groups a run's flags by cause, on synthetic rows."""

from __future__ import annotations

from benchharness.analysis.diagnosis import (
    BUSY,
    CLOCKS,
    FEW_SAMPLES,
    THROTTLED,
    UNEXPLAINED,
    diagnose,
)
from benchharness.results.schema import RunRow

NOISY = "HIGH_IQR;VERY_HIGH_IQR;HIGH_CV;EXTREME;PROCESS_VARIANCE"


def _row(model: str, **kw: object) -> RunRow:
    base: dict[str, object] = {
        "device": "local", "model": model, "format": "onnx", "status": "ok", "threads": 2,
        "cpus": 2, "n": 500, "process_medians_ms": [4.0, 4.1, 4.05],
    }  # fmt: skip
    return RunRow.from_values({**base, **kw})


def test_a_busy_machine_is_one_diagnosis_naming_the_load() -> None:
    rows = [
        _row(f"m{i}", flags=NOISY, loadavg_start=3.3, loadavg_end=4.1, loadavg_max=4.1,
             process_medians_ms=[4.0, 5.4, 4.3])
        for i in range(34)
    ]  # fmt: skip
    (only,) = diagnose(rows)
    assert only.cause == BUSY and only.rows == 34 and only.of == 34
    assert "3.3-4.1" in only.evidence and "2 cores" in only.evidence
    assert "35 %" in only.evidence  # the spread of the process medians
    assert "other programs" in only.evidence and "--affinity" in only.advice
    assert only.flags == ("HIGH_IQR", "VERY_HIGH_IQR", "HIGH_CV", "EXTREME", "PROCESS_VARIANCE")


def test_steal_time_alone_makes_a_machine_busy() -> None:
    rows = [_row("m", flags="HIGH_CV", loadavg_max=2.0, steal_pct=12.0)]
    (only,) = diagnose(rows)
    assert only.cause == BUSY and "12 % of CPU time" in only.evidence


def test_a_throttled_device_is_said_with_its_probe_and_temperature() -> None:
    rows = [
        _row("hot", flags="THROTTLED", throttle_ratio=1.25, temp_start_c=40.0, temp_end_c=52.5),
        _row("cool"),
    ]
    (only,) = diagnose(rows)
    assert only.cause == THROTTLED and only.rows == 1 and only.of == 2
    assert "25 % slower" in only.evidence and "12.5 °C" in only.evidence
    assert only.where == ("local hot onnx",)


def test_a_quiet_run_raises_nothing() -> None:
    assert diagnose([_row(f"m{i}", loadavg_max=2.1, steal_pct=0.0) for i in range(10)]) == []


def test_variance_on_a_quiet_machine_is_not_blamed_on_load() -> None:
    rows = [_row("m", flags="PROCESS_VARIANCE", loadavg_max=2.2, process_medians_ms=[4.0, 6.6])]
    (only,) = diagnose(rows)
    assert only.cause == UNEXPLAINED and "65 %" in only.evidence and "stayed low" in only.evidence


def test_causes_are_kept_apart_and_unknown_flags_kept() -> None:
    rows = [
        _row("a", flags="FEW_SAMPLES", n=40),
        _row("b", flags="CLOCKS_UNLOCKED", governor="schedutil"),
        _row("c", flags="A_FUTURE_FLAG"),
    ]
    causes = [d.cause for d in diagnose(rows)]
    assert causes == [CLOCKS, FEW_SAMPLES, "a future flag"]
    assert (
        "schedutil" in diagnose(rows)[0].evidence and "40 inferences" in diagnose(rows)[1].evidence
    )


def test_emulated_rows_say_what_ran_on_what() -> None:
    rows = [
        _row(m, flags="EMULATED", arch="aarch64", emulated="qemu-user",
             cpu_model="AMD EPYC (aarch64 under qemu-user)")
        for m in ("a", "b")
    ]  # fmt: skip
    (only,) = diagnose(rows)
    assert only.cause == "emulated" and only.rows == 2 and only.flags == ("EMULATED",)
    assert "aarch64 code translated by qemu-user" in only.evidence
    assert "AMD EPYC" in only.evidence
    assert "native" in only.advice


def test_the_modes_of_many_rows_are_named_for_a_few_only() -> None:
    rows = [
        _row(f"m{i}", flags="MULTIMODAL", modes="1.0:0.5;2.0:0.5", process_medians_ms=[1.0, 2.0])
        for i in range(7)
    ]
    (only,) = diagnose(rows)
    assert "m0: 1 ms 50 %" in only.evidence and "m2:" in only.evidence
    assert "m3:" not in only.evidence and "4 more rows" in only.evidence
