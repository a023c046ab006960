"""Faults of a run, produced for real: ``--resume .`` and hostile run ids against a device's work
directory, two writers of one run, Ctrl-C in a run of two devices, one board under two profiles,
a resumed row's environment, a run killed between its CSV writes, markup in names and errors.

The runner on the devices is a stand-in python3 (as in test_malformed_results.py): it prints the
result its "model" file holds, after sleeping as long as the file says, so a test can hold a
runner on a device for as long as it needs without depending on how fast anything is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchharness.api import RunRequest, run
from benchharness.dispatch.locks import device_lock
from benchharness.dispatch.session import DeviceSession
from benchharness.errors import DeviceLockError, ResultsError
from benchharness.ondevice.protocol import RESULT_MARKER, RunnerResult
from benchharness.plan.options import Method, RunOptions
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from benchharness.transport.local import LocalTransport
from tests.support.sshd import SSHServer

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(25)

pytest_plugins = ["tests.support.fixtures"]

ROOT = Path(__file__).resolve().parents[2]
#: Marks the stand-in's processes, so a test can find any left running.
MARK = "bh-fault-test-runner"

FAKE_PYTHON = f"""#!/bin/sh
# {MARK}
model=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--model" ]; then model="$2"; fi
  shift
done
pause=$(head -c 4 "$model")
[ "$pause" != 0000 ] && exec sh -c 'sleep "$1"; printf "\\n{RESULT_MARKER}"; tail -n +2 "$2"' \
  {MARK} "$pause" "$model"
