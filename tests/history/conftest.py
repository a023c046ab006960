"""``bench history`` and ``bench gate`` run in this process as ``bench`` runs them.

The commands are added to the ``bench`` group for the test (``cli/app.py`` registers them for
users), and run through ``app.main``: its error handling (``Type: message``, exit 1; bad usage,
exit 2) is part of what is tested. The console writes to a copy of the real stdout, so it is
pointed at a buffer for the call.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from benchharness.cli import app, common
from benchharness.cli.history import gate_cmd, history_cmd


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


Bench = Callable[..., Outcome]


@pytest.fixture()
def bench(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Bench:
    monkeypatch.setitem(app.cli.commands, "history", history_cmd)
    monkeypatch.setitem(app.cli.commands, "gate", gate_cmd)

    def call(*args: str) -> Outcome:
        buffer = io.StringIO()
        monkeypatch.setattr(common.console, "file", buffer)
        capsys.readouterr()
        try:
            app.main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Outcome(code, buffer.getvalue() + captured.out, captured.err)

    return call
