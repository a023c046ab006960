"""Cooldown between models on a device (docs/method.md, "Phones and boards").

Before every runner process but the first of a run, the dispatcher waits at least the profile's
``cooldown_min_s``, then until the hottest thermal zone is back within ``COOLDOWN_MARGIN_C`` of
the temperature read when the run started on that device, at most ``cooldown_max_s`` in all.
Temperatures are read over the device's transport with the environment probe every runner uses
(``ondevice/probe.py``): the same zones and the same plausibility rule as the rows' ``temp_c``.

Documented behaviour where the temperature cannot be followed:

* no thermal zone at the start of the run (or none now): wait ``min_s`` only;
* the transport fails while reading: stop waiting at once (never longer than ``min_s`` plus the
  time spent so far) and report ``read-error``. The cooldown must not fail or stall a job; a
  device that is really gone fails the next runner process, which has its own retry.

Clock, sleep and the temperature reader are parameters, so the tests run on fake clocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from benchharness.errors import HarnessError
from benchharness.ondevice import probe
from benchharness.transport.base import Transport

#: docs/method.md: cool down until the thermal zone is within 2 °C of the temperature at the start.
COOLDOWN_MARGIN_C = 2.0
#: Seconds between reads while waiting: kernel zones update every 0.1-2 s, and each read is a
#: round trip over adb/SSH, so 5 s follows the cooling curve without keeping a phone busy.
POLL_S = 5.0
#: One read prints a few sysfs files; 30 s covers a phone waking up over Wi-Fi adb.
READ_TIMEOUT_S = 30.0
#: The probe; zones that refuse a read (EINVAL on some phones) and a missing /sys/class/thermal
#: print nothing.
TEMPERATURE_ARGV = ("sh", "-c", probe.SCRIPT)


@dataclass(frozen=True)
class CooldownResult:
    """One wait: how long, the temperature it ended at, what it aimed for, and why it stopped."""

    waited_s: float
    temp_c: float | None
    target_c: float | None
    reason: str


def parse_temperatures(text: str) -> float | None:
    """The hottest plausible zone in the probe's output (°C), or None."""
    temp: float | None = probe.environment(probe.parse(text)).get("temp_c")
    return temp


def read_temperature(transport: Transport, *, timeout: float = READ_TIMEOUT_S) -> float | None:
    """The device's hottest thermal zone in °C, None without zones; raises TransportError."""
    result = transport.run(list(TEMPERATURE_ARGV), timeout=timeout)
    return parse_temperatures(result.stdout)


def baseline_temperature(read: Callable[[], float | None]) -> float | None:
    """The temperature the cooldowns aim back to; None when it cannot be read (min_s only)."""
    try:
        return read()
    except (HarnessError, OSError):
        return None


def cool_down(
    *,
    min_s: float,
    max_s: float,
    baseline_c: float | None,
    read: Callable[[], float | None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[float, float | None, float | None], None] | None = None,
    margin_c: float = COOLDOWN_MARGIN_C,
    poll_s: float = POLL_S,
) -> CooldownResult:
    """Wait ``min_s``, then until ``read()`` is within ``margin_c`` of ``baseline_c``; at most
    ``max(max_s, min_s)`` seconds. ``on_wait(waited_s, temp_c, target_c)`` is called before every
    sleep, for the progress display."""
    limit = max(max_s, min_s)
    if limit <= 0:
        return CooldownResult(0.0, None, None, "off")
    target = baseline_c + margin_c if baseline_c is not None else None
    start = clock()
    if on_wait is not None:
        on_wait(0.0, None, target)
    if min_s > 0:
        sleep(min_s)
    if target is None:
        return CooldownResult(clock() - start, None, None, "no-zones")
    while True:
        try:
            temp = read()
        except (HarnessError, OSError):
            return CooldownResult(clock() - start, None, target, "read-error")
        waited = clock() - start
        if temp is None:
            return CooldownResult(waited, None, target, "no-zones")
        if temp <= target:
            return CooldownResult(waited, temp, target, "reached")
        if waited >= limit:
            return CooldownResult(waited, temp, target, "max")
        if on_wait is not None:
            on_wait(waited, temp, target)
        sleep(min(poll_s, limit - waited))


def describe(waited_s: float, temp_c: float | None, target_c: float | None, max_s: float) -> str:
    """The progress line of a wait in progress."""
    text = f"cooling down {waited_s:.0f}/{max_s:.0f} s"
    if temp_c is not None and target_c is not None:
        text += f", {temp_c:.1f} °C -> {target_c:.1f} °C"
    elif target_c is not None:
        text += f", until <= {target_c:.1f} °C"
    return text


class DeviceCooldown:
    """The cooldowns of one device over one run: the baseline read once at the start, no wait
    before the first runner process, and per job the seconds waited and the temperature the last
    wait ended at (the ``cooldown_s``/``cooldown_temp_c`` columns of ``runs.csv``)."""

    def __init__(
        self,
        min_s: float,
        max_s: float,
        read: Callable[[], float | None],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.min_s = min_s
        self.limit_s = max(min_s, max_s)
        self.read = read
        self.clock = clock
        self.sleep = sleep
        # a device without a cooldown is not even asked for its temperature
        self.baseline_c = baseline_temperature(read) if self.enabled else None
        self.first = True
        self.waited_s: dict[str, float] = {}
        self.temp_c: dict[str, float | None] = {}

    @property
    def enabled(self) -> bool:
        return self.limit_s > 0

    def meta(self) -> dict[str, float | None]:
        """What run.json records of this device's cooldown."""
        return {
            "min_s": self.min_s,
            "max_s": self.limit_s,
            "margin_c": COOLDOWN_MARGIN_C,
            "baseline_c": self.baseline_c,
        }

    def before(
        self, job: str, on_wait: Callable[[float, float | None, float | None], None] | None = None
    ) -> CooldownResult | None:
        """Wait before the next runner process of ``job``; None for the run's first process."""
        if self.first:
            self.first = False
            return None
        result = cool_down(
            min_s=self.min_s,
            max_s=self.limit_s,
            baseline_c=self.baseline_c,
            read=self.read,
            clock=self.clock,
            sleep=self.sleep,
            on_wait=on_wait,
        )
        self.waited_s[job] = self.waited_s.get(job, 0.0) + result.waited_s
        self.temp_c[job] = result.temp_c
        return result

    def columns(self, job: str) -> dict[str, float | None]:
        """The row's cooldown columns: seconds waited before the job's processes (summed) and the
        hottest zone when the last of those waits ended."""
        temp = self.temp_c.get(job)
        return {
            "cooldown_s": round(self.waited_s.get(job, 0.0), 3),
            "cooldown_temp_c": round(temp, 2) if temp is not None else None,
        }
