"""The dispatcher's rounds under the process rule: quiet models stop early, noisy ones get
processes, models stay interleaved, and an interrupted job resumes to the same rule.

The runner is a fake transport that answers each runner command with a canned result whose
level follows a per-model sequence (no runtime, no clock: what is tested is the scheduling)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from benchharness.dispatch.execute import run_device
from benchharness.dispatch.reporter import NullReporter
from benchharness.ondevice.protocol import PROTOCOL_VERSION
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import Method, RunOptions
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from benchharness.transport.base import Command, CommandResult
from tests.dispatch.exec_only import ExecOnlyTransport

#: Per model: the level of each successive process (ms). "quiet" agrees within 0.1 %;
#: "noisy" swings by 8 %, wider than any 10 processes can pin to 2 %.
LEVELS = {
    "quiet": [1.0, 1.001, 0.999, 1.0005, 0.9995] * 4,
    "noisy": [1.0, 1.08, 0.93, 1.05, 0.96, 1.1, 0.92, 1.04, 0.97, 1.07] * 2,
    "middling": [1.0, 1.03, 0.98, 1.02, 0.975, 1.025, 1.0, 1.01, 0.99, 1.0] * 2,
}


class Interrupted(Exception):
    """What the fake raises to stop a run midway, as Ctrl-C would."""


class FakeRunner(ExecOnlyTransport):
    """Answers runner commands with a result at the model's next level; records the order."""

    kind = "local"

    def __init__(self, stop_after: int | None = None, seen: dict[str, int] | None = None) -> None:
        self.order: list[str] = []
        self.stop_after = stop_after
        self.seen = dict(seen or {})

    def execute(self, command: Command) -> CommandResult:
        argv = command.argv
        if "--model" not in argv:
            return CommandResult(tuple(argv), 0, "", "")  # cooldown's temperature read: none
        if self.stop_after is not None and len(self.order) >= self.stop_after:
            raise Interrupted
        model = Path(argv[list(argv).index("--model") + 1]).stem
        k = self.seen.get(model, 0)
        self.seen[model] = k + 1
        self.order.append(model)
        level = LEVELS[model][k]
        samples = [level * (1.0 + 0.001 * ((i % 5) - 2)) for i in range(60)]
        result = {"protocol": PROTOCOL_VERSION, "ok": True, "runtime": "fake",
                  "runtime_version": "1", "provider": "cpu", "threads": 1, "load_ms": 1.0,
                  "cold_ms": 2.0, "warmup_n": 10, "samples_ms": samples,
                  "outputs_finite": True}  # fmt: skip
        return CommandResult(tuple(argv), 0, "BENCHHARNESS_RESULT " + json.dumps(result), "")


def artifacts(tmp_path: Path, names: Sequence[str]) -> list[Artifact]:
    out = []
    for name in names:
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(b"not read by the fake runner")
        out.append(Artifact(model=name, source="user", input_shape="1x3x8x8", format="onnx",
                            precision="fp32", path=path, sha256=name))  # fmt: skip
    return out


class Rows(NullReporter):
    """Every row the dispatcher reported, in order."""

    def __init__(self) -> None:
        self.rows: list[RunRow] = []

    def job_done(self, device: str, row: RunRow) -> None:
        self.rows.append(row)


def run(store: RunStore, arts: list[Artifact], opts: RunOptions, transport: FakeRunner) -> Rows:
    reporter = Rows()
    profile = DeviceProfile(name="local", transport="local")
    run_device(store, profile, arts, opts, reporter, lambda p: transport, None, threading.Lock())
    return reporter


