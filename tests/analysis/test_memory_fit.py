"""``bench check --run``: a run's measured peaks and its estimates against a device's memory,
on a run folder of synthetic rows, with each row saying which side failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchharness.analysis.memory_fit import check_run, memory_budget
from benchharness.cli import main  # at import: the CLI's console must not bind to capsys
from benchharness.profiles.device_profile import load_profile, parse_profile
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore

MIB = 1 << 20
BOARD = """\
name = "board"
transport = "ssh"
host = "board.local"
[constraints]
max_model_bytes = 8388608
max_activation_bytes = 8388608
max_total_bytes = 8388608
"""


def _row(model: str, weights: int, acts: int, peak: int | None, status: str = "ok") -> RunRow:
    return RunRow.from_values({"job_id": model, "model": model, "device": "local", "format": "tflite",
            "precision": "fp32", "runtime": "litert", "status": status, "median_ms": 1.0,
            "model_bytes": weights, "activation_bytes": acts, "mem_estimate_bytes": weights + acts,
            "mem_peak_bytes": peak, "mem_source": "vmhwm" if peak is not None else None})  # fmt: skip


ROWS = [
    _row("fits", 2 * MIB, MIB, 5 * MIB),
    _row("arena", 2 * MIB, MIB, 20 * MIB),  # the estimate fits, the runtime's peak does not
    _row("heavy", 10 * MIB, MIB, 6 * MIB),  # over on weights; the measured peak fits
    _row("both", 10 * MIB, MIB, 30 * MIB),
    _row("unmeasured", MIB, MIB, None),  # an older run: the estimate alone
    _row("crashed", MIB, MIB, None, status="failed"),
]


@pytest.fixture
def board(tmp_path: Path) -> Path:
    path = tmp_path / "board.toml"
    path.write_text(BOARD)
    return path


def test_each_row_says_which_side_failed(board: Path) -> None:
    fits = {f.model: f for f in check_run(load_profile(str(board)), ROWS)}
    assert "crashed" not in fits  # nothing measured to judge
    assert {m: f.failed for m, f in fits.items()} == {
        "fits": "-", "arena": "measured", "heavy": "estimate", "both": "both", "unmeasured": "-",
    }  # fmt: skip
    assert fits["unmeasured"].measured_fits is None and fits["unmeasured"].estimate_fits is True
    assert fits["arena"].budget_bytes == 8 * MIB
    (reason,) = fits["arena"].reasons()
    assert reason.startswith("measured: peak 20.00 MiB (vmhwm) > budget 8.00 MiB")
    assert [v.kind for v in fits["heavy"].estimate_violations] == ["model_bytes", "total_bytes"]


def test_budget_without_a_total_is_weights_plus_activations() -> None:
    base: dict[str, Any] = {"name": "npu", "transport": "local"}
    both = parse_profile({**base, "constraints": {"max_model_bytes": 4 * MIB,
                                                  "max_activation_bytes": 2 * MIB}})  # fmt: skip
    assert memory_budget(both) == 6 * MIB
    assert memory_budget(parse_profile({**base, "constraints": {"max_model_bytes": MIB}})) is None
    assert memory_budget(parse_profile(base)) is None


def test_cli_check_run_exit_status(board: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    store = RunStore.create(results, "r1")
    for row in ROWS:
        store.add_job(row)
    ok = RunStore.create(results, "r2")
    ok.add_job(ROWS[0])

    def status(*args: str) -> int:
        try:
            main(["check", "--device", str(board), "--results-dir", str(results), *args])
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    assert status("--run", "r1") == 1
    assert status("--run", "r1", "--json") == 1
    assert status("--run", "r2") == 0
    assert status("--run", "r1", "--models", "fits,unmeasured") == 0  # --models filters the run
    assert status() == 1  # neither --models nor --run: a usage error, one line
