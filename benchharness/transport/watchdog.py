"""A bound for calls that have none of their own.

paramiko waits forever for an exec or subsystem reply and for an SFTP answer. A Watchdog runs an
action (closing the channel the call waits on) when its bound passes, which makes the stalled
call return with an error; ``fired`` then tells the caller that the bound, not the device, ended
it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable


class Watchdog:
    """Runs ``on_fire`` if the ``with`` block has not ended within ``seconds``."""

    def __init__(self, seconds: float, on_fire: Callable[[], object]) -> None:
        self.fired = False
        self._on_fire = on_fire
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(Exception):
            self._on_fire()

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
