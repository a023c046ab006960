"""The farm for real: a ``dask scheduler`` process and two ``bench worker`` processes on loopback,
all speaking mutual TLS with certificates made at test time by ``bench farm certs``'s code.

Worker A holds this host (transport local, class ``x86``) and an emulated phone reached with the
real adb client; worker B holds a board reached over a real OpenSSH server on 127.0.0.1 (class
``x86`` too: it is this same machine). The coordinator (``api.run`` in this process, and ``bench``
subprocesses) finds its client certificate through the farm config file ($BENCH_FARM_CONFIG).
Faults are real: a worker ``kill -9``ed while a runner is held at its gate
(tests/support/farm.py), the board's sshd killed mid-process, the scheduler killed mid-run, the
coordinator interrupted, a stranger with another CA's certificate, a plain Dask worker joining.
Nothing here times anything; the assertions are about rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed", reason="the farm needs Dask: pip install -e '.[farm]'")

from benchharness.api import DEFAULT_FORMATS, RunRequest, run
from benchharness.errors import SchedulerLostError
from benchharness.farm.security import CONFIG_ENV
from benchharness.plan.options import Method, RunOptions
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore
from benchharness.stats.intervals import STOP_CAP
from tests.support.adbd import EmulatedDevice
from tests.support.farm import (
    ROOT,
    Certs,
    Gate,
    Process,
    Scheduler,
    Worker,
    dask_cli,
    toml,
    wait_until,
)
from tests.support.fixtures import AdbServer, require_adb, require_sshd
from tests.support.sshd import SSHServer

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(86)

TINY = "tests.support.tiny:tiny_cnn"
FAST = Method(quick=True, min_s=0.2, min_n=20, warmup_min_s=0.1)
HOST = socket.gethostname()


@dataclass
class Lab:
    """A scheduler, worker A (host-a, phone) and worker B (board), each device behind a gate."""

    dir: Path
    certs: Certs
    scheduler: Scheduler
    sshd: SSHServer
    phone: EmulatedDevice
    adb: AdbServer
    gates: dict[str, Gate]
    profiles: dict[str, Path]
    workers: dict[str, Worker] = field(default_factory=dict)

    def start_workers(self) -> None:
        tls = self.certs.options("worker")
        self.workers["a"] = Worker(self.dir, "a", self.scheduler.address,
                                   [self.profiles["host-a"], self.profiles["phone"]],
                                   env=self.adb.env, tls=tls)  # fmt: skip
        self.workers["b"] = Worker(self.dir, "b", self.scheduler.address, [self.profiles["board"]],
                                   tls=tls)  # fmt: skip
        for w in self.workers.values():
            w.wait_serving()

    def request(
        self,
        *devices: str,
        formats: tuple[str, ...] = DEFAULT_FORMATS,
        processes: int | None = None,
        profile_ops: bool = True,
    ) -> RunRequest:
        options = RunOptions(method=FAST, processes=processes, profile_ops=profile_ops)
        return RunRequest(devices=devices, models=TINY, formats=formats, options=options,
                          input_shape="1x3x32x32", scheduler=self.scheduler.address,
                          results_dir=self.dir / "results")  # fmt: skip

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
def make_lab(tmp: Path, adb: AdbServer, certs: Certs) -> Iterator[Lab]:
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
    lab = Lab(tmp, certs, Scheduler(tmp, certs=certs), sshd, phone, adb, gates, profiles)
    try:
        lab.start_workers()
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Certs]:
    """The farm's CA and certificates, and the coordinator's farm config naming the client's."""
    made = Certs(tmp_path_factory.mktemp("certs"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONFIG_ENV, str(made.config("client")))
        yield made


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Another CA's certificates: what someone who is not of the farm may hold."""
    return Certs(tmp_path_factory.mktemp("stranger"))


@pytest.fixture(scope="module")
def lab(
    tmp_path_factory: pytest.TempPathFactory, adb_server: AdbServer, certs: Certs
) -> Iterator[Lab]:
    """One farm for the tests that leave it standing (the last one withdraws the board)."""
    with make_lab(tmp_path_factory.mktemp("farm"), adb_server, certs) as made:
        yield made


@pytest.fixture
def fresh_lab(tmp_path: Path, adb_server: AdbServer, certs: Certs) -> Iterator[Lab]:
    """A farm of its own, for a test that kills part of it."""
    with make_lab(tmp_path, adb_server, certs) as made:
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


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "benchharness.cli", *args], capture_output=True,
                          text=True, timeout=300, env=full, cwd=ROOT)  # fmt: skip