printf '\\n{RESULT_MARKER}'
tail -n +2 "$model"
"""

RESULT = RunnerResult(
    runtime="fake", runtime_version="1", provider="cpu", threads=1, warmup_n=10,
    samples_ms=[1.0, 1.1, 0.9, 1.0] * 20,
).to_json()  # fmt: skip


def fake_python(directory: Path) -> str:
    path = directory / "python3"
    path.write_text(FAKE_PYTHON)
    path.chmod(0o755)
    return str(path)


def model(directory: Path, name: str, pause_s: int = 0) -> str:
    """A "model" file the stand-in runner answers after ``pause_s`` seconds: four digits of
    pause, then the TFLite file identifier (the harness checks a model file is one), then the
    result line."""
    path = directory / f"{name}.tflite"
    path.write_text(f"{pause_s:04d}TFL3\n{RESULT}\n")
    return str(path)


def toml(path: Path, fields: dict[str, Any], python: str) -> str:
    lines = [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    path.write_text("\n".join([*lines, "[runtimes]", f"python = {json.dumps(python)}"]) + "\n")
    return str(path)


def ssh_fields(server: SSHServer, workdir: Path, name: str = "board") -> dict[str, Any]:
    return {
        "name": name, "transport": "ssh", "host": server.host, "port": server.port,
        "user": server.user, "key_file": str(server.client_key),
        "known_hosts": str(server.known_hosts), "workdir": str(workdir),
    }  # fmt: skip


def leftover_runners() -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if MARK in line and "ps -eo" not in line]


QUICK = RunOptions(processes=1, profile_ops=False)


# ------------------------------------------------------------------ 1. rm -rf of the workdir


def test_resume_dot_removes_only_the_runs_own_folder_on_the_device(
    sshd_server: SSHServer, tmp_path: Path
) -> None:
    work = tmp_path / "board-work"
    work.mkdir(mode=0o700)
    (work / "other-run").mkdir()
    (work / "other-run" / "samples.bin").write_text("keep")
    (work / "benchmark_model").write_text("a pushed tool")
    board = toml(tmp_path / "board.toml", ssh_fields(sshd_server, work), fake_python(tmp_path))
    models = f"{model(tmp_path, 'a')},{model(tmp_path, 'b')}"
    first = run(RunRequest(devices=(board,), models=models, results_dir=tmp_path / "r", options=QUICK))
    # interrupted after one job, as far as the store is concerned
    first.runs = [r for r in first.runs if r.model == "a"]
    first.flush()
    os.chdir(first.path)
    try:
        resumed = run(RunRequest(resume=".", results_dir=tmp_path / "r"))
    finally:
        os.chdir(ROOT)
    assert resumed.run_id == first.run_id
    assert sorted(r.status for r in resumed.runs) == ["ok", "ok"]
    assert (work / "other-run" / "samples.bin").read_text() == "keep"
    assert (work / "benchmark_model").read_text() == "a pushed tool"
    assert not (work / first.run_id).exists(), "the run's own folder is gone"


class RecordingTransport(LocalTransport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def run(self, argv: Any, **kw: Any) -> Any:
        self.calls.append([str(a) for a in argv])
        return super().run(argv, **kw)


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/../..", "-rf"])
def test_a_session_refuses_a_hostile_run_id_before_touching_the_device(bad: str) -> None:
    transport = RecordingTransport()
    profile = DeviceProfile(name="board", transport="ssh", host="h", workdir="/w")
    with pytest.raises(ResultsError, match="not a valid run id"):
        DeviceSession(profile, bad, lambda p: transport)
    assert transport.calls == []


def test_close_removes_exactly_workdir_slash_run_id(tmp_path: Path) -> None:
    transport = RecordingTransport()
    work = tmp_path / "w"
    profile = DeviceProfile(name="board", transport="ssh", host="h", workdir=str(work))
    session = DeviceSession(profile, "20261201-000000-abcd", lambda p: transport)
    session.ensure_workdir()
    session.close()
    removals = [c for c in transport.calls if c[:2] == ["rm", "-rf"]]
    assert removals == [["rm", "-rf", f"{work.resolve()}/20261201-000000-abcd"]]


# ------------------------------------------------------------------ 2. two writers of one run


def test_a_second_resume_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    python = fake_python(tmp_path)
    here = toml(tmp_path / "here.toml", {"name": "here", "transport": "local"}, python)
    slow = model(tmp_path, "slow", pause_s=6)
    fast = model(tmp_path, "fast")
    first = run(RunRequest(devices=(here,), models=f"{fast},{slow}",
                           results_dir=tmp_path / "r", options=QUICK))  # fmt: skip
    first.runs, first.samples = [], []  # as if interrupted before any job finished
    first.flush()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "benchharness.cli", "run", "--resume", first.run_id,
           "--results-dir", str(tmp_path / "r")]  # fmt: skip
    one = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not leftover_runners() and one.poll() is None:
        time.sleep(0.1)
    assert leftover_runners(), f"the first resume never started its runner: {one.communicate()}"
    two = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert two.returncode == 1, two.stderr
    assert f"ResultsError: run {first.run_id} is being written by bench pid {one.pid}" in two.stderr
    assert "Traceback" not in two.stderr
    _, err = one.communicate(timeout=120)
    assert one.returncode == 0, err[-2000:]
    final = RunStore.open(tmp_path / "r", first.run_id)
    assert sorted((r.model, r.status) for r in final.runs) == [("fast", "ok"), ("slow", "ok")]


# ------------------------------------------------------------------ 4. Ctrl-C, two devices


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: What each way of stopping ``bench`` must end with: Ctrl-C's 130, and SIGTERM's 143 (a plain
#: ``kill``, a CI job's timeout, systemd stopping a service), both after the same cleanup.
STOPS = {signal.SIGINT: 130, signal.SIGTERM: 143}


@pytest.mark.parametrize("stop", list(STOPS), ids=lambda s: signal.Signals(s).name)
def test_ctrl_c_in_a_run_of_two_devices_leaves_no_runner_on_either(
    sshd_server: SSHServer, tmp_path: Path, stop: signal.Signals
) -> None:
    python = fake_python(tmp_path)
    here = toml(tmp_path / "here.toml", {"name": "here", "transport": "local"}, python)
    work = tmp_path / "board-work"
    board = toml(tmp_path / "board.toml", ssh_fields(sshd_server, work), python)
    models = ",".join(model(tmp_path, f"m{i}", pause_s=120) for i in range(2))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "benchharness.cli", "run", "--device", here, "--device", board,
           "--models", models, "--processes", "1", "--no-ops",
           "--results-dir", str(tmp_path / "r")]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(leftover_runners()) < 2:
        time.sleep(0.2)
    assert len(leftover_runners()) >= 2, "both devices should be running a runner"
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == STOPS[stop], err[-2000:]
    assert "Traceback" not in err
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and leftover_runners():
        time.sleep(0.2)
    assert leftover_runners() == [], "a runner was left running on a device"
    assert not any(work.glob("2*")), "the run's folder on the board was removed"


# ------------------------------------------------------------------ 8. one board, two profiles


def test_two_profiles_of_one_board_never_hold_it_at_once() -> None:
    a = DeviceProfile(name="rpi4", transport="ssh", host="10.0.0.7", port=22)
    b = DeviceProfile(name="rpi4-fast", transport="ssh", host="10.0.0.7", port=22, user="other")
    c = DeviceProfile(name="rpi5", transport="ssh", host="10.0.0.8", port=22)
    busy = r"rpi4-fast .*ssh:10\.0\.0\.7:22.* is busy"
    with device_lock(a):
        with pytest.raises(DeviceLockError, match=busy), device_lock(b):
            pass
        with device_lock(c):
            pass


# ------------------------------------------------------------------ 11. resume keeps the environment


def test_a_resumed_row_keeps_the_environment_of_its_first_process(tmp_path: Path) -> None:
    # the real runner on this host, whose probe reads the environment
    method = Method(quick=True, min_n=20, min_s=0.1, warmup_min_s=0.05)
    req = RunRequest(models="tests.support.tiny:tiny_cnn", input_shape="1x3x32x32",
                     formats=("onnx",), options=RunOptions(method=method, processes=2,
                                                           profile_ops=False),
                     results_dir=tmp_path / "r")  # fmt: skip
    store = run(req)
    (whole,) = store.runs
    assert whole.cpu_model, "this host's probe names its CPU"
    # interrupted after the first process: its samples stay, the row says partial
    store.samples = [s for s in store.samples if s.process == 0]
    store.runs = [whole.replace(status="partial", processes=1)]
    store.flush()
    (resumed,) = run(RunRequest(resume=store.run_id, results_dir=tmp_path / "r")).runs
    assert resumed.status == "ok" and resumed.processes == 2
    assert resumed.cpu_model == whole.cpu_model
    assert resumed.governor == whole.governor
    assert resumed.max_freq_mhz == whole.max_freq_mhz
    assert resumed.loadavg_start == whole.loadavg_start


def test_killed_between_the_csv_writes_then_resumed(tmp_path: Path) -> None:
    here = toml(tmp_path / "here.toml", {"name": "here", "transport": "local"},
                fake_python(tmp_path))  # fmt: skip
    models = f"{model(tmp_path, 'a')},{model(tmp_path, 'b')}"
    store = run(RunRequest(devices=(here,), models=models, results_dir=tmp_path / "r", options=QUICK))
    # kill -9 after samples.csv and ops.csv were replaced but before runs.csv: b's samples are
    # on disk, its row is not (runs.csv is written last: it commits a job)
    store.runs = [r for r in store.runs if r.model == "a"]
    from benchharness.results.store import RUNS_COLUMNS, atomic_write_text, rows_to_csv

    atomic_write_text(store.path / "runs.csv", rows_to_csv(RUNS_COLUMNS, store.runs))
    again = run(RunRequest(resume=store.run_id, results_dir=tmp_path / "r"))
    assert sorted((r.model, r.status) for r in again.runs) == [("a", "ok"), ("b", "ok")]
    per_job: dict[str, int] = {}
    for s in again.samples:
        per_job[s.job_id] = per_job.get(s.job_id, 0) + 1
    assert sorted(per_job.values()) == [80, 80], "no sample twice, none lost"


def test_a_run_stored_with_a_flat_request_resumes_as_it_was_asked(tmp_path: Path) -> None:
    # run.json as runs stored it before the request's options and method were nested
    here = toml(tmp_path / "here.toml", {"name": "here", "transport": "local"},
                fake_python(tmp_path))  # fmt: skip
    models = f"{model(tmp_path, 'a')},{model(tmp_path, 'b')}"
    options = RunOptions(processes=2, profile_ops=False, method=Method(quick=True))
    store = run(RunRequest(devices=(here,), models=models, results_dir=tmp_path / "r",
                           options=options))  # fmt: skip
    store.meta["request"] = {
        "devices": [here], "models": models, "formats": ["onnx", "tflite"], "threads": None,
        "affinity": None, "quick": True, "processes": 2, "input_shape": None,
        "profile_ops": False, "resume": None, "timeout_s": None, "min_n": None, "min_s": None,
        "max_s": None, "warmup_min_s": None, "seed": None, "results_dir": str(tmp_path / "r"),
        "precisions": ["fp32"], "calibration": None, "resolutions": [], "widths": [],
        "force": False, "scheduler": None, "max_processes": None, "process_ci_rel": None,
        "manifest": None,
    }  # fmt: skip
    store.write_meta()
    store.runs = [r for r in store.runs if r.model == "a"]
    store.samples = [s for s in store.samples if s.model == "a"]
    store.flush()
    again = run(RunRequest(resume=store.run_id, results_dir=tmp_path / "r"))
    # the flat request's fixed count holds: the default would run 5 processes or more
    assert sorted((r.model, r.status, r.processes) for r in again.runs) == [
        ("a", "ok", 2), ("b", "ok", 2)
    ]  # fmt: skip
    assert again.meta["method"]["preset"] == "quick"


# ------------------------------------------------------------------ 5. markup in names and errors


def test_markup_in_a_model_name_and_an_error_prints_as_text(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path)
    store.add_job(RunRow(job_id="j1", device="d", model="net[/x]", format="onnx",
                         status="ok", median_ms=1.0, flags="HIGH_CV"))  # fmt: skip
    store.add_job(RunRow(job_id="j2", device="d", model="m", format="onnx",
                         status="failed", error="RunnerError: bad [/bold] thing [red]"))  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchharness.cli", "results", store.run_id, "--results-dir",
         str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "net[/x]" in proc.stdout and "bad [/bold] thing [red]" in proc.stdout


# ------------------------------------------------------------------ 11. --timeout


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_a_timeout_must_be_a_positive_number_of_seconds(value: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchharness.cli", "run", "--models", "resnet18", "--timeout",
         value, "--results-dir", str(tmp_path)], capture_output=True, text=True, env=env,
        cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "--timeout" in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir()), "refused before any run folder"
