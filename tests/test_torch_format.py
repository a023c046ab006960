"""``--formats torch`` end to end: PyTorch eager on a torch.export program, on this host's CPU
through the CLI, and shipped over a real SSH server as other formats are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchharness.api import RunRequest, run
from benchharness.plan.options import Method, RunOptions
from benchharness.results.store import RunStore
from tests.support.sshd import SSHServer

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(10)

TINY = "tests.support.tiny:tiny_cnn"
#: Small measuring settings: the format's path is under test here, not the method.
FAST_METHOD = Method(quick=True, min_s=0.2, min_n=20, warmup_min_s=0.1)
FAST = ["--quick", "--min-time", "0.2", "--min-runs", "20", "--warmup-time", "0.1"]
ROOT = Path(__file__).resolve().parents[1]


def test_bench_run_local_formats_torch_quick_gives_an_ok_row(results_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchharness.cli", "run", "--device", "local", "--models", TINY,
         "--input-shape", "1x3x32x32", "--formats", "torch", "--threads", "1", *FAST,
         "--results-dir", str(results_dir), "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout[proc.stdout.index("{") :])
    (row,) = RunStore.open(results_dir, data["run_id"]).runs
    assert (row.format, row.status, row.runtime, row.provider) == (
        "torch", "ok", "torch", "cpu",
    )  # fmt: skip
    assert row.artifact.endswith(".pt2") and float(row.median_ms) > 0
    assert int(row.n) >= 20 and row.precision == "fp32"
    # cost from torch (paper-convention MACs, params); no per-operator rows for torch
    assert int(row.macs) > 0 and int(row.params) > 0 and int(row.model_bytes) > 0
    assert not RunStore.open(results_dir, data["run_id"]).ops


def test_formats_torch_over_ssh(sshd_server: SSHServer, tmp_path: Path) -> None:
    profile = tmp_path / "board.toml"
    profile.write_text(
        f'name = "board"\ntransport = "ssh"\nhost = "{sshd_server.host}"\n'
        f'port = {sshd_server.port}\nuser = "{sshd_server.user}"\n'
        f'key_file = "{sshd_server.client_key}"\nknown_hosts = "{sshd_server.known_hosts}"\n'
        f'workdir = "{tmp_path / "work"}"\nthreads = 1\n[runtimes]\npython = "{sys.executable}"\n'
    )
    store = run(RunRequest(devices=(str(profile),), models=TINY, input_shape="1x3x32x32",
                           formats=("torch",), results_dir=tmp_path / "results",
                           options=RunOptions(method=FAST_METHOD)))  # fmt: skip
    (row,) = store.runs
    assert (row.status, row.transport, row.runtime) == ("ok", "ssh", "torch"), row
    assert [p.suffix for p in (tmp_path / "work" / "artifacts").iterdir()] == [".torch"]
