"""What the dispatcher tells a display: the CLI draws it, tests record it."""

from __future__ import annotations

from typing import Protocol

from benchharness.results.schema import RunRow


class Reporter(Protocol):
    def stage(self, device: str, text: str) -> None: ...

    def job_done(self, device: str, row: RunRow) -> None: ...


class NullReporter:
    """A reporter that shows nothing (library use, benchmarks)."""

    def stage(self, device: str, text: str) -> None:
        pass

    def job_done(self, device: str, row: RunRow) -> None:
        pass
