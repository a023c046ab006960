"""Exports ahead on worker processes: when a pool starts, what a failed worker leaves to the main
loop, and that no exporter outlives an interrupted ``bench export``."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from benchharness.export import cache
from benchharness.export.pipeline import export_model, is_cached
from benchharness.plan import parallel_export as parallel
from benchharness.plan.artifacts import prepare_artifacts
from benchharness.zoo.registry import ModelSpec
from tests.support.tiny import tiny_cnn

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(17)

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (1, 3, 32, 32)
#: Exit status of a worker that ``crash_in_worker`` ends, as a segfaulting converter would.
CRASH_STATUS = 70
#: How long a subprocess may take to reach each step before the test gives up on it (a guard
#: against a hang on a loaded machine, never a measurement).
PATIENCE_S = 300
#: Exit status of ``bench`` per stop: Ctrl-C's 130, SIGTERM's 143, and a SIGKILL (no cleanup at
#: all: the kernel ends the workers, ``PR_SET_PDEATHSIG``).
STOPS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -signal.SIGKILL}


def crash_in_worker(num_classes: int = 10) -> nn.Module:
    """The tiny model, except that building it kills a worker process outright."""
    if multiprocessing.parent_process() is not None:
        os._exit(CRASH_STATUS)
    return tiny_cnn(num_classes)


def lenient_cnn(num_classes: int = 10, **_ignored: Any) -> nn.Module:
    """The tiny model, taking (and ignoring) any keyword: a spec may carry one that won't pickle."""
    return tiny_cnn(num_classes)


def _spec(name: str, builder: str, **kwargs: Any) -> ModelSpec:
    here = "tests.export.test_parallel_export"
    return ModelSpec(
        name=name, source="user", builder=f"{here}:{builder}", input_shape=SHAPE, kwargs=kwargs
    )


def _no_pool(workers: int, log_path: Path | None) -> ProcessPoolExecutor:
    raise AssertionError(f"a pool of {workers} was started")


# ------------------------------------------------------------------ how many, and when


@pytest.mark.parametrize(("cores", "jobs"), [(1, 1), (3, 3), (64, parallel.MAX_DEFAULT_JOBS)])
def test_the_default_is_one_worker_per_core_up_to_the_cap(
    monkeypatch: pytest.MonkeyPatch, cores: int, jobs: int
) -> None:
    monkeypatch.setattr(parallel, "_cores", lambda: cores)
    assert parallel.default_jobs() == jobs


@pytest.mark.parametrize(("workers", "count"), [(1, 2), (4, 1)], ids=["one-job", "one-model"])
def test_one_job_or_one_model_neither_looks_up_nor_starts_a_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, count: int
) -> None:
    looked: list[str] = []

    def cached(self: parallel.ExportSettings, spec: ModelSpec) -> bool:
        looked.append(spec.name)
        return False

    monkeypatch.setattr(parallel.ExportSettings, "cached", cached)
    monkeypatch.setattr(parallel, "pool_factory", _no_pool)
    settings = parallel.ExportSettings(("onnx",), ("fp32",), tmp_path)
    specs = [_spec(f"m{i}", "lenient_cnn") for i in range(count)]
    assert parallel.export_ahead(specs, settings, workers=workers) == 0
    assert looked == []


def test_a_model_is_cached_once_every_format_has_its_file_and_record(
    tiny_spec: ModelSpec, tmp_path: Path
) -> None:
    assert not is_cached(tiny_spec, ["onnx"], root=tmp_path)
    (outcome,) = export_model(tiny_spec, ["onnx"], root=tmp_path)
    assert outcome.entry is not None, outcome.error
    assert is_cached(tiny_spec, ["onnx"], root=tmp_path)
    assert not is_cached(tiny_spec, ["onnx", "tflite"], root=tmp_path)
    assert not is_cached(tiny_spec, ["onnx"], precision="fp16", root=tmp_path)
    cache.record_path(outcome.entry.path).unlink()
    assert not is_cached(tiny_spec, ["onnx"], root=tmp_path)


# ------------------------------------------------------------------ a worker that fails


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (_spec("crashes", "crash_in_worker"), "BrokenProcessPool"),
        (_spec("unpicklable", "lenient_cnn", hook=lambda: None), "not exported on a worker"),
    ],
    ids=["crashed-worker", "unpicklable-model"],
)
def test_what_a_worker_could_not_export_the_main_loop_exports(
    tmp_path: Path, spec: ModelSpec, why: str
) -> None:
    stages: list[str] = []
    other = _spec("lenient", "lenient_cnn")
    arts = prepare_artifacts(
        [spec, other], ["onnx"], root=tmp_path, export_jobs=2, stage=stages.append
    )
    assert [(a.model, a.error) for a in arts] == [(spec.name, None), (other.name, None)]
    assert all(a.path and cache.sha256_file(a.path) == a.sha256 for a in arts)
    assert stages[0] == "exporting 2 models on 2 workers"
    assert any(s.startswith(f"{spec.name}: ") and why in s for s in stages), stages
    assert multiprocessing.active_children() == []


# ------------------------------------------------------------------ interrupted


#: A user's builders that never finish building: each marks its process, then waits.
SLOW_MODULE = """
import os, pathlib, time

def slow(num_classes=10):
    (pathlib.Path(os.environ["SLOW_EXPORT_MARKS"]) / str(os.getpid())).touch()
    time.sleep(3600)

slow_a = slow_b = slow
"""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie has ended: it waits only to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait_for(check: Any, what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def marks(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "marks"
    folder.mkdir()
    yield folder
    for mark in folder.iterdir():  # never leave a sleeper behind, whatever the test's outcome
        if _alive(int(mark.name)):
            os.kill(int(mark.name), signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (its exporters, multiprocessing's resource tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended while being listed
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("stop", list(STOPS), ids=lambda s: signal.Signals(s).name)
def test_a_stopped_bench_export_leaves_no_exporter_running(
    tmp_path: Path, marks: Path, stop: signal.Signals
) -> None:
    (tmp_path / "slow_export.py").write_text(textwrap.dedent(SLOW_MODULE))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]),
        "BENCH_CACHE_DIR": str(tmp_path / "cache"),
        "SLOW_EXPORT_MARKS": str(marks),
    }
    cmd = [sys.executable, "-m", "benchharness.cli", "export", "--formats", "onnx",
           "--models", "slow_export:slow_a,slow_export:slow_b", "--export-jobs", "2"]  # fmt: skip
    # files, not pipes: a child left running would hold a pipe open and hang the reading
    err_path = tmp_path / "stderr"
    with open(tmp_path / "stdout", "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err,
                                preexec_fn=_default_sigint)  # fmt: skip
    try:
        _wait_for(lambda: len(list(marks.iterdir())) == 2, "both workers to build their model")
        workers = [int(m.name) for m in marks.iterdir()]
        children = _children(proc.pid)
        assert set(workers) <= set(children), "the models were not built by the main's workers"
        proc.send_signal(stop)
        proc.wait(timeout=PATIENCE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = err_path.read_text(errors="replace")
    assert proc.returncode == STOPS[stop], stderr[-2000:]
    if stop != signal.SIGKILL:  # the main process ended (and reaped) its workers before exiting
        assert "Traceback" not in stderr
        assert [pid for pid in workers if _alive(pid)] == []
    # with SIGKILL the kernel signals the workers as the main process dies; every other child
    # (multiprocessing's resource tracker) ends once nothing holds its pipe
    _wait_for(lambda: not any(_alive(pid) for pid in children), "every child to end")
