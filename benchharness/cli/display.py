"""The live progress display of ``bench run``: one line per device with its current job."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from benchharness.results.schema import RunRow


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
        self.progress.update(self._task(device), advance=1, description=text)

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for device, task in self.tasks.items():
            if device == "export":
                self.progress.update(task, description="exports ready")
        self.progress.stop()
