"""A row whose processes fall into modes says so in its text: each mode's median and share."""

from __future__ import annotations

from typing import Any

from benchharness.cli.rowtext import fmt_modes, job_line
from benchharness.results.schema import RunRow

#: The modes of issue 29's first real run, as the row builder writes them.
MODES = "4.03:0.3;6.71:0.7"


def _row(**kw: Any) -> RunRow:
    base: dict[str, Any] = {
        "device": "local", "model": "mobilenet_v2", "format": "onnx", "precision": "fp32",
        "status": "ok", "median_ms": 6.6, "ci95_low_ms": 5.5, "ci95_high_ms": 7.9,
        "processes": 10, "process_stop": "max_processes", "wall_s": 21.0,
        "flags": "PROCESS_VARIANCE;MULTIMODAL", "modes": MODES,
    }  # fmt: skip
    return RunRow.from_values({**base, **kw})


def test_a_multimodal_row_shows_its_modes() -> None:
    assert fmt_modes(_row()) == "modes 4.03 ms (30 %), 6.71 ms (70 %)"
    line = job_line("local", _row())
    assert line.startswith("local mobilenet_v2 onnx fp32: 6.6 ms ±18 %, 10 processes (max)")
    assert ", modes 4.03 ms (30 %), 6.71 ms (70 %) in 21.0 s" in line


def test_one_level_shows_no_modes() -> None:
    row = _row(flags="PROCESS_VARIANCE", modes=None)
    assert fmt_modes(row) == ""
    assert "modes" not in job_line("local", row)


def test_modes_without_the_flag_or_in_a_damaged_cell_show_nothing() -> None:
    # the flag is what the row asserts; a cell that does not parse is not shown as modes
    assert fmt_modes(_row(flags="PROCESS_VARIANCE")) == ""
    assert fmt_modes(_row(modes="4.03;6.71")) == ""
    assert "modes" not in job_line("local", _row(modes="4.03;6.71"))
