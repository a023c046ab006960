"""A fake device transport that only runs commands: what the dispatch tests of a local profile
need (the runner's command answered in-process), refusing any file transfer."""

from __future__ import annotations

from pathlib import Path

from benchharness.transport.base import Transport


class ExecOnlyTransport(Transport):
    """Subclasses answer ``execute``; a local profile pushes and pulls nothing."""

    def push(self, local: Path, remote: str) -> None:
        raise AssertionError("a local profile pushes nothing")

    def pull(self, remote: str, local: Path) -> None:
        raise AssertionError("nothing to pull")

    def close(self) -> None:
        pass
