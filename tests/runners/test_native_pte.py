"""executor_runner's driver: how many executions docs/method.md asks of it, who runs the program, and a
build without the event tracer (a real invocation of the stand-in, which refuses the flag as such a
build does)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchharness.export import pipeline
from benchharness.ondevice.method import QUICK, StoppingRule, WarmupRule
from benchharness.parse.native_result import EXECUTOR_RUNNER, TOOLS
from benchharness.runners import native_pte as drv
from benchharness.runners.native import native_tool
from benchharness.runners.python import RunnerSettings
from benchharness.transport.local import LocalTransport
from benchharness.zoo.registry import ModelSpec
from tests.runners.test_native import profile
from tests.support.executor_runner import calls, install_executor_runner


def test_auto_takes_executor_runner_for_pte_on_a_device_without_python() -> None:
    assert TOOLS["pte"] is EXECUTOR_RUNNER
    p = profile(runtimes={"executor_runner": "/data/local/tmp/er"})
    assert native_tool(p, "pte") is EXECUTOR_RUNNER
    assert native_tool(profile(runtimes={"python": "/usr/bin/python3"}), "pte") is None


def test_executions_cover_cold_warmup_and_the_measuring_minimums() -> None:
    warm = WarmupRule(min_n=10, min_s=1.0, window=20)
    # 2 ms per inference: 1 s of warm-up is 500 executions, 5 s of measuring 2500
    assert drv.warmup_executions(warm, 2.0) == 500 + 40
    assert drv.timed_executions(QUICK, warm, 2.0) == 1 + 540 + 2500
    # a slow model: the minimum counts win, and the cap bounds the measured part
    slow = StoppingRule(min_n=64, min_s=5.0, max_s=120.0, adaptive=False)
    assert drv.warmup_executions(warm, 3000.0) == 10 + 40
    assert drv.timed_executions(slow, warm, 3000.0) == 1 + 50 + math.floor(120_000 / 3000)
    # no estimate: the counts alone
    assert drv.timed_executions(slow, warm, None) == 1 + 50 + 64


def test_a_build_without_the_event_tracer_gives_a_profile_error_not_a_failed_job(
    tiny_spec: ModelSpec, tmp_path: Path
) -> None:
    (outcome,) = pipeline.export_model(tiny_spec, ["pte"])
    assert outcome.entry is not None, outcome.error
    tool = install_executor_runner(tmp_path / "executor_runner", event_tracer=False)
    session = SimpleNamespace(transport=LocalTransport(), workdir=str(tmp_path), local=True)
    artifact = SimpleNamespace(path=outcome.entry.path, sha256=outcome.entry.sha256)
    settings = RunnerSettings(fmt="pte", threads=1, profile_runs=10)
    prof = drv.profile(session, EXECUTOR_RUNNER, str(tool), str(outcome.entry.path), settings,
                       60.0, artifact)  # fmt: skip
    assert prof.source is None and "unknown command line flag 'etdump_path'" in (prof.error or "")
    (call,) = calls(tool)
    assert call["argv"][-1].startswith(f"--etdump_path={tmp_path}/etdump-")
    assert drv.provider_of(artifact) == "XNNPACK"


def test_the_provider_of_an_unreadable_artifact_is_left_empty(tmp_path: Path) -> None:
    bad = tmp_path / "x.pte"
    bad.write_bytes(b"\x00" * 16)
    assert drv.provider_of(SimpleNamespace(path=bad)) == ""
    assert drv.provider_of(SimpleNamespace(path=tmp_path / "missing.pte")) == ""


@pytest.mark.parametrize("threads", [None, 3])
def test_the_pilot_and_timed_invocations_pass_threads_only_when_set(threads: int | None) -> None:
    settings = RunnerSettings(fmt="pte", threads=threads, affinity="f")
    argv = drv.argv_for("er", "m.pte", settings, 7, None)
    assert argv[:3] == ["taskset", "f", "er"]
    assert ("--cpu_threads=3" in argv) == (threads == 3)
