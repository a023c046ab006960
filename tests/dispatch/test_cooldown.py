"""Cooldown between models: fake clocks and fake temperature sequences, then the dispatcher."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from benchharness.dispatch import cooldown
from benchharness.dispatch import execute as dispatch
from benchharness.dispatch.cooldown import (
    COOLDOWN_MARGIN_C,
    TEMPERATURE_ARGV,
    DeviceCooldown,
    cool_down,
    parse_temperatures,
    read_temperature,
)
from benchharness.dispatch.execute import run_device
from benchharness.dispatch.reporter import NullReporter
from benchharness.errors import TransportError
from benchharness.ondevice import probe
from benchharness.ondevice.protocol import PROTOCOL_VERSION
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import RunOptions
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.store import RunStore
from benchharness.transport.base import Command, CommandResult
from tests.dispatch.exec_only import ExecOnlyTransport


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class Temps:
    """Hands out a temperature sequence (the last one repeats); an exception is raised."""

    def __init__(self, values: Sequence[float | Exception | None]) -> None:
        self.values: Iterator[float | Exception | None] = iter(values)
        self.last: float | Exception | None = None
        self.reads = 0

    def __call__(self) -> float | None:
        self.reads += 1
        self.last = next(self.values, self.last)
        if isinstance(self.last, Exception):
            raise self.last
        return self.last


def run(temps: Temps, clock: FakeClock, **kw: Any) -> cooldown.CooldownResult:
    args: dict[str, Any] = {"min_s": 60.0, "max_s": 300.0, "baseline_c": 40.0, "poll_s": 5.0}
    args.update(kw)
    return cool_down(read=temps, clock=clock, sleep=clock.sleep, **args)


def test_waits_min_then_until_back_within_the_margin() -> None:
    clock = FakeClock()
    temps = Temps([48.0, 45.0, 43.0, 41.9])
    result = run(temps, clock)
    assert result.reason == "reached"
    assert result.temp_c == 41.9
    assert result.target_c == 40.0 + COOLDOWN_MARGIN_C
    # 60 s of minimum, then three polls of 5 s before the fourth read was cool enough
    assert clock.sleeps == [60.0, 5.0, 5.0, 5.0]
    assert result.waited_s == 75.0


def test_already_cool_waits_only_the_minimum() -> None:
    clock = FakeClock()
    result = run(Temps([40.5]), clock)
    assert (result.reason, result.waited_s) == ("reached", 60.0)


def test_never_cool_stops_at_max_s() -> None:
    clock = FakeClock()
    temps = Temps([55.0])  # stays hot
    result = run(temps, clock, min_s=60.0, max_s=300.0, poll_s=7.0)
    assert result.reason == "max"
    assert result.waited_s == 300.0  # the last sleep is cut to what is left of max_s
    assert result.temp_c == 55.0
    assert sum(clock.sleeps) == 300.0 and max(clock.sleeps) == 60.0


def test_no_thermal_zones_waits_min_s_only() -> None:
    clock = FakeClock()
    temps = Temps([None])
    result = run(temps, clock, baseline_c=None)
    assert (result.reason, result.waited_s, result.temp_c) == ("no-zones", 60.0, None)
    assert temps.reads == 0  # nothing to aim at, nothing read
    # zones that disappear during the run end the wait the same way
    clock = FakeClock()
    result = run(Temps([None]), clock)
    assert (result.reason, result.waited_s) == ("no-zones", 60.0)


def test_transport_error_while_reading_ends_the_wait() -> None:
    clock = FakeClock()
    temps = Temps([50.0, TransportError("connection reset")])
    result = run(temps, clock)
    assert result.reason == "read-error"
    assert result.waited_s == 65.0  # min_s, one poll, then the failed read: no further waiting
    assert result.temp_c is None


def test_off_when_both_limits_are_zero() -> None:
    clock = FakeClock()
    temps = Temps([90.0])
    result = run(temps, clock, min_s=0.0, max_s=0.0)
    assert (result.reason, result.waited_s, temps.reads) == ("off", 0.0, 0)
    assert clock.sleeps == []


def test_max_below_min_means_min() -> None:
    clock = FakeClock()
    result = run(Temps([70.0]), clock, min_s=30.0, max_s=10.0)
    assert (result.reason, result.waited_s) == ("max", 30.0)


def test_progress_callback_sees_every_poll() -> None:
    clock = FakeClock()
    seen: list[tuple[float, float | None, float | None]] = []
    run(Temps([45.0, 41.0]), clock, on_wait=lambda *a: seen.append(a))
    assert seen == [(0.0, None, 42.0), (60.0, 45.0, 42.0)]
    assert cooldown.describe(60, 45.0, 42.0, 300) == "cooling down 60/300 s, 45.0 °C -> 42.0 °C"


def probe_text(readings: str) -> str:
    """What the environment probe prints for these thermal zone readings (millidegrees)."""
    zones = [f"zone{i} {r}" for i, r in enumerate(readings.split())]
    return "\n".join([f"{probe.MARK}thermal", *zones, f"{probe.MARK}end"]) + "\n"


def test_parse_temperatures_takes_the_hottest_plausible_zone() -> None:
    assert parse_temperatures(probe_text("41000\n52500\n-273000\n999999999\nabc\n")) == 52.5
    assert parse_temperatures("") is None
    assert parse_temperatures(probe_text("0\n")) == 0.0


def test_device_cooldown_skips_the_first_process_and_sums_per_job() -> None:
    clock = FakeClock()
    temps = Temps([40.0, 47.0, 41.0, 46.0, 41.5])  # the first read is the run's baseline
    dc = DeviceCooldown(10.0, 100.0, temps, clock=clock, sleep=clock.sleep)
    assert dc.baseline_c == 40.0 and dc.meta()["baseline_c"] == 40.0
    assert dc.before("a") is None
    first = dc.before("b")
    assert first is not None and first.reason == "reached"
    dc.before("b")
    assert dc.columns("a") == {"cooldown_s": 0.0, "cooldown_temp_c": None}
    assert dc.columns("b") == {"cooldown_s": 30.0, "cooldown_temp_c": 41.5}


def test_device_cooldown_off_reads_nothing() -> None:
    temps = Temps([40.0])
    dc = DeviceCooldown(0.0, 0.0, temps)
    assert not dc.enabled and dc.baseline_c is None and temps.reads == 0
    dc.before("a")
    assert dc.before("b") is not None and temps.reads == 0


def test_device_cooldown_baseline_unreadable_is_min_only() -> None:
    clock = FakeClock()
    temps = Temps([TransportError("down")])
    dc = DeviceCooldown(5.0, 50.0, temps, clock=clock, sleep=clock.sleep)
    assert dc.baseline_c is None
    dc.before("a")
    result = dc.before("b")
    assert result is not None and (result.reason, result.waited_s) == ("no-zones", 5.0)


# ------------------------------------------------------------------ through the transport


class ThermalTransport(ExecOnlyTransport):
    """Answers the temperature read from a sequence and the runner with a canned result."""

    kind = "local"

    def __init__(self, temps_milli: Sequence[str]) -> None:
        self.temps = list(temps_milli)
        self.calls: list[list[str]] = []

    def execute(self, command: Command) -> CommandResult:
        argv = command.argv
        self.calls.append(list(argv))
        if tuple(argv) == TEMPERATURE_ARGV:
            text = self.temps.pop(0) if len(self.temps) > 1 else self.temps[0]
            return CommandResult(tuple(argv), 0, probe_text(text), "")
        result = {"protocol": PROTOCOL_VERSION, "ok": True, "runtime": "fake", "runtime_version": "1", "provider": "cpu",
                  "threads": 1, "load_ms": 1.0, "cold_ms": 2.0, "warmup_n": 10,
                  "samples_ms": [1.0, 1.1, 0.9, 1.0] * 20, "outputs_finite": True}  # fmt: skip
        return CommandResult(tuple(argv), 0, "BENCHHARNESS_RESULT " + json.dumps(result), "")


def test_read_temperature_over_a_transport() -> None:
    transport = ThermalTransport(["41000\n39000\n"])
    assert read_temperature(transport) == 41.0
    assert transport.calls == [list(TEMPERATURE_ARGV)]
    assert read_temperature(ThermalTransport([""])) is None  # no zones: nothing printed


def test_run_device_cools_down_between_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(
        dispatch,
        "DeviceCooldown",
        functools.partial(DeviceCooldown, clock=clock, sleep=clock.sleep),
    )
    transport = ThermalTransport(["40000", "45000\n30000", "41000", "41500"])
    profile = DeviceProfile(name="hotphone", transport="local", cooldown_min_s=20.0,
                            cooldown_max_s=120.0)  # fmt: skip
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read by the fake runner")
    artifacts = [
        Artifact(
            model=name,
            source="user",
            input_shape="1x3x8x8",
            format="onnx",
            precision="fp32",
            path=model,
            sha256=name,
        )
        for name in ("a", "b")
    ]
    store = RunStore.create(tmp_path / "results")
    stages: list[str] = []

    class Recorder(NullReporter):
        def stage(self, device: str, text: str) -> None:
            stages.append(text)

    opts = RunOptions(processes=1, profile_ops=False, seed=1)
    run_device(store, profile, artifacts, opts, Recorder(), lambda p: transport, None,
               threading.Lock())  # fmt: skip
    rows = {r.model: r for r in store.runs}
    assert {r.status for r in rows.values()} == {"ok"}
    # the first process ran at once; the second waited 20 s, then one 5 s poll to 41 °C
    waits = sorted((r.cooldown_s, r.cooldown_temp_c) for r in rows.values())
    assert waits == [(0.0, None), (25.0, 41.0)]
    assert any(s.startswith("cooling down 20/120 s, 45.0 °C -> 42.0 °C") for s in stages)
    meta = json.loads((store.path / "run.json").read_text())
    assert meta["devices"]["hotphone"]["cooldown"]["baseline_c"] == 40.0
    header = (store.path / "runs.csv").read_text().splitlines()[0].split(",")
    assert {"cooldown_s", "cooldown_temp_c"} <= set(header)
