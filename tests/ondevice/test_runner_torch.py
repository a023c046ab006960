"""The device-side runner's torch format: PyTorch eager on a torch.export program, on the CPU here
(this machine has no GPU); the CUDA event timing is checked against a stand-in for torch.cuda."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from benchharness.export import pipeline
from benchharness.ondevice.method import StoppingRule, WarmupRule
from benchharness.plan.options import Method
from benchharness.runners import python as python_runner
from benchharness.runners.python import RunnerSettings
from benchharness.zoo.registry import ModelSpec

REMOTE = python_runner.RUNNER_DIR / python_runner.RUNNER_SCRIPT
#: Short measuring: the runner's torch path is under test here, not the method.
FAST = RunnerSettings(fmt="torch", method=Method(quick=True, min_n=20, min_s=0.2, warmup_min_s=0.1),
                      threads=1)


@pytest.fixture(scope="module")
def device_copy(tiny_spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's .pt2, named as the host names artifacts it pushes to a device."""
    (outcome,) = pipeline.export_model(tiny_spec, ["torch"])
    assert outcome.entry is not None, outcome.error
    copy = tmp_path_factory.mktemp("device") / f"{outcome.entry.sha256[:16]}.torch"
    shutil.copy(outcome.entry.path, copy)
    return copy


@pytest.fixture(scope="module")
def remote() -> ModuleType:
    """runner.py imported as the device imports it: a script beside method.py, not a package."""
    sys.path.insert(0, str(python_runner.RUNNER_DIR))
    try:
        spec = importlib.util.spec_from_file_location("bh_remote_under_test", REMOTE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(python_runner.RUNNER_DIR))
    return module


def _run(argv: list[str], prelude: str) -> subprocess.CompletedProcess[str]:
    """runner.py run as a script after ``prelude`` (its directory first on sys.path, as then)."""
    code = (
        f"{prelude}import runpy, sys; sys.argv = {argv!r}; "
        f"sys.path.insert(0, {str(python_runner.RUNNER_DIR)!r}); "
        f"runpy.run_path({argv[0]!r}, run_name='__main__')"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)


def test_torch_runner_on_the_cpu_returns_samples(device_copy: Path) -> None:
    argv = python_runner.runner_argv(
        sys.executable, str(python_runner.RUNNER_DIR), str(device_copy),
        replace(FAST, profile_runs=5), None,
    )  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    result = python_runner.parse_output(proc.stdout, proc.stderr, proc.returncode)
    assert result.ok, result
    assert result.profile is not None and result.runtime_version is not None
    assert (result.runtime, result.provider, result.threads) == ("torch", "cpu", 1)
    assert result.runtime_version.split("+")[0] == __import__("torch").__version__.split("+")[0]
    assert len(result.samples_ms) >= 20 and all(s > 0 for s in result.samples_ms)
    assert result.cold_ms > 0 and result.warmup_n > 0
    assert result.outputs_finite and result.output_shapes == [[1, 10]]
    # no per-operator profile for torch: said so, not an error
    assert result.profile.source is None and "torch" in result.profile.error
    assert "Expect archive file" not in proc.stderr, "the .torch file name made torch warn"


def test_runner_imports_without_torch_and_a_torch_job_fails_cleanly(device_copy: Path) -> None:
    # torch blocked, as on a board with only onnxruntime/LiteRT: the runner must still start
    block = "import sys; sys.modules['torch'] = None; "
    proc = _run([str(REMOTE), "--model", str(device_copy), "--format", "torch"], prelude=block)
    result = python_runner.parse_output(proc.stdout, proc.stderr, proc.returncode)
    assert result.ok is False and "needs torch on the device" in result.error


class _FakeEvent:
    def __init__(self, log: list[str], name: str, enable_timing: bool) -> None:
        assert enable_timing
        self.log, self.name = log, name

    def record(self) -> None:
        self.log.append(f"record {self.name}")

    def synchronize(self) -> None:
        self.log.append(f"synchronize {self.name}")

    def elapsed_time(self, end: _FakeEvent) -> float:
        self.log.append(f"elapsed {self.name}->{end.name}")
        return 1.25  # ms, as CUDA events report


def test_cuda_event_timer_records_around_the_call_and_syncs_before_reading(
    remote: ModuleType,
) -> None:
    log: list[str] = []
    names = iter(["start", "end"])
    fake = SimpleNamespace(
        cuda=SimpleNamespace(
            Event=lambda enable_timing: _FakeEvent(log, next(names), enable_timing)
        )
    )
    timer = remote.runner_torch.CudaEventTimer(fake)
    ns = timer.time_ns(lambda: log.append("call"))
    assert ns == 1_250_000
    assert log == ["record start", "call", "record end", "synchronize end", "elapsed start->end"]


def test_measure_takes_samples_from_the_device_timer_when_a_runner_has_one(
    remote: ModuleType,
) -> None:
    class GpuLike:
        def __init__(self) -> None:
            self.host_runs = 0
            self.device_timer = lambda: 3_000_000  # 3 ms, as if from CUDA events

        def run(self) -> None:
            self.host_runs += 1

    runner = GpuLike()
    out: dict[str, Any] = remote.measure(
        runner, StoppingRule(min_n=10, min_s=0.0, adaptive=False), WarmupRule(min_n=5, min_s=0.0)
    )
    assert runner.host_runs == 1, "only the cold inference is timed with the host clock"
    assert out["samples_ms"] == [3.0] * len(out["samples_ms"]) and len(out["samples_ms"]) >= 10
    assert out["warmup_n"] >= 5


def test_accelerated_runners_warm_up_as_gpu_delegates(remote: ModuleType) -> None:
    args = remote.parse_args(["--model", "m", "--format", "torch"])
    _, warm_cpu = remote.rules(args)
    _, warm_gpu = remote.rules(args, accelerated=True)
    assert (warm_cpu.min_s, warm_gpu.min_s) == (1.0, 2.0)
