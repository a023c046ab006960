"""``--formats pte`` end to end: ExecuTorch programs timed by the python runner on this host
through the CLI, and by ``executor_runner`` on an emulated phone over the real adb client; and
ExecuTorch left unimported when no job asks for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from benchharness.api import RunRequest, run
from benchharness.ondevice.method import WARMUP_DEFAULT
from benchharness.ondevice.protocol import DEFAULT_PROFILE_RUNS
from benchharness.plan.options import Method, RunOptions
from benchharness.results.store import RunStore
from benchharness.runners.native_pte import PROFILE_WARMUP_RUNS, warmup_executions
from tests.support.adbd import DEVICE_TMP, EmulatedDevice
from tests.support.executor_runner import calls, install_executor_runner

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(34)

TINY = "tests.support.tiny:tiny_cnn"
ROOT = Path(__file__).resolve().parents[1]
#: Small measuring settings: the format's path is under test here, not the method.
FAST_METHOD = Method(quick=True, min_s=0.2, min_n=20, warmup_min_s=0.1)
FAST = ["--quick", "--min-time", "0.2", "--min-runs", "20", "--warmup-time", "0.1"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_bench_run_local_formats_pte_gives_a_row_and_operator_rows(results_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchharness.cli", "run", "--device", "local", "--models", TINY,
         "--input-shape", "1x3x32x32", "--formats", "pte", "--threads", "1", *FAST,
         "--results-dir", str(results_dir), "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=ENV,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    store = RunStore.open(results_dir, json.loads(proc.stdout[proc.stdout.index("{") :])["run_id"])
    (row,) = store.runs
    assert (row.format, row.status, row.runtime, row.provider) == (
        "pte", "ok", "executorch", "XNNPACK",
    )  # fmt: skip
    assert row.runtime_version == metadata.version("executorch") and row.threads == 1
    assert row.artifact.endswith(".pte") and row.median_ms > 0 and row.n >= 20
    assert row.cold_ms > 0 and row.load_ms > 0 and row.warmup_n > 0
    assert row.macs > 0 and row.params > 0 and row.flops > 0 and row.model_bytes > 0
    assert row.max_abs_err <= row.tolerance
    ops = store.ops
    assert ops and {o.runtime for o in ops} == {"executorch"}
    assert sum(o.macs or 0 for o in ops) == row.macs, "graph MACs lost in the join"
    assert any(o.op_name.startswith("Convolution") for o in ops)
    assert row.ops_sum_ratio > 0
    assert [s for s in store.samples if s.format == "pte"]


def test_nothing_imports_executorch_when_no_job_is_pte(tmp_path: Path) -> None:
    code = f"""
import sys
from benchharness.api import RunRequest, run
from benchharness.plan.options import Method, RunOptions
import benchharness.cli.app, benchharness.dispatch.op_profile, benchharness.report.html
method = Method(quick=True, min_s=0.1, min_n=10, warmup_min_s=0.05)
store = run(RunRequest(devices=("local",), models={TINY!r}, input_shape="1x3x32x32",
            formats=("onnx",), results_dir=__import__("pathlib").Path({str(tmp_path)!r}),
            options=RunOptions(method=method)))
assert [r.status for r in store.runs] == ["ok"], store.runs
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("executorch", "torchao"))
assert not loaded, loaded
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=ENV)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture
def phone(
    adb_server: Any, adb_device_factory: Callable[..., EmulatedDevice],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> tuple[EmulatedDevice, Path]:  # fmt: skip
    """An emulated phone whose profile names only ExecuTorch's executor_runner."""
    for key, value in adb_server.env.items():
        monkeypatch.setenv(key, value)
    device = adb_device_factory()
    profile = tmp_path / "phone.toml"
    profile.write_text(
        f'name = "phone"\ntransport = "adb"\nserial = "{device.serial}"\n'
        f'workdir = "{DEVICE_TMP}/benchharness"\nthreads = 1\naffinity = "1"\n'
        f'[runtimes]\nexecutor_runner = "{DEVICE_TMP}/executor_runner"\n'
    )
    return device, profile


def test_executor_runner_on_a_phone_without_python(
    phone: tuple[EmulatedDevice, Path], tmp_path: Path
) -> None:
    device, profile = phone
    tool = install_executor_runner(device.sandbox / "executor_runner")
    store = run(RunRequest(devices=(str(profile),), models=TINY, input_shape="1x3x32x32",
                           formats=("pte",), options=RunOptions(method=FAST_METHOD),
                           results_dir=tmp_path / "results"))  # fmt: skip
    (row,) = store.runs
    assert row.status == "ok", row.error
    assert (row.runtime, row.provider, row.transport) == (
        "executorch-executor_runner", "XNNPACK", "adb",
    )  # fmt: skip
    assert row.runtime_version.startswith("sha256:")
    assert row.runtime_version.endswith(f"{DEVICE_TMP}/executor_runner")
    assert row.stats_source == "executor_runner" and row.n >= 20
    assert row.cold_ms > 0 and row.load_ms > 0 and row.threads == 1
    # every execution is printed: the samples are the tool's own per-inference times
    assert len([s for s in store.samples if s.format == "pte"]) == row.n
    ops = store.ops
    assert ops and sum(o.macs or 0 for o in ops) == row.macs

    pilot, timed, profiled = calls(tool)
    assert pilot["argv"][1:] == ["--num_executions=10", "--cpu_threads=1"]
    model = Path(timed["argv"][0].removeprefix("--model_path="))
    assert model.parent == device.sandbox / "benchharness" / "artifacts" and model.suffix == ".pte"
    executions = int(timed["argv"][1].removeprefix("--num_executions="))
    # cold + docs/method.md's warm-up minimum and two windows + at least min_n measured
    assert executions >= 1 + warmup_executions(WARMUP_DEFAULT, None) + 20
    assert timed["cpus"] == [0], "taskset 1 was not applied"
    assert profiled["argv"][1] == f"--num_executions={PROFILE_WARMUP_RUNS + DEFAULT_PROFILE_RUNS}"
    assert profiled["argv"][-1].startswith("--etdump_path=")
    # the ETDump was pulled and removed with the run's work directory
    assert not (device.sandbox / "benchharness" / store.run_id).exists()