def no_certificates(directory: Path) -> Path:
    """A farm config file that sets nothing: a machine without the farm's certificates."""
    path = directory / "no-certificates.toml"
    path.write_text("# no certificates\n")
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def held_pids(gate: Gate) -> list[int]:
    return [int(p.read_text()) for p in gate.dir.glob("started.*") if p.read_text().strip()]


def farm_listing(lab: Lab) -> list[dict[str, Any]]:
    proc = bench("devices", "--scheduler", lab.scheduler.address, "--json")
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


# --- the farm standing -------------------------------------------------------------------------


def test_a_run_across_both_hosts_lands_every_row_once(lab: Lab) -> None:
    assert lab.scheduler.address.startswith("tls://")
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
        # the second process ran the warm-up the first one calibrated, as off the farm
        assert r.warmup_mode is not None and "calibrated" in r.warmup_mode, r.warmup_mode
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


def _refused_without_a_certificate(lab: Lab) -> bool:
    """A TLS connection to the scheduler that trusts its CA but shows no certificate: refused in
    the handshake, or hung up on, before Dask reads anything."""
    context = ssl.create_default_context(cafile=str(lab.certs.ca))
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", lab.scheduler.port), 10) as sock:
        try:
            with context.wrap_socket(sock) as tls:
                return tls.recv(1) == b""
        except (ssl.SSLError, ConnectionResetError):
            return True


