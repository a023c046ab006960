"""The progress of ``bench run``: on a terminal, a live display with one line per device and
its current job; in a log or a pipe, where a live display draws only its last frame, one plain
line per finished job, printed as it finishes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from benchharness.cli.rowtext import is_finished, job_line

if TYPE_CHECKING:
    from benchharness.results.schema import RunRow

#: How the dispatcher's stage text starts when a whole device gave up (``dispatch/execute``):
#: the one stage a log must show, since the jobs it leaves print no line.
FAILED_STAGE = "failed:"


class RichReporter:
    """Implements dispatch.Reporter on a rich Progress; safe to call from device threads."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[device]:<10}[/bold]"),
            TextColumn("{task.description}"),
            TextColumn("[dim]{task.completed} done[/dim]"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()

    def _task(self, device: str) -> TaskID:
        with self.lock:
            if device not in self.tasks:
                self.tasks[device] = self.progress.add_task("", device=device, total=None)
            return self.tasks[device]

    def stage(self, device: str, text: str) -> None:
        self.progress.update(self._task(device), description=text)

    def job_done(self, device: str, row: RunRow) -> None:
        text = f"{row.model} {row.format}: "
        text += f"{row.median_ms:.3f} ms" if row.median_ms is not None else row.status
        # a row is rewritten after each of its job's processes: "done" counts jobs
        advance = 1 if is_finished(row) else 0
        self.progress.update(self._task(device), advance=advance, description=text)

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for device, task in self.tasks.items():
            if device == "export":
                self.progress.update(task, description="exports ready")
        self.progress.stop()


class LineReporter:
    """Implements dispatch.Reporter for a log or a pipe: one plain line per finished job (and
    per device that gave up), stamped with the time since the run started; safe to call from
    device threads."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.clock = clock
        self.started = clock()
        self.lock = threading.Lock()

    def stage(self, device: str, text: str) -> None:
        if text.startswith(FAILED_STAGE):
            self._print(f"{device}: {text}")

    def job_done(self, device: str, row: RunRow) -> None:
        # a row is rewritten after each of its job's processes: only the last one is a result
        if is_finished(row):
            self._print(job_line(device, row))

    def _print(self, line: str) -> None:
        minutes, seconds = divmod(int(self.clock() - self.started), 60)
        with self.lock:
            # soft_wrap: a log line stays one line, however narrow the console thinks it is
            self.console.print(
                f"[{minutes}:{seconds:02d}] {line}", markup=False, highlight=False, soft_wrap=True
            )

    def __enter__(self) -> LineReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def reporter_for(console: Console) -> RichReporter | LineReporter:
    """The live display on a terminal, plain lines anywhere else (a CI log, ``| tee``)."""
    return RichReporter(console) if console.is_terminal else LineReporter(console)
