"""The coordinator's rounds (docs/method.md: R processes per artifact, shuffled per round) and its
dispatch figures, on fabricated jobs: no scheduler, no runner."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed", reason="the farm needs Dask: pip install -e '.[farm]'")

from benchharness.dispatch.state import JobState
from benchharness.farm.coordinator import FarmJob, Lane, dispatch_figures, next_job
from benchharness.ondevice.protocol import RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.profiles.schema import DeviceProfile

IN_FLIGHT: Any = object()  # stands for a Dask future: the job has a process out


def _lane(n: int, seed: int = 7) -> Lane:
    jobs = []
    for i in range(n):
        a = Artifact(model=f"m{i}", source="zoo", input_shape="1x3x32x32", format="onnx",
                     precision="fp32", path=Path(f"m{i}.onnx"), sha256=f"{i:064d}")  # fmt: skip
        jobs.append(FarmJob(state=JobState(artifact=a, job_id=f"j{i}"), route="dev"))
    return Lane("dev", DeviceProfile(name="dev", transport="local"), jobs, random.Random(seed))


def _drain(lane: Lane, wanted: int) -> list[str]:
    """Run every process at once as it is handed out; the order they were handed out."""
    order = []
    while (job := next_job(lane, wanted)) is not None:
        order.append(job.state.job_id)
        job.state.results.append(RunnerResult(samples_ms=[1.0]))
    return order


def test_each_round_runs_every_job_once_in_a_fresh_order() -> None:
    lane = _lane(5)
    order = _drain(lane, 3)
    rounds = [order[i : i + 5] for i in range(0, 15, 5)]
    assert len(order) == 15
    assert all(sorted(r) == [f"j{i}" for i in range(5)] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1, "the rounds were not reshuffled"


def test_a_job_with_a_process_out_waits_and_the_others_go_on() -> None:
    lane = _lane(3)
    first = next_job(lane, 2)
    assert first is not None
    first.future = IN_FLIGHT
    others = [next_job(lane, 2), next_job(lane, 2)]
    assert {j.state.job_id for j in others if j} == {"j0", "j1", "j2"} - {first.state.job_id}
    for j in others:
        assert j is not None
        j.future = IN_FLIGHT
    assert next_job(lane, 2) is None  # round 2 waits for round 1's processes
    for j in [first, *others]:
        j.future = None
        j.state.results.append(RunnerResult(samples_ms=[1.0]))
    assert sorted(_drain(lane, 2)) == ["j0", "j1", "j2"]
    assert next_job(lane, 2) is None


def test_failed_jobs_get_no_more_processes() -> None:
    lane = _lane(3)
    lane.jobs[1].state.error = "RunnerError: boom"
    assert sorted(set(_drain(lane, 2))) == ["j0", "j2"]


def test_a_job_that_starts_over_gets_all_its_processes_in_later_rounds() -> None:
    lane = _lane(2)
    for _ in range(4):  # two rounds of two jobs
        job = next_job(lane, 3)
        assert job is not None
        job.state.results.append(RunnerResult(samples_ms=[1.0]))
    lane.jobs[0].state.results.clear()  # its device died: it starts over elsewhere
    order = _drain(lane, 3)
    assert order.count("j0") == 3 and order.count("j1") == 1
    assert all(len(j.state.results) == 3 for j in lane.jobs)


def test_a_resumed_job_only_runs_what_it_lacks() -> None:
    lane = _lane(2)
    lane.jobs[0].state.results += [RunnerResult(samples_ms=[1.0])] * 2
    order = _drain(lane, 3)
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
