"""Export the models that miss the cache on worker processes, ahead of the caller's own loop.

``plan.artifacts.prepare_artifacts`` exports and costs models one after another in one process;
on a fresh machine that is minutes of one busy core. ``export_ahead`` first looks up which models
miss the cache (``pipeline.is_cached``: presence alone, nothing hashed) and, when two or more do,
exports them on a pool of spawned worker processes, one model per task, and waits for them all.
The caller's loop then runs as before and finds them cached. Whatever a worker did not finish (an
export error, a crashed worker, a model that cannot be pickled) the loop does itself, as it
always did, so its outcome and its error rows are the sequential ones.

Exports never overlap timing on this host: ``bench run`` (``api._run``), and so each round of
``bench predictor build`` (an ``api.run``), returns from ``prepare_artifacts`` before its first
runner starts; ``bench export`` and ``bench predict`` time nothing. A farm run (``--scheduler``)
exports one model at a time unless ``--export-jobs`` asks for more: the host it runs on may
serve devices to the farm (a ``bench worker`` beside it) that time other runs meanwhile.

Ctrl-C, SIGTERM (which the CLI raises as a KeyboardInterrupt) or any error in the main process
ends the workers before the error leaves ``export_ahead``. Workers ignore SIGINT (a terminal sends
it to the whole process group, and the main process decides) and, on Linux, the kernel ends them
when the main process dies without cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from benchharness.export.pipeline import export_model, is_cached
from benchharness.export.quantize import Calibration
from benchharness.zoo.registry import ModelSpec

#: Never fork a process that has imported torch (its thread pools and locks do not survive a
#: fork): each worker is a fresh interpreter.
START_METHOD = "spawn"
#: The most workers the default starts, whatever the number of cores: each worker imports its
#: own torch, ONNX and LiteRT stacks and holds a whole export (graphs, converter buffers) of a
#: model, so past four a workstation's memory, not its cores, bounds what runs at once; more
#: can be asked for with --export-jobs.
MAX_DEFAULT_JOBS = 4
#: Seconds a worker has to exit after SIGTERM before it is killed.
STOP_GRACE_S = 5.0
#: Mode of a converter log a worker creates: what ``open()`` gives it in the main process.
LOG_MODE = 0o666
#: prctl(2)'s option that names the signal a process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1

Stage = Callable[[str], None]


@dataclass(frozen=True)
class ExportSettings:
    """What every model of one preparation is exported to, and where."""

    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    root: Path
    log_path: Path | None = None
    calibration: Calibration | None = None

    def cached(self, spec: ModelSpec) -> bool:
        return all(
            is_cached(spec, self.formats, precision=p, root=self.root, calibration=self.calibration)
            for p in self.precisions
        )


#: A worker's task: export one model (and warm whatever else the caller caches); it returns the
#: number of artifacts that failed. Must be a module-level function, so that it pickles.
Work = Callable[[ModelSpec, ExportSettings], int]


def export_job(spec: ModelSpec, settings: ExportSettings) -> int:
    """Export (or find cached) every format and precision of ``spec``; how many failed."""
    failed = 0
    for precision in settings.precisions:
        outcomes = export_model(
            spec,
            settings.formats,
            precision=precision,
            root=settings.root,
            log_path=settings.log_path,
            calibration=settings.calibration,
        )
        failed += sum(o.entry is None for o in outcomes)
    return failed


def default_jobs() -> int:
    """One worker per core this process may run on, at most ``MAX_DEFAULT_JOBS``."""
    return max(1, min(_cores(), MAX_DEFAULT_JOBS))


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # a taskset or a container's CPU set counts, not the host
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def export_ahead(
    specs: Sequence[ModelSpec],
    settings: ExportSettings,
    *,
    workers: int | None = None,
    work: Work = export_job,
    stage: Stage | None = None,
) -> int:
    """Export the ``specs`` that miss the cache on up to ``workers`` processes (None: the
    ``default_jobs``) and wait for them; how many processes it started.

    With one worker, or fewer than two misses, it starts none and leaves the exports to the
    caller's loop. Errors of the workers are not raised: the caller's loop meets them again."""
    limit = default_jobs() if workers is None else workers
    if limit <= 1 or len(specs) < 2:
        return 0
    misses = [spec for spec in specs if not settings.cached(spec)]
    if len(misses) < 2:
        return 0
    size = min(limit, len(misses))
    say = stage or (lambda _text: None)
    say(f"exporting {len(misses)} models on {size} workers")
    pool = pool_factory(size, settings.log_path)
    try:
        _collect(pool, misses, settings, work, say)
    except BaseException:  # Ctrl-C, SIGTERM or an error here: no exporter may outlive the call
        stop(pool)
        raise
    pool.shutdown(wait=True)  # every task is done: the workers are idle and exit at once
    return size


def pool_factory(workers: int, log_path: Path | None) -> ProcessPoolExecutor:
    """The pool of ``export_ahead`` (a seam: tests replace it to see whether one is started)."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(START_METHOD),
        initializer=_init_worker,
        initargs=(os.getpid(), log_path),
    )


def _collect(
    pool: ProcessPoolExecutor,
    specs: Sequence[ModelSpec],
    settings: ExportSettings,
    work: Work,
    say: Stage,
) -> None:
    """Submit one task per model and say each one's end as it lands."""
    futures = {pool.submit(work, spec, settings): spec.name for spec in specs}
    for done, future in enumerate(as_completed(futures), start=1):
        say(f"{futures[future]}: {_landed(future)} ({done}/{len(futures)})")


def _landed(future: Future[int]) -> str:
    error = future.exception()
    if error is not None:
        return f"not exported on a worker ({type(error).__name__}); exporting it here"
    failed = future.result()
    return f"{failed} exports failed, tried again here" if failed else "exported"


def stop(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now: drop the tasks not started, terminate the ones running."""
    # Python 3.11 has no public way to end busy workers (3.14 adds terminate_workers)
    workers = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        proc.terminate()
    for proc in workers:
        proc.join(STOP_GRACE_S)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _init_worker(parent: int, log_path: Path | None) -> None:
    """Set a worker up: the main process alone handles Ctrl-C and ends it; it dies with the
    main process; its output goes to the converter log, never through the CLI's display; it
    exits without tearing its interpreter down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    _quiet(log_path)
    atexit.register(_exit_at_once)


def _exit_at_once() -> None:
    """End the worker without tearing its interpreter down: with torch, ONNX and LiteRT loaded
    that takes seconds, which the main process would wait for, and a worker has nothing left to
    keep by then (its artifacts are in the cache, its results sent)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _die_with(parent: int) -> None:
    """Have the kernel SIGTERM this process when ``parent`` dies, even by SIGKILL (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


def _quiet(log_path: Path | None) -> None:
    """Send fd 1 and 2 to the converter log (or nowhere) for the worker's whole life."""
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    target = os.open(log_path if log_path is not None else os.devnull, flags, LOG_MODE)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)