def test_tls_lets_in_only_the_farm_s_certificates(lab: Lab, stranger: Certs) -> None:
    assert _refused_without_a_certificate(lab)
    address = lab.scheduler.address
    # a client of another CA
    proc = bench("devices", "--scheduler", address, *stranger.options("client"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "do not accept each other's certificates" in proc.stderr.splitlines()[-1]
    # plain tcp:// to the TLS port, on loopback where it is allowed: the scheduler hangs up
    plain = address.replace("tls://", "tcp://")
    proc = bench("devices", "--scheduler", plain, env={CONFIG_ENV: str(no_certificates(lab.dir))})
    assert proc.returncode == 1 and "cannot reach" in proc.stderr, proc.stderr
    # a worker of another CA: refused at once, its device never joins
    proc = bench("worker", "--scheduler", address, "--device", str(lab.profiles["host-a"]),
                 "--no-check", *stranger.options("worker"),
                 env={"BENCH_LOCK_DIR": str(lab.dir / "stranger-locks")})  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "do not accept each other's certificates" in proc.stderr.splitlines()[-1]
    assert sorted(r["device"] for r in farm_listing(lab)) == ["board", "host-a", "phone"]


def test_plain_tcp_off_loopback_is_refused_by_every_command(tmp_path: Path) -> None:
    env = {CONFIG_ENV: str(no_certificates(tmp_path)), "BENCH_LOCK_DIR": str(tmp_path / "locks")}
    commands = {
        "run": ["run", "--scheduler", "tcp://10.1.2.3:8786", "--device", "board", "--models",
                TINY, "--results-dir", str(tmp_path / "results")],
        "worker": ["worker", "--scheduler", "lab1.example:8786", "--device", "local"],
        "devices": ["devices", "--scheduler", "tcp://10.1.2.3:8786"],
    }  # fmt: skip
    for name, args in commands.items():
        proc = bench(*args, env=env)
        assert proc.returncode == 1, (name, proc.stdout + proc.stderr)
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("FarmError: refusing plain tcp://"), (name, last)
        assert "bench farm certs" in last and "--insecure" in last
        # the worker is refused before it checks any device
        assert "reachable" not in proc.stdout, (name, proc.stdout)
    assert not (tmp_path / "results").exists()


def test_a_plain_dask_worker_gets_no_work(lab: Lab) -> None:
    cert, key = lab.certs.pair("worker")
    # it holds a certificate of the farm and offers the board's resources, yet is no bench worker
    plain = Process(
        [dask_cli(), "worker", lab.scheduler.address, "--no-nanny", "--nthreads", "2",
         "--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
         "--resources", "board=2,x86=2",
         "--tls-ca-file", str(lab.certs.ca), "--tls-cert", str(cert), "--tls-key", str(key)],
        lab.dir / "plain-worker.log", dict(os.environ),
    )  # fmt: skip
    try:
        plain.wait_for("Registered to")
        store = run(lab.request("board", "x86", profile_ops=False, processes=2))
        assert len(store.runs) == 4
        for r in store.runs:
            assert r.status == "ok" and r.worker_host == HOST, r
            assert r.worker_device in ("board", "host-a"), r
        proc = bench("devices", "--scheduler", lab.scheduler.address)
        assert proc.returncode == 0 and "a plain Dask worker" in proc.stdout, proc.stdout
        assert "run_process" not in plain.output() and "Traceback" not in plain.output()
    finally:
        plain.stop()


def test_a_farm_run_follows_the_process_rule_past_five(lab: Lab) -> None:
    # not --quick: the adaptive rule, capped at 7, with a target (0.01 %) out of reach
    options = RunOptions(method=Method(min_s=0.05, min_n=5, warmup_min_s=0.05),
                         profile_ops=False, max_processes=7, process_ci_rel=0.0001)  # fmt: skip
    store = run(replace(lab.request("host-a", formats=("onnx",)), options=options))
    (row,) = store.runs
    # the same rule as a run on this machine: 5 processes at least, then on until the target
    # (0.01 % is out of reach) or the cap, and the row says which stopped it
    assert row.status == "ok" and row.processes == 7, row
    assert row.process_stop == STOP_CAP and len(row.process_medians_ms) == 7
    rule = store.meta["method"]["process_rule"]
    assert (rule["min"], rule["max"], rule["adaptive"]) == (5, 7, True)
    reread = RunStore.open(lab.dir / "results", store.run_id)
    assert {s.process for s in reread.samples} == set(range(7))
    assert reread.meta["farm"]["dispatch"]["host-a"]["processes"] == 7


def test_a_pte_job_on_the_farm_has_operator_rows(lab: Lab) -> None:
    pytest.importorskip("executorch", reason="the pte format needs ExecuTorch")
    store = run(lab.request("host-a", formats=("pte",)))
    (row,) = store.runs
    assert row.status == "ok" and row.format == "pte", row.error
    assert not row.ops_error, row.ops_error
    ops = [o for o in store.ops if o.job_id == row.job_id]
    assert ops and any(o.op_name.startswith("Convolution") for o in ops)
    cache = lab.workers["a"].cache
    assert (cache / f"{row.artifact_sha256}.etrecord").is_file(), "the ETRecord travels with it"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_on_the_coordinator_stops_the_runner_and_closes_its_session(lab: Lab) -> None:
    gate = lab.gates["board"]
    gate.hold()
    results = lab.dir / "interrupted"
    argv = [sys.executable, "-m", "benchharness.cli", "run", "--scheduler", lab.scheduler.address,
            "--device", "board", "--models", TINY, "--formats", "onnx", "--no-ops", "--quick",
            "--input-shape", "1x3x32x32", "--results-dir", str(results)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a shell without job control (CI, `cmd &`) starts the suite with SIGINT ignored, which its
    # children inherit and Python then never turns into KeyboardInterrupt: give the coordinator
    # the default disposition a user's terminal gives it
    coordinator = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True,
                                   preexec_fn=_default_sigint)  # fmt: skip
    try:
        before = gate.started()
        wait_until(lambda: gate.started() > before, "the board's runner at its gate")
        (pid,) = [p for p in held_pids(gate)[-1:]]
        run_id = next(p.name for p in results.iterdir())
        assert (lab.dir / "board-work" / run_id).is_dir()
        coordinator.send_signal(signal.SIGINT)
        _, err = coordinator.communicate(timeout=120)
        assert coordinator.returncode == 130, err[-2000:]
        wait_until(lambda: not alive(pid), "the held runner to be killed", 60)
        wait_until(lambda: not (lab.dir / "board-work" / run_id).exists(),
                   "the run's folder on the board to be removed", 60)  # fmt: skip
        wait_until(lambda: {r["device"]: r["state"] for r in farm_listing(lab)}["board"] == "idle",
                   "the board to be idle", 60)  # fmt: skip
    finally:
        gate.release()
        if coordinator.poll() is None:
            coordinator.kill()
            coordinator.communicate()


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


def test_a_worker_killed_mid_job_keeps_its_finished_processes(fresh_lab: Lab) -> None:
    lab = fresh_lab
    for name in ("host-a", "phone"):
        lab.gates[name].hold(after=1)  # each device's first process runs, the next is held
    thread, box = in_thread(lambda: run(lab.request("host-a", "phone", processes=2,
                                                    profile_ops=False)))  # fmt: skip
    wait_until(lambda: all(lab.gates[n].started() >= 2 for n in ("host-a", "phone")), "both held")
    state = {r["device"]: r["state"] for r in farm_listing(lab)}
    assert state["host-a"].startswith("busy: tiny_cnn ") and state["board"] == "idle"
    assert state["phone"].startswith("busy: ")
    lab.workers["a"].kill()  # kill -9 while host-a and the phone each hold a second process
    for name in ("host-a", "phone"):  # the orphaned runners end with their host
        for pid in held_pids(lab.gates[name]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    thread.join(240)
    assert not thread.is_alive() and "error" not in box, box.get("error")
    store: RunStore = box["value"]
    reread = RunStore.open(lab.dir / "results", store.run_id)
    ids = Counter(r.job_id for r in reread.runs)
    assert len(ids) == 4 and set(ids.values()) == {1}, ids  # never lost, never twice
    by_device: dict[str, list[RunRow]] = {}
    for r in reread.runs:
        by_device.setdefault(r.device, []).append(r)
    samples = Counter((s.job_id, s.process) for s in reread.samples)
    # host-a's jobs went on on the board, the other x86 device: the process that finished on
    # host-a counts, beside the board's (the row names both devices)
    moved = [r for r in by_device["host-a"] if "host-a" in (r.worker_device or "")]
    assert moved, [r.worker_device for r in by_device["host-a"]]
    for r in by_device["host-a"]:
        assert r.status == "ok" and r.processes == 2, r
        assert "board" in (r.worker_device or ""), r
        assert {p for (j, p) in samples if j == r.job_id} == {0, 1}
    assert moved[0].worker_device == "host-a,board"
    # the phone has no stand-in: its rows fail, naming the host and the worker that died, and
    # keep what finished there
    for r in by_device["phone"]:
        assert r.status == "failed", r
        assert "died" in r.error and HOST in r.error
        assert "tls://127.0.0.1:" in r.error and "--resume" in r.error
    kept = [r for r in by_device["phone"] if samples[(r.job_id, 0)]]
    assert kept, "the phone's first process finished before its worker died"
    assert "1 finished process(es) are kept" in kept[0].error


def test_the_scheduler_lost_mid_run_then_resume_completes(fresh_lab: Lab) -> None:
    lab = fresh_lab
    gate = lab.gates["host-a"]
    gate.hold(after=1)  # the first process runs, the second is held
    thread, box = in_thread(lambda: run(lab.request("host-a", profile_ops=False)))
    wait_until(lambda: gate.started() >= 2, "the second process at the gate")
    held = held_pids(gate)[-1]
    lab.scheduler.kill()
    thread.join(120)
    assert not thread.is_alive()
    # the workers lost their scheduler: the held runner is stopped, not left to its timeout
    wait_until(lambda: not alive(held), "the held runner to be killed", 60)
    error = box.get("error")
    assert isinstance(error, SchedulerLostError), box
    run_id = next(p.name for p in (lab.dir / "results").iterdir())
    assert f"--resume {run_id}" in str(error)
    before = RunStore.open(lab.dir / "results", run_id).runs
    assert [r.status for r in before] == ["ok"], "the finished job is kept"

    gate.release()
    lab.scheduler = Scheduler(lab.dir, port=lab.scheduler.port, certs=lab.certs)  # same address
    for w in lab.workers.values():
        w.wait_serving(times=2)  # each worker rejoined on its own
    again = run(RunRequest(resume=run_id, results_dir=lab.dir / "results"))
    assert sorted(r.status for r in again.runs) == ["ok", "ok"], [r.error for r in again.runs]
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
