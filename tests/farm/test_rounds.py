"""The coordinator's rounds (docs/method.md: R processes per artifact, shuffled per round, the
process rule deciding when a job has enough) and its dispatch figures, on fabricated jobs: no
scheduler, no runner. The whole coordinator also runs against a fake farm and a fake clock, and
gives each job exactly the processes a local run gives it (``dispatch.execute.run_device``)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("distributed", reason="the farm needs Dask: pip install -e '.[farm]'")

from benchharness.dispatch import execute as local
from benchharness.dispatch.op_profile import OpsOutcome
from benchharness.dispatch.reporter import NullReporter
from benchharness.dispatch.state import JobState
from benchharness.farm import artifact_cache
from benchharness.farm import coordinator as farm_coordinator
from benchharness.farm.client import Farm
from benchharness.farm.coordinator import FarmJob, Lane, dispatch_figures, execute, next_job
from benchharness.farm.descriptions import MARKER, marker, worker_payload
from benchharness.farm.messages import DeviceStatus, ProcessOutcome, ProcessTask, WorkerInfo
from benchharness.farm.worker_plugin import close_run, describe_worker, run_process
from benchharness.ondevice.protocol import PROTOCOL_VERSION, RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import RunOptions
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from benchharness.stats.intervals import STOP_CAP, STOP_CI, ProcessRule

IN_FLIGHT: Any = object()  # stands for a Dask future: the job has a process out
FIXED3 = ProcessRule.fixed(3)
FIXED2 = ProcessRule.fixed(2)


def _lane(n: int, seed: int = 7) -> Lane:
    jobs = []
    for i in range(n):
        a = Artifact(model=f"m{i}", source="zoo", input_shape="1x3x32x32", format="onnx",
                     precision="fp32", path=Path(f"m{i}.onnx"), sha256=f"{i:064d}")  # fmt: skip
        jobs.append(FarmJob(state=JobState(artifact=a, job_id=f"j{i}"), route="dev"))
    return Lane("dev", DeviceProfile(name="dev", transport="local"), jobs, random.Random(seed))


def _drain(lane: Lane, rule: ProcessRule) -> list[str]:
    """Run every process at once as it is handed out; the order they were handed out."""
    order = []
    while (job := next_job(lane, rule)) is not None:
        order.append(job.state.job_id)
        job.state.results.append(RunnerResult(samples_ms=[1.0]))
    return order


def test_each_round_runs_every_job_once_in_a_fresh_order() -> None:
    lane = _lane(5)
    order = _drain(lane, FIXED3)
    rounds = [order[i : i + 5] for i in range(0, 15, 5)]
    assert len(order) == 15
    assert all(sorted(r) == [f"j{i}" for i in range(5)] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1, "the rounds were not reshuffled"


def test_a_job_with_a_process_out_waits_and_the_others_go_on() -> None:
    lane = _lane(3)
    first = next_job(lane, FIXED2)
    assert first is not None
    first.future = IN_FLIGHT
    others = [next_job(lane, FIXED2), next_job(lane, FIXED2)]
    assert {j.state.job_id for j in others if j} == {"j0", "j1", "j2"} - {first.state.job_id}
    for j in others:
        assert j is not None
        j.future = IN_FLIGHT
    assert next_job(lane, FIXED2) is None  # round 2 waits for round 1's processes
    for j in [first, *(o for o in others if o is not None)]:
        j.future = None
        j.state.results.append(RunnerResult(samples_ms=[1.0]))
    assert sorted(_drain(lane, FIXED2)) == ["j0", "j1", "j2"]
    assert next_job(lane, FIXED2) is None


def test_failed_jobs_get_no_more_processes() -> None:
    lane = _lane(3)
    lane.jobs[1].state.error = "RunnerError: boom"
    assert sorted(set(_drain(lane, FIXED2))) == ["j0", "j2"]


def test_a_job_the_rule_stopped_leaves_the_rounds() -> None:
    lane = _lane(3)
    for _ in range(3):  # one round
        job = next_job(lane, FIXED3)
        assert job is not None
        job.state.results.append(RunnerResult(samples_ms=[1.0]))
    lane.jobs[1].stop = STOP_CI
    order = _drain(lane, FIXED3)
    assert order.count("j1") == 0 and order.count("j0") == order.count("j2") == 2


def test_a_resumed_job_only_runs_what_it_lacks() -> None:
    lane = _lane(2)
    lane.jobs[0].state.results += [RunnerResult(samples_ms=[1.0])] * 2
    order = _drain(lane, FIXED3)
    assert order.count("j0") == 1 and order.count("j1") == 3
    assert order.index("j0") >= 2, "the resumed job ran before the others caught up"


def test_dispatch_figures_are_the_gaps_between_processes_on_each_device() -> None:
    lane = _lane(1)
    lane.processes, lane.busy_s = 4, 7.5
    lane.first_submit, lane.last_result = 100.0, 108.0
    lane.spans = [("a", "w1", 0.0, 2.0), ("a", "w1", 2.010, 4.0), ("b", "w2", 0.5, 1.0),
                  ("b", "w2", 1.5, 3.0)]  # fmt: skip
    figures = dispatch_figures(lane)
    assert figures["processes"] == 4 and figures["span_s"] == 8.0
    assert sorted(figures["gap_ms"]) == pytest.approx([10.0, 500.0])


# --- the whole coordinator against a fake farm, beside a local run ----------------------------

ADDRESS = "tls://10.0.0.7:40001"
DEVICE = DeviceProfile(name="dev", transport="local")
#: per model, the median of each of its processes in turn ("fail": the runner fails)
VALUES: dict[str, list[Any]] = {
    "quiet": [10.0] * 10,  # within the interval target at once: 5 processes, then "ci"
    "noisy": [10.0, 14.0, 8.0, 15.0, 7.0, 16.0, 6.0, 17.0, 5.0, 18.0],  # never: the cap
    "settles": [10.0, 13.0, 10.1, 10.0, 10.05, 10.02, 10.01, 10.0, 10.0, 10.0],
    "broken": [10.0, 10.0, "fail"],
}
OPTIONS = RunOptions(seed=11, max_processes=7, profile_ops=False)


class Clock:
    """Time that moves only when a process runs: one second each."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Outcomes:
    """The fabricated processes: each job's values in turn, and the order they ran in."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.ran: list[str] = []

    def next(self, model: str) -> float | str:
        value: float | str = VALUES[model][self.ran.count(model)]
        self.ran.append(model)
        self.clock.now += 1.0
        return value


class FakeFuture:
    def __init__(self, key: str, value: Any) -> None:
        self.key, self.value, self.status = key, value, "finished"

    def add_done_callback(self, fn: Callable[[FakeFuture], None]) -> None:
        fn(self)

    def result(self, timeout: float | None = None) -> Any:
        return self.value

    def release(self) -> None:
        pass

    def cancel(self) -> None:
        self.status = "cancelled"


class FakeClient:
    """A scheduler with one bench worker holding ``dev``, and a plain Dask worker beside it."""

    status = "running"

    def __init__(self, outcomes: Outcomes, ops_error: str | None = None) -> None:
        self.outcomes = outcomes
        self.ops_error = ops_error
        self.described: list[list[str]] = []
        self.sent_to: list[list[str] | None] = []

    def scheduler_info(self, n_workers: int = 0) -> dict[str, Any]:
        return {"workers": {
            ADDRESS: {"resources": {"dev": 1.0}, "metrics": {MARKER: marker()}},
            "tls://10.0.0.8:1": {"resources": {"dev": 1.0}, "metrics": {}},  # a plain worker
        }}  # fmt: skip

    def run(self, fn: Any, *args: Any, workers: list[str], on_error: str = "") -> dict[str, Any]:
        if fn is describe_worker:
            self.described.append(workers)
            info = WorkerInfo(address=ADDRESS, host="lab7", harness_version=marker()[
                "harness_version"], protocol_version=PROTOCOL_VERSION,
                devices=[DeviceStatus(DEVICE)])  # fmt: skip
            return {ADDRESS: worker_payload(info)}
        assert fn is artifact_cache.missing
        return {ADDRESS: []}

    def submit(self, fn: Any, *args: Any, key: str, workers: list[str] | None = None,
               **kw: Any) -> FakeFuture:  # fmt: skip
        if fn is close_run:
            return FakeFuture(key, None)
        assert fn is run_process
        self.sent_to.append(workers)
        task: ProcessTask = args[0]
        value = self.outcomes.next(task.artifact.model)
        outcome = ProcessOutcome(job_id=task.job_id, device="dev", host="lab7", worker=ADDRESS,
                                 profile=DEVICE, wall_s=1.0, t_start=self.outcomes.clock.now - 1,
                                 t_end=self.outcomes.clock.now)  # fmt: skip
        if value == "fail":
            outcome.error = "RunnerError: boom"
        else:
            outcome.result = RunnerResult(samples_ms=[float(value)] * 3)
            if task.profile_ops:  # the worker's per-operator pass, failing as told
                outcome.ops = OpsOutcome(error=self.ops_error)
        return FakeFuture(key, outcome)

    def cancel(self, futures: Any) -> None:
        pass


def _artifacts() -> list[Artifact]:
    return [Artifact(model=m, source="zoo", input_shape="1x3x8x8", format="onnx",
                     precision="fp32", path=Path(f"{m}.onnx"), sha256=f"{i:064d}")
            for i, m in enumerate(VALUES)]  # fmt: skip


def _farm_rows(
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: RunOptions = OPTIONS,
    ops_error: str | None = None,
) -> tuple[list[RunRow], FakeClient]:
    clock = Clock()
    monkeypatch.setattr(farm_coordinator, "time", SimpleNamespace(monotonic=clock, time=clock))
    client = FakeClient(Outcomes(clock), ops_error)
    farm = Farm(ADDRESS, client)  # type: ignore[arg-type]
    farm.refresh()
    store = RunStore.create(tmp / "farm")
    with store.writing():
        execute(farm, store, [DEVICE], _artifacts(), options, ops_hook=lambda *a: OpsOutcome())
    return RunStore.open(tmp / "farm", store.run_id).runs, client


def _local_rows(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[RunRow]:
    outcomes = Outcomes(Clock())

    def one_process(session: Any, state: JobState, *args: Any) -> None:
        value = outcomes.next(state.artifact.model)
        if value == "fail":
            state.error = "RunnerError: boom"
        else:
            state.results.append(RunnerResult(samples_ms=[float(value)] * 3))

    class Transport:
        def reap(self) -> None: ...
        def close(self) -> None: ...

    monkeypatch.setattr(local, "_one_process", one_process)
    monkeypatch.setenv("BENCH_LOCK_DIR", str(tmp / "locks"))
    store = RunStore.create(tmp / "local")
    with store.writing():
        local.run_device(store, DEVICE, _artifacts(), OPTIONS, NullReporter(),
                         lambda p: Transport(), None, threading.Lock())  # type: ignore[arg-type,return-value]  # fmt: skip
    return RunStore.open(tmp / "local", store.run_id).runs


def _by_model(rows: list[RunRow]) -> dict[str, tuple[Any, ...]]:
    return {r.model: (r.status, r.processes, r.process_stop or "", r.process_medians_ms)
            for r in rows}  # fmt: skip


def test_a_farm_run_and_a_local_run_give_each_job_the_same_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    farm_rows, client = _farm_rows(tmp_path, monkeypatch)
    local_rows = _local_rows(tmp_path, monkeypatch)
    farm, here = _by_model(farm_rows), _by_model(local_rows)
    assert farm == here
    assert farm["quiet"][:3] == ("ok", 5, STOP_CI)
    assert farm["noisy"][:3] == ("ok", 7, STOP_CAP)
    assert farm["broken"][0] == "failed"
    # only the bench worker was asked what it holds, and sent work; the plain one never
    assert client.described == [[ADDRESS]]
    assert client.sent_to and all(w == [ADDRESS] for w in client.sent_to)


def test_why_a_job_has_no_operator_rows_reaches_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = replace(OPTIONS, profile_ops=True)
    rows, _ = _farm_rows(tmp_path, monkeypatch, options, ops_error="ParseError: no ETRecord")
    measured = [r for r in rows if r.status == "ok"]
    assert measured and all(r.ops_error == "ParseError: no ETRecord" for r in measured)
