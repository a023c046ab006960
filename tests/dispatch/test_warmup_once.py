"""Warm-up calibrated once per job (issue 29), as the dispatcher runs it: the first process of a
job runs the full rule and says where its latency settled; the host gives every later process of
the job that count with its margin; the row says what each process did.

The runner is a fake transport that answers each runner command as the real runner would for a
model that settles where the test says, and records the calibrated count each process was given
(no runtime, no clock). One test at the end runs the real runner on the tiny model."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchharness.api import RunRequest, run
from benchharness.dispatch.execute import run_device
from benchharness.dispatch.warmup import warmup_target
from benchharness.ondevice import protocol
from benchharness.ondevice.method import WARMUP_DEFAULT
from benchharness.ondevice.protocol import PROTOCOL_VERSION, WARMUP_FULL
from benchharness.plan.options import Method, RunOptions
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.store import RunStore
from benchharness.transport.base import Command, CommandResult
from tests.dispatch.exec_only import ExecOnlyTransport
from tests.dispatch.test_process_rounds import Interrupted, Rows, artifacts

#: Per model: where each successive full-rule process settled (None: it never did).
SETTLES: dict[str, list[int | None]] = {
    "settles": [40] * 10,
    "late": [None] + [40] * 9,  # the first process ran to the cap; the second settled
    "never": [None] * 10,
}
#: Per model: the processes (0-based) whose calibrated check fails, so they fall back.
SLIPS: dict[str, set[int]] = {"settles": set(), "late": set(), "never": set(), "slips": {2}}
SETTLES["slips"] = [40] * 10
#: Process medians that agree to 0.1 %: five processes meet the process rule's target.
LEVELS = [1.0, 1.001, 0.999, 1.0005, 0.9995] * 4


class CalibratingRunner(ExecOnlyTransport):
    """Answers runner commands as a runner would: the full rule (and where it settled) without
    a calibrated count, the calibrated warm-up with one; records the count per process."""

    kind = "local"

    def __init__(self, stop_after: int | None = None) -> None:
        self.targets: dict[str, list[int | None]] = {}
        self.stop_after = stop_after

    def execute(self, command: Command) -> CommandResult:
        argv = list(command.argv)
        if "--model" not in argv:
            return CommandResult(tuple(argv), 0, "", "")  # cooldown's temperature read: none
        if self.stop_after is not None and sum(map(len, self.targets.values())) >= self.stop_after:
            raise Interrupted
        model = Path(argv[argv.index("--model") + 1]).stem
        target = (
            int(argv[argv.index("--warmup-target-n") + 1]) if "--warmup-target-n" in argv else None
        )
        k = len(self.targets.setdefault(model, []))
        self.targets[model].append(target)
        result = self._result(model, k, target)
        return CommandResult(tuple(argv), 0, "BENCHHARNESS_RESULT " + json.dumps(result), "")

    @staticmethod
    def _result(model: str, k: int, target: int | None) -> dict[str, object]:
        samples = [LEVELS[k] * (1.0 + 0.001 * ((i % 5) - 2)) for i in range(60)]
        warm: dict[str, object]
        if target is None:
            settle = SETTLES[model][k]
            warm = {"warmup_mode": "full", "warmup_n": 200, "warmup_settle_n": settle,
                    "warmup_settle_s": None if settle is None else 0.2}  # fmt: skip
        elif k in SLIPS[model]:
            warm = {"warmup_mode": "calibrated+full", "warmup_n": 220, "warmup_settle_n": 140,
                    "warmup_settle_s": 0.7}  # fmt: skip
        else:
            warm = {"warmup_mode": "calibrated", "warmup_n": target}
        return {"protocol": PROTOCOL_VERSION, "ok": True, "runtime": "fake",
                "runtime_version": "1", "provider": "cpu", "threads": 1, "load_ms": 1.0,
                "cold_ms": 2.0, "samples_ms": samples, "outputs_finite": True,
                "rule": {"warmup_target_n": target}, **warm}  # fmt: skip


def _run(store: RunStore, names: list[str], opts: RunOptions, fake: CalibratingRunner) -> Rows:
    reporter = Rows()
    profile = DeviceProfile(name="local", transport="local")
    arts = artifacts(store.path.parent, names)
    run_device(store, profile, arts, opts, reporter, lambda p: fake, None, threading.Lock())
    return reporter


def _opts(**method: object) -> RunOptions:
    return RunOptions(profile_ops=False, seed=4, method=Method(**method))  # type: ignore[arg-type]


#: The count a first process that settled after 40 inferences gives the later ones.
TARGET = WARMUP_DEFAULT.calibrated_count(40)


def test_later_processes_run_the_first_processes_calibration(tmp_path: Path) -> None:
    assert TARGET == 80
    store = RunStore.create(tmp_path / "results")
    fake = CalibratingRunner()
    reporter = _run(store, ["settles"], _opts(), fake)
    assert fake.targets == {"settles": [None, TARGET, TARGET, TARGET, TARGET]}
    (row,) = store.runs
    assert (row.processes, row.status) == (5, "ok")
    assert row.warmup_mode == "full:1;calibrated:4"
    assert (row.warmup_settle_n, row.warmup_settle_s, row.warmup_target_n) == (40, 0.2, TARGET)
    assert row.warmup_n == 200 + 4 * TARGET
    # the partial row after the first process already says where it settled, and no target yet
    first = reporter.rows[0]
    assert (first.warmup_mode, first.warmup_settle_n, first.warmup_target_n) == ("full:1", 40, None)


def test_a_first_process_that_never_settled_leaves_the_next_one_on_the_full_rule(
    tmp_path: Path,
) -> None:
    store = RunStore.create(tmp_path / "results")
    fake = CalibratingRunner()
    _run(store, ["late", "never"], _opts(), fake)
    assert fake.targets["late"] == [None, None, TARGET, TARGET, TARGET]
    assert fake.targets["never"] == [None] * 5
    rows = {r.model: r for r in store.runs}
    assert rows["late"].warmup_mode == "full:2;calibrated:3"
    assert (rows["late"].warmup_settle_n, rows["late"].warmup_target_n) == (40, TARGET)
    assert rows["never"].warmup_mode == "full:5"
    assert (rows["never"].warmup_settle_n, rows["never"].warmup_target_n) == (None, None)


def test_a_process_whose_check_failed_is_counted_apart(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "results")
    fake = CalibratingRunner()
    _run(store, ["slips"], _opts(), fake)
    # the fallback's own settle point does not recalibrate the job: one target for all
    assert fake.targets["slips"] == [None, TARGET, TARGET, TARGET, TARGET]
    (row,) = store.runs
    assert row.warmup_mode == "full:1;calibrated:3;calibrated+full:1"
    assert (row.warmup_settle_n, row.warmup_target_n) == (40, TARGET)


def test_the_full_rule_in_every_process_when_asked(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "results")
    fake = CalibratingRunner()
    _run(store, ["settles"], _opts(warmup=WARMUP_FULL), fake)
    assert fake.targets == {"settles": [None] * 5}
    (row,) = store.runs
    assert row.warmup_mode == "full:5" and row.warmup_target_n is None
    assert row.warmup_settle_n == 40  # still said: what a calibration would have started from


def test_quick_runs_one_full_process(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "results")
    fake = CalibratingRunner()
    _run(store, ["settles"], _opts(quick=True), fake)
    assert fake.targets == {"settles": [None]}
    assert store.runs[0].warmup_mode == "full:1"


def test_a_resumed_job_keeps_its_calibration(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "results")
    first = CalibratingRunner(stop_after=2)
    with pytest.raises(Interrupted):
        _run(store, ["settles"], _opts(), first)
    assert first.targets == {"settles": [None, TARGET]}
    reopened = RunStore.open(tmp_path / "results", store.run_id)
    second = CalibratingRunner()
    second.targets = {"settles": [None, TARGET]}  # the fake's own count of processes goes on
    _run(reopened, ["settles"], _opts(), second)
    assert second.targets["settles"][2:] == [TARGET] * 3
    (row,) = reopened.runs
    assert (row.processes, row.status) == (5, "ok")
    assert row.warmup_mode == "full:1;calibrated:4"
    assert (row.warmup_settle_n, row.warmup_target_n) == (40, TARGET)


def test_the_real_runner_calibrates_its_later_process(tmp_path: Path) -> None:
    # two processes of the real runner on the tiny model; how soon it settles is this machine's
    # business, so every branch is checked for what it must say, never for a time
    method = Method(min_n=20, min_s=0.1, warmup_min_s=0.1)
    req = RunRequest(models="tests.support.tiny:tiny_cnn", input_shape="1x3x32x32",
                     formats=("onnx",), options=RunOptions(method=method, processes=2,
                                                           profile_ops=False),
                     results_dir=tmp_path / "r")  # fmt: skip
    (row,) = run(req).runs
    assert (row.status, row.processes) == ("ok", 2)
    if row.warmup_settle_n is None:  # the first process ran to the cap without settling
        assert row.warmup_mode == "full:2" and row.warmup_target_n is None
    else:
        # 1.5x the settle point, unless the full rule itself ran less; always two check windows
        window = WARMUP_DEFAULT.window
        assert row.warmup_target_n is not None and row.warmup_target_n % window == 0
        assert row.warmup_settle_n + 2 * window <= row.warmup_target_n
        assert row.warmup_target_n <= WARMUP_DEFAULT.calibrated_count(row.warmup_settle_n)
        assert row.warmup_mode in ("full:1;calibrated:1", "full:1;calibrated+full:1")
        assert row.warmup_settle_s is not None and row.warmup_settle_s >= 0
    assert protocol.WARMUP_FULL in (row.warmup_mode or "")


def _settled(settle_n: int, warmup_n: int) -> Any:
    """A first process's result as ``warmup_target`` reads it: where it settled, how long its full
    rule ran, and no calibrated count of its own."""
    return SimpleNamespace(warmup_settle_n=settle_n, warmup_n=warmup_n, rule=None)


@pytest.mark.parametrize(
    ("settle_n", "warmup_n", "target"),
    [
        (40, 200, 80),  # 1.5x settles well inside what the full rule ran
        (0, 2376, 40),  # settled at once: two windows for the check
        # settled late, near where the full rule's 1 s ended: 1.5x (3460) would warm up longer
        # than the full rule itself; the full rule's own count, in whole windows, is enough
        (2300, 2376, 2380),
    ],
)
def test_a_calibrated_warm_up_is_never_longer_than_the_full_rule_ran(
    settle_n: int, warmup_n: int, target: int
) -> None:
    assert warmup_target([_settled(settle_n, warmup_n)], Method()) == target