def test_quiet_models_stop_early_and_noisy_ones_get_processes(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "results")
    arts = artifacts(tmp_path, ["quiet", "noisy", "middling"])
    fake = FakeRunner()
    run(store, arts, RunOptions(profile_ops=False, seed=3), fake)
    rows = {r.model: r for r in store.runs}
    assert {m: (r.processes, r.process_stop) for m, r in rows.items()} == {
        "quiet": (5, "ci"),
        "noisy": (10, "max_processes"),
        "middling": (fake.seen["middling"], "ci"),
    }
    assert 5 < fake.seen["middling"] < 10
    assert {r.status for r in rows.values()} == {"ok"}
    # noisy's interval is honest about its spread: far wider than quiet's
    width = {m: (r.ci95_high_ms - r.ci95_low_ms) / r.median_ms for m, r in rows.items()}
    assert width["quiet"] < 0.01 < 0.04 < width["noisy"]
    assert all(r.ci_method.startswith("t over") for r in rows.values())


def test_rounds_interleave_every_unfinished_model_in_a_new_order(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "results")
    fake = FakeRunner()
    run(store, artifacts(tmp_path, ["quiet", "noisy", "middling"]),
        RunOptions(profile_ops=False, seed=5), fake)  # fmt: skip
    rounds = [fake.order[i : i + 3] for i in range(0, 15, 3)]  # all three in the first five
    assert all(sorted(r) == ["middling", "noisy", "quiet"] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # shuffled per round, not one fixed order
    later = fake.order[15:]
    assert "quiet" not in later and later.count("noisy") == 5


def test_rows_are_partial_until_the_rule_stops_them(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "results")
    reporter = run(store, artifacts(tmp_path, ["quiet"]),
                   RunOptions(profile_ops=False, seed=1), FakeRunner())  # fmt: skip
    statuses = [(r.status, r.error) for r in reporter.rows]
    assert statuses[:4] == [("partial", f"{k} of 5 processes") for k in range(1, 5)]
    assert statuses[4] == ("ok", "")


@pytest.mark.parametrize(("opts", "count"), [
    (RunOptions(profile_ops=False, processes=3, seed=1), 3),
    (RunOptions(profile_ops=False, method=Method(quick=True), seed=1), 1),
])  # fmt: skip
def test_a_fixed_count_is_run_exactly(tmp_path: Path, opts: RunOptions, count: int) -> None:
    store = RunStore.create(tmp_path / "results")
    fake = FakeRunner()
    run(store, artifacts(tmp_path, ["quiet", "noisy"]), opts, fake)
    assert fake.seen == {"quiet": count, "noisy": count}
    assert {(r.processes, r.process_stop, r.status) for r in store.runs} == {(count, "fixed", "ok")}


def test_cap_and_target_are_options(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "results")
    fake = FakeRunner()
    opts = RunOptions(profile_ops=False, seed=1, max_processes=7,
                      process_ci_rel=0.2)  # fmt: skip
    run(store, artifacts(tmp_path, ["noisy"]), opts, fake)
    # a 20 % target: noisy's 8 % swings meet it at the minimum of five
    assert fake.seen == {"noisy": 5} and store.runs[0].process_stop == "ci"
    store = RunStore.create(tmp_path / "results2")
    fake = FakeRunner()
    run(store, artifacts(tmp_path, ["noisy"]),
        RunOptions(profile_ops=False, seed=1, max_processes=7), fake)  # fmt: skip
    assert fake.seen == {"noisy": 7} and store.runs[0].process_stop == "max_processes"


def test_an_interrupted_job_resumes_to_the_same_rule(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "results")
    arts = artifacts(tmp_path, ["quiet", "noisy"])
    opts = RunOptions(profile_ops=False, seed=2)
    first = FakeRunner(stop_after=5)
    with pytest.raises(Interrupted):
        run(store, arts, opts, first)
    reopened = RunStore.open(tmp_path / "results", store.run_id)
    assert {r.status for r in reopened.runs} == {"partial"}
    assert reopened.finished_job_ids() == set()
    second = FakeRunner(seen=first.seen)
    run(reopened, arts, opts, second)
    done = {r.model: r for r in reopened.runs}
    assert done["quiet"].processes == 5 and done["quiet"].status == "ok"
    assert done["noisy"].processes == 10
    assert {m: first.seen[m] + second.order.count(m) for m in ("quiet", "noisy")} == {
        "quiet": 5,
        "noisy": 10,
    }
