"""The runner repeats a profiled pass that ran at another speed than its timed loop (issue 29:
LiteRT's operator sums at 0.41-1.67 of the end-to-end median on a shared 2-vCPU VM, where the
profiled pass of one process ran in another mode than its timed loop). Fake passes and a fake
clock: no timing here."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tests.ondevice.shipped import load_runner

runner = load_runner("bh_runner_profile_agreement")
protocol = runner.protocol
#: the pass logic, as the runner imported it (its sibling on the device)
passes = runner.profile_pass
TIMED_MS = 1.2


def _passes(medians: list[float | None], tmp_path: Path) -> tuple[Callable[[], object], list]:
    """One pass per call, each with its own trace file and runs around the given median (None:
    a failed pass)."""
    made: list = []
    it: Iterator[float | None] = iter(medians)

    def one() -> object:
        median = next(it)
        if median is None:
            profile = protocol.Profile(error="the profiler failed")
        else:
            trace = tmp_path / f"trace-{len(made)}.json"
            trace.write_text("{}")
            profile = protocol.Profile(
                source=protocol.ORT_PROFILE, profile_file=str(trace),
                run_ms=[median * 0.99, median, median * 1.01],
            )  # fmt: skip
        made.append(profile)
        return profile

    return one, made


def _clock(step_s: float) -> Callable[[], float]:
    now = [0.0]

    def tick() -> float:
        now[0] += step_s
        return now[0]

    return tick


def test_a_pass_at_the_timed_speed_is_kept_at_once(tmp_path: Path) -> None:
    one, made = _passes([1.25], tmp_path)
    kept = passes.profile_agreeing(one, TIMED_MS, 10.0, _clock(0.1))
    assert kept is made[0] and kept.attempts == 1
    assert Path(kept.profile_file).exists()


def test_a_pass_in_another_mode_is_run_again_and_only_the_kept_trace_stays(
    tmp_path: Path,
) -> None:
    one, made = _passes([0.55, 1.18], tmp_path)  # the fast mode first, then the timed one's
    kept = passes.profile_agreeing(one, TIMED_MS, 10.0, _clock(0.1))
    assert kept is made[1] and kept.attempts == 2
    assert not Path(made[0].profile_file).exists() and Path(kept.profile_file).exists()


def test_when_no_pass_agrees_the_closest_is_kept_after_the_last_attempt(tmp_path: Path) -> None:
    one, made = _passes([0.55, 0.8, 0.6, 1.2], tmp_path)
    kept = passes.profile_agreeing(one, TIMED_MS, 10.0, _clock(0.1))
    assert kept.attempts == passes.PROFILE_ATTEMPTS == 3
    assert kept is made[1] and len(made) == 3
    assert [Path(p.profile_file).exists() for p in made] == [False, True, False]


@pytest.mark.parametrize(("within_s", "step_s"), [(0.0, 0.1), (10.0, 10.0)])
def test_no_second_pass_on_a_runner_without_a_cap_or_once_the_cap_is_spent(
    tmp_path: Path, within_s: float, step_s: float
) -> None:
    one, made = _passes([0.55, 1.2], tmp_path)
    kept = passes.profile_agreeing(one, TIMED_MS, within_s, _clock(step_s))
    assert kept is made[0] and kept.attempts == 1


def test_a_failed_pass_is_not_repeated(tmp_path: Path) -> None:
    one, made = _passes([None, 1.2], tmp_path)
    kept = passes.profile_agreeing(one, TIMED_MS, 10.0, _clock(0.1))
    assert kept is made[0] and kept.error and kept.attempts == 1


def test_without_a_timed_median_one_pass_is_all(tmp_path: Path) -> None:
    one, made = _passes([0.55, 1.2, 1.2], tmp_path)
    kept = passes.profile_agreeing(one, None, 10.0, _clock(0.1))
    assert kept is made[0] and kept.attempts == 1


def test_attempts_cross_the_protocol() -> None:
    result = protocol.RunnerResult(
        runtime="litert", samples_ms=[1.0],
        profile=protocol.Profile(source=protocol.LITERT_PROFILE, run_ms=[1.0], attempts=2),
    )  # fmt: skip
    back = protocol.decode(protocol.encode(result))
    assert back is not None and back.profile is not None and back.profile.attempts == 2
    data = json.loads(json.dumps(dataclasses.asdict(result)))
    data["profile"]["attempts"] = "2"
    with pytest.raises(protocol.ProtocolError, match=r"result\.profile\.attempts"):
        protocol.from_dict(data)


def test_the_pass_speed_is_its_run_median_or_its_operator_time_where_runs_hold_the_profiler(
) -> None:
    # ONNX Runtime's profiled runs of shufflenet_v2_x0_5 ran ~0.5 ms slower than its timed ones
    # in every pass (172 nodes: the profiler's work between them), while their operators added
    # up to the timed median: its runs say nothing of the speed the operators ran at
    plain = protocol.Profile(source=protocol.LITERT_PROFILE, run_ms=[1.4, 1.5, 1.6, 9.0])
    assert plain.pass_ms() == pytest.approx(1.55)
    ort_pass = protocol.Profile(source=protocol.ORT_PROFILE, run_ms=[1.4, 1.5], ops_ms=0.98)
    assert ort_pass.pass_ms() == pytest.approx(0.98)
    assert protocol.Profile(source=protocol.ORT_PROFILE).pass_ms() is None


def test_an_ort_pass_slow_only_by_its_profilers_work_is_not_repeated() -> None:
    def one() -> object:
        return protocol.Profile(source=protocol.ORT_PROFILE, run_ms=[TIMED_MS + 0.5],
                                ops_ms=TIMED_MS * 1.03)  # fmt: skip

    assert passes.profile_agreeing(one, TIMED_MS, 10.0, _clock(0.1)).attempts == 1


def test_kernel_time_is_summed_per_run_from_a_real_trace(tmp_path: Path) -> None:
    # three Relu nodes in a chain: three kernel events in each model_run
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"r{i}") for i in range(3)]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("t3", TensorProto.FLOAT, [1, 8])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "chain.onnx"
    onnx.save(model, str(path))
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "trace")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for _ in range(4):
        session.run(None, {"t0": np.ones((1, 8), np.float32)})
    trace = session.end_profiling()
    got = passes.kernel_ms_per_run(trace)
    assert got is not None
    nodes_per_run, ms = got
    events = json.loads(Path(trace).read_text())
    kernel_us = sorted(
        e["dur"] for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
    )
    assert nodes_per_run == pytest.approx(3.0)
    # a run's three kernels: at least the three shortest events, at most the three longest
    assert sum(kernel_us[:3]) / 1e3 <= ms <= sum(kernel_us[-3:]) / 1e3
    cost = passes.ops_ms((nodes_per_run, ms), 2.0)
    assert cost == pytest.approx(ms - 3 * 2.0 / 1e3)
    (tmp_path / "broken.json").write_text("[{")
    assert passes.kernel_ms_per_run(str(tmp_path / "broken.json")) is None
