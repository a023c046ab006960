"""The farm for real: a ``dask scheduler`` process and two ``bench worker`` processes on loopback.

Worker A holds this host (transport local, class ``x86``) and an emulated phone reached with the
real adb client; worker B holds a board reached over a real OpenSSH server on 127.0.0.1 (class
``x86`` too: it is this same machine). Faults are real: a worker ``kill -9``ed while a runner is
held at its gate (tests/support/farm.py), the board's sshd killed mid-process, the scheduler
killed mid-run. Nothing here times anything; the assertions are about rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed", reason="the farm needs Dask: pip install -e '.[farm]'")

from benchharness.api import RunRequest, run
from benchharness.errors import SchedulerLostError
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from tests.support.adbd import EmulatedDevice
from tests.support.farm import ROOT, Gate, Scheduler, Worker, toml, wait_until
from tests.support.fixtures import AdbServer, require_adb, require_sshd
from tests.support.sshd import SSHServer

TINY = "tests.support.tiny:tiny_cnn"
FAST: dict[str, Any] = {"quick": True, "min_s": 0.2, "min_n": 20, "warmup_min_s": 0.1,
                        "input_shape": "1x3x32x32", "models": TINY}  # fmt: skip
HOST = socket.gethostname()


@dataclass
class Lab:
    """A scheduler, worker A (host-a, phone) and worker B (board), each device behind a gate."""

    dir: Path
    scheduler: Scheduler
    sshd: SSHServer
    phone: EmulatedDevice
    adb: AdbServer
    gates: dict[str, Gate]
    profiles: dict[str, Path]
    workers: dict[str, Worker] = field(default_factory=dict)

    def start_workers(self) -> None:
        self.workers["a"] = Worker(self.dir, "a", self.scheduler.address,
                                   [self.profiles["host-a"], self.profiles["phone"]],
                                   env=self.adb.env)  # fmt: skip
        self.workers["b"] = Worker(self.dir, "b", self.scheduler.address, [self.profiles["board"]])
        for w in self.workers.values():
            w.wait_serving()

    def request(self, *devices: str, **kw: Any) -> RunRequest:
        fields = {**FAST, **kw}
        return RunRequest(devices=devices, scheduler=self.scheduler.address,
                          results_dir=self.dir / "results", **fields)  # fmt: skip

    def stop(self) -> None:
        for gate in self.gates.values():
            gate.release()
        for w in self.workers.values():
            w.stop()
        self.scheduler.stop()
        self.adb.adb("disconnect", self.phone.serial)
        self.phone.stop()
        self.sshd.kill()


@contextlib.contextmanager
def make_lab(tmp: Path, adb: AdbServer) -> Iterator[Lab]:
    require_sshd()
    require_adb()
    sshd = SSHServer(tmp / "sshd")
    sshd.start()
    phone = EmulatedDevice(tmp / "phone-sandbox")
    phone.start()
    connected = adb.adb("connect", phone.serial)
    assert "connected" in connected.stdout, connected.stdout
    gates = {name: Gate(tmp, name) for name in ("host-a", "phone", "board")}
    profiles = {
        "host-a": toml(tmp / "host-a.toml", {"name": "host-a", "transport": "local",
                                             "class": "x86"}, str(gates["host-a"].python)),
        "phone": toml(tmp / "phone.toml", {"name": "phone", "transport": "adb",
                                           "serial": phone.serial,
                                           "workdir": "/data/local/tmp/benchharness"},
                      str(gates["phone"].python)),
        "board": toml(tmp / "board.toml", {"name": "board", "transport": "ssh", "class": "x86",
                                           "host": sshd.host, "port": sshd.port,
                                           "user": sshd.user, "key_file": str(sshd.client_key),
                                           "known_hosts": str(sshd.known_hosts),
                                           "workdir": str(tmp / "board-work")},
                      str(gates["board"].python)),
    }  # fmt: skip
    lab = Lab(tmp, Scheduler(tmp), sshd, phone, adb, gates, profiles)
    try:
        lab.start_workers()
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, adb_server: AdbServer) -> Iterator[Lab]:
    """One farm for the tests that leave it standing (the last one withdraws the board)."""
    with make_lab(tmp_path_factory.mktemp("farm"), adb_server) as made:
        yield made


@pytest.fixture
def fresh_lab(tmp_path: Path, adb_server: AdbServer) -> Iterator[Lab]:
    """A farm of its own, for a test that kills part of it."""
    with make_lab(tmp_path, adb_server) as made:
        yield made


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the test, which asserts on it
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "benchharness.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=ROOT)  # fmt: skip


def farm_listing(lab: Lab) -> list[dict[str, Any]]:
    proc = bench("devices", "--scheduler", lab.scheduler.address, "--json")
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


# --- the farm standing -------------------------------------------------------------------------


def test_a_run_across_both_hosts_lands_every_row_once(lab: Lab) -> None:
    listing = {r["device"]: r for r in farm_listing(lab)}
    assert set(listing) == {"host-a", "phone", "board"}
    # one Dask worker per device, named after its bench worker
    assert {r["name"].split("/")[0] for r in listing.values()} == {"a", "b"}
    assert listing["host-a"]["name"] == "a/host-a/x86" and listing["board"]["name"] == "b/board/x86"
    assert all(r["state"] == "idle" and r["host"] == HOST for r in listing.values())
    assert listing["board"]["class"] == "x86" and listing["phone"]["class"] is None

    store = run(lab.request("host-a", "phone", "board", processes=2))
    ids = Counter(r.job_id for r in store.runs)
    assert len(ids) == 6 and set(ids.values()) == {1}, ids
    for r in store.runs:
        assert r.status == "ok", r
        # each device asked for ran its own jobs, through its own transport
        assert r.worker_device == r.device and r.worker_host == HOST
        assert r.transport == {"host-a": "local", "phone": "adb", "board": "ssh"}[r.device]
        assert r.processes == 2
    reread = RunStore.open(lab.dir / "results", store.run_id)
    assert Counter(r.job_id for r in reread.runs) == ids
    per_job = {(s.job_id, s.process) for s in reread.samples}
    assert {p for _, p in per_job} == {0, 1}
    assert {o.device for o in reread.ops if o.format == "onnx"} == {
        "host-a",
        "phone",
        "board",
    }
    # the artifacts went once to each host (worker A's two devices share its cache), by hash
    sent = reread.meta["farm"]["sent_bytes"]
    assert len(sent) == 3 and sorted(n > 0 for n in sent.values()) == [False, True, True]
    for worker in lab.workers.values():
        assert {p.suffix for p in worker.cache.iterdir()} == {".onnx", ".tflite"}
    # the runs' work directories were removed at the end, the pushed artifacts kept
    assert not (lab.dir / "board-work" / store.run_id).exists()
    assert (lab.dir / "board-work" / "artifacts").is_dir()


def test_a_second_run_sends_no_artifact_again(lab: Lab) -> None:
    store = run(lab.request("board", formats=("onnx",), profile_ops=False))
    assert [r.status for r in store.runs] == ["ok"]
    assert set(store.meta["farm"]["sent_bytes"].values()) == {0}


def test_a_device_no_worker_has_fails_at_once(lab: Lab) -> None:
    results = lab.dir / "nowhere"
    proc = bench("run", "--scheduler", lab.scheduler.address, "--device", "pixel9",
                 "--models", TINY, "--results-dir", str(results))  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("FarmError: ") and "'pixel9'" in last
    assert "board" in last and "x86" in last  # it says what the farm does hold
    assert not results.exists(), "nothing may be exported or written for a device nobody has"


def test_a_board_that_vanishes_mid_process_is_withdrawn_and_its_jobs_move(lab: Lab) -> None:
    gate = lab.gates["board"]
    gate.hold()
    thread, box = in_thread(lambda: run(lab.request("board", profile_ops=False)))
    wait_until(lambda: gate.started() > 0 and gate.dir.joinpath("busy").exists(), "a board run")
    lab.sshd.kill()  # the board loses power while its runner is held at the gate
    gate.release()
    thread.join(240)
    assert not thread.is_alive() and "error" not in box, box.get("error")
    store: RunStore = box["value"]
    assert sorted(r.format for r in store.runs) == ["onnx", "tflite"]
    for r in store.runs:
        # started over on the other device of class x86, on the other worker
        assert r.status == "ok" and r.device == "board" and r.worker_device == "host-a"
    assert any("vanished" in x["reason"] for x in store.meta["farm"]["restarts"])
    state = {r["device"]: r["state"] for r in farm_listing(lab)}
    assert state["board"].startswith("gone: board vanished")
    assert state["host-a"] == "idle"


# --- faults that take part of the farm down ----------------------------------------------------


def test_a_worker_killed_mid_job_leaves_every_row_once(fresh_lab: Lab) -> None:
    lab = fresh_lab
    for name in ("host-a", "phone"):
        lab.gates[name].hold()
    thread, box = in_thread(lambda: run(lab.request("host-a", "phone", processes=2,
                                                    profile_ops=False)))  # fmt: skip
    wait_until(lambda: all(lab.gates[n].started() > 0 for n in ("host-a", "phone")), "both held")
    state = {r["device"]: r["state"] for r in farm_listing(lab)}
    assert state["host-a"].startswith("busy: tiny_cnn ") and "process 1" in state["host-a"]
    assert state["phone"].startswith("busy: ") and state["board"] == "idle"
    lab.workers["a"].kill()  # kill -9 while host-a and the phone each run a job
    for name in ("host-a", "phone"):  # the orphaned runners end with their host
        for pid in (int(p.read_text()) for p in lab.gates[name].dir.glob("started.*")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    thread.join(240)
    assert not thread.is_alive() and "error" not in box, box.get("error")
    store: RunStore = box["value"]
    runs = RunStore.open(lab.dir / "results", store.run_id).runs
    ids = Counter(r.job_id for r in runs)
    assert len(ids) == 4 and set(ids.values()) == {1}, ids  # never lost, never twice
    by_device: dict[str, list[RunRow]] = {}
    for r in runs:
        by_device.setdefault(r.device, []).append(r)
    # host-a's jobs ran again on the board, the other x86 device, whole (2 processes there)
    for r in by_device["host-a"]:
        assert r.status == "ok" and r.worker_device == "board", r
        assert r.processes == 2
    # the phone has no stand-in: its rows fail, naming the host and the worker that died
    for r in by_device["phone"]:
        assert r.status == "failed", r
        assert "died" in r.error and HOST in r.error
        assert "tcp://127.0.0.1:" in r.error
        assert "--resume" in r.error


def test_the_scheduler_lost_mid_run_then_resume_completes(fresh_lab: Lab) -> None:
    lab = fresh_lab
    gate = lab.gates["host-a"]
    gate.hold(after=1)  # the first process runs, the second is held
    thread, box = in_thread(lambda: run(lab.request("host-a", profile_ops=False)))
    wait_until(lambda: gate.started() >= 2, "the second process at the gate")
    lab.scheduler.kill()
    thread.join(120)
    assert not thread.is_alive()
    error = box.get("error")
    assert isinstance(error, SchedulerLostError), box
    run_id = next(p.name for p in (lab.dir / "results").iterdir())
    assert f"--resume {run_id}" in str(error)
    before = RunStore.open(lab.dir / "results", run_id).runs
    assert [r.status for r in before] == ["ok"], "the finished job is kept"

    gate.release()
    lab.scheduler = Scheduler(lab.dir, port=lab.scheduler.port)  # back at the same address
    for w in lab.workers.values():
        w.wait_serving(times=2)  # each worker rejoined on its own
    again = run(RunRequest(resume=run_id, results_dir=lab.dir / "results"))
    assert sorted(r.status for r in again.runs) == ["ok", "ok"]
    kept = next(r for r in again.runs if r.job_id == before[0].job_id)
    assert kept.median_ms == before[0].median_ms, "a finished job was measured again"


def test_nothing_imports_dask_without_a_scheduler() -> None:
    code = (
        "import sys\n"
        "from benchharness.cli.app import main\n"
        "import benchharness.api, benchharness.dispatch.execute\n"
        "try:\n    main(['devices', '--json'])\nexcept SystemExit:\n    pass\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
