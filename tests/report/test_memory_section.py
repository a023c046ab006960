"""The report's memory section on a synthetic run: measured peak against the estimate, and
against the budget of the device's profile where it sets one."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.report import write_report
from benchharness.report.figures import analyze_runs
from benchharness.report.memory_section import memory_summary, memory_table
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore

MIB = 1 << 20
BOARD = 'name = "board"\ntransport = "local"\n[constraints]\nmax_total_bytes = 8388608\n'


def _row(device: str, model: str, estimate: int, peak: int | None, fmt: str = "tflite") -> RunRow:
    return RunRow.from_values({"job_id": f"{device}|{model}|{fmt}", "device": device, "runtime": "litert",
            "format": fmt, "precision": "fp32", "model": model, "status": "ok",
            "median_ms": 2.0, "n": 100, "macs": 1e8, "model_bytes": estimate // 2,
            "activation_bytes": estimate - estimate // 2, "mem_estimate_bytes": estimate,
            "mem_peak_bytes": peak, "mem_init_bytes": peak // 2 if peak else None,
            "mem_source": "vmhwm" if peak else None, "mem_runtime_load_bytes": 14 * MIB,
            "mem_tensor_bytes": MIB})  # fmt: skip


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    profiles = tmp_path / "devices"
    profiles.mkdir()
    (profiles / "board.toml").write_text(BOARD)
    monkeypatch.setenv("BENCH_DEVICES_PATH", str(profiles))
    results = tmp_path / "results"
    store = RunStore.create(results, "mem")
    for row in (
        _row("board", "small", 2 * MIB, 5 * MIB),
        _row("board", "big", 20 * MIB, 12 * MIB),  # in-place reuse: below its estimate
        _row("board", "old", 3 * MIB, None),  # no measured peak: not in the section
        _row("nowhere", "small", 2 * MIB, 6 * MIB),  # no profile: no budget
    ):
        store.add_job(row)
    return results


def test_points_ratios_and_budget(run: Path) -> None:
    points = analyze_runs(run, ["mem"]).memory
    by = {(p.device, p.model): p for p in points}
    assert set(by) == {("board", "small"), ("board", "big"), ("nowhere", "small")}
    small, big = by[("board", "small")], by[("board", "big")]
    assert small.ratio == pytest.approx(2.5) and big.ratio == pytest.approx(0.6)
    assert (small.budget_bytes, small.fits, big.fits) == (8 * MIB, True, False)
    assert by[("nowhere", "small")].budget_bytes is None and by[("nowhere", "small")].fits is None
    table = memory_table(points)
    assert table.columns[5] == "peak MiB" and len(table.rows) == 3
    summary = memory_summary(points)
    assert summary[0].startswith("board / litert / tflite: 2 model(s), measured peak / estimate")
    assert "1 of 2 fit the device budget" in summary[0]


def test_html_and_markdown_carry_the_section_and_its_plot(run: Path, tmp_path: Path) -> None:
    html = write_report(["mem"], run, tmp_path / "r.html")
    text = html.path.read_text()
    assert '<section id="memory">' in text and 'id="fig-memory"' in text
    md = write_report(["mem"], run, tmp_path / "r.md")
    assert "## Memory" in md.path.read_text()
    assert tmp_path / "r_files" / "memory.png" in md.images
