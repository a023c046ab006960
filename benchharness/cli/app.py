"""The ``bench`` command group and its entry point.

Expected failures (HarnessError) are printed as ``Type: message`` on stderr with exit status 1 and
no traceback; bad usage exits 2; Ctrl-C exits 130 with every finished measurement kept, and
SIGTERM (a plain ``kill``, a CI job's time limit) takes the same way out, exiting 143: without it
the process died at once and left its runners timing on the devices.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

import click

from benchharness import __version__
from benchharness.cli import (
    caches,
    check,
    compare,
    devices,
    farm,
    history,
    imports,
    models,
    ops,
    predict,
    report,
    run,
    worker,
)
from benchharness.cli.common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, console
from benchharness.errors import HarnessError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bench")
def cli() -> None:
    """benchharness: export, dispatch and time neural networks on devices; compare the numbers."""


for command in (
    models.models_cmd,
    models.export_cmd,
    run.run_cmd,
    run.results_cmd,
    ops.ops_cmd,
    imports.import_cmd,
    compare.compare_cmd,
    devices.devices_cmd,
    report.report_cmd,
    check.check_cmd,
    worker.worker_cmd,
    predict.predictor_group,
    predict.predict_cmd,
    history.history_cmd,
    history.gate_cmd,
    farm.farm_group,
    caches.cache_group,
):
    cli.add_command(command)


#: Exit status of a process that SIGTERM ended: what a shell reports for one it killed (128 + 15).
EXIT_TERMINATED = 128 + signal.SIGTERM


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so that every cleanup of an interrupt runs."""

    #: set by the handler: a command that catches the interrupt exits on its own, after cleanup
    received = False


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set a handler (a test calling main in a thread)
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        _Terminated.received = True
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        with _sigterm_interrupts():
            _main(argv)
    except SystemExit as exc:
        # a command that caught the interrupt itself exits 130; SIGTERM's status is 143
        if _Terminated.received and exc.code == EXIT_INTERRUPTED:
            sys.exit(EXIT_TERMINATED)
        raise


def _main(argv: Sequence[str] | None) -> None:
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except HarnessError as exc:
        console.file.flush()
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILURE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else EXIT_FAILURE)
    except (KeyboardInterrupt, click.Abort) as exc:
        print(
            "Interrupted: every finished measurement is kept in its results folder; "
            "finish the run with `bench run --resume RUN_ID`",
            file=sys.stderr,
        )
        sys.exit(EXIT_TERMINATED if isinstance(exc, _Terminated) else EXIT_INTERRUPTED)
